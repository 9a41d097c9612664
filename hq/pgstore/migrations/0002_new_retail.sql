-- New retail (PostgreSQL flavour): members and HQ's points ledger (the truth),
-- pickup orders and their hand-overs, refunds the online channel owes for
-- online purchases returned in a store, and the business day of each
-- coupon redemption for the daily reconciliation report.

ALTER TABLE coupon_redemptions ADD COLUMN business_day TEXT NOT NULL DEFAULT '';
CREATE INDEX coupon_redemptions_day ON coupon_redemptions(store, business_day);

CREATE TABLE members (
    id          TEXT PRIMARY KEY,
    phone       TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL DEFAULT '',
    tier        TEXT NOT NULL DEFAULT '',
    offline_cap BIGINT NOT NULL DEFAULT 0,
    target      TEXT NOT NULL DEFAULT '*', -- the store its feed entries go to, or '*'
    balance     BIGINT NOT NULL DEFAULT 0, -- SUM(points) of its attached ledger entries
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX members_phone ON members(phone) WHERE phone <> '';

-- One row per movement of points. key makes each happen once:
-- "<event id>:earn", "<event id>:spend", "<event id>:void:<member>",
-- "opening:<member>", "api:<member>:<ref>". A movement for a member HQ does
-- not know yet is kept unattached under the code the store had (an id or
-- a phone) and attached when the member is created.
CREATE TABLE points_ledger (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    member      TEXT NOT NULL,
    attached    BOOLEAN NOT NULL,
    kind        TEXT NOT NULL, -- opening, earn, spend, void, adjust
    points      BIGINT NOT NULL, -- signed
    balance     BIGINT NOT NULL, -- the member's balance after it (0 while unattached)
    store       TEXT NOT NULL DEFAULT '',
    terminal    TEXT NOT NULL DEFAULT '',
    sale_id     TEXT NOT NULL DEFAULT '',
    receipt     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    at          TIMESTAMPTZ NOT NULL, -- when it happened (the store's clock for store events)
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX points_ledger_member ON points_ledger(member, id);
CREATE INDEX points_ledger_sale ON points_ledger(sale_id) WHERE sale_id <> '';

-- Spending HQ recorded although the balance did not cover it (stores
-- offline spent the same points, each within its offline cap).
CREATE TABLE points_conflicts (
    key         TEXT PRIMARY KEY, -- the ledger entry's key
    member      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    points      BIGINT NOT NULL,
    balance     BIGINT NOT NULL,
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    sale_id     TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE pickup_orders (
    id           TEXT PRIMARY KEY,
    store        TEXT NOT NULL,
    code         TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL, -- open, cancelled, partially_handed_over, fulfilled
    order_data   BYTEA NOT NULL, -- the wire.PickupOrderChange as created, lines with HQ's handed totals
    paid         BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    cancelled_at TIMESTAMPTZ,
    handed_at    TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX pickup_orders_store ON pickup_orders(store, status);

CREATE TABLE pickup_handovers (
    event_id    TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL,
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    code        TEXT NOT NULL,
    handover_id TEXT NOT NULL,
    cashier     TEXT NOT NULL,
    handed_at   TIMESTAMPTZ NOT NULL,
    final       BOOLEAN NOT NULL,
    complete    BOOLEAN NOT NULL,
    lines       BYTEA NOT NULL,
    status      TEXT NOT NULL, -- ok, conflict
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pickup_handovers_order ON pickup_handovers(order_id);
CREATE INDEX pickup_handovers_status ON pickup_handovers(status);

CREATE TABLE online_refunds (
    event_id     TEXT PRIMARY KEY,
    store        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    return_id    TEXT NOT NULL,
    receipt      TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    business_day TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    lines        BYTEA NOT NULL,
    returned_at  TIMESTAMPTZ NOT NULL,
    status       TEXT NOT NULL, -- owed, unverified, exceeds_paid
    reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX online_refunds_store ON online_refunds(store, business_day);
CREATE INDEX online_refunds_order ON online_refunds(order_id);
