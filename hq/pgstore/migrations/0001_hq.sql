-- HQ schema, PostgreSQL flavour. Times are TIMESTAMPTZ.
CREATE TABLE terminals (
    store           TEXT NOT NULL,
    terminal        TEXT NOT NULL,
    db_id           TEXT NOT NULL DEFAULT '',
    acked_seq       BIGINT NOT NULL DEFAULT 0, -- highest contiguous seq handled
    high_seq        BIGINT NOT NULL DEFAULT 0, -- highest seq handled
    online          BOOLEAN NOT NULL DEFAULT FALSE,
    status_at       TIMESTAMPTZ,
    last_seen       TIMESTAMPTZ,
    agent_version   TEXT NOT NULL DEFAULT '',
    backlog         BIGINT NOT NULL DEFAULT 0,
    oldest_unsynced TIMESTAMPTZ,
    clock_skew_ms   BIGINT NOT NULL DEFAULT 0,
    last_upload     TIMESTAMPTZ,
    feed_version    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (store, terminal)
);

CREATE TABLE events (
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    db_id       TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL, -- as the terminal sent it
    received_at TIMESTAMPTZ NOT NULL,
    payload     BYTEA NOT NULL,
    PRIMARY KEY (store, terminal, seq)
);

CREATE TABLE rejected_events (
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store, terminal, seq)
);

CREATE TABLE quarantine (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    topic       TEXT NOT NULL,
    store       TEXT NOT NULL DEFAULT '',
    terminal    TEXT NOT NULL DEFAULT '',
    seq         BIGINT NOT NULL DEFAULT 0,
    event_id    TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    raw         BYTEA NOT NULL
);

CREATE TABLE sales_daily (
    store        TEXT NOT NULL,
    business_day TEXT NOT NULL,
    sales_count  BIGINT NOT NULL,
    gross        BIGINT NOT NULL,
    tax          BIGINT NOT NULL,
    void_count   BIGINT NOT NULL,
    voided       BIGINT NOT NULL,
    return_count BIGINT NOT NULL,
    returned     BIGINT NOT NULL,
    PRIMARY KEY (store, business_day)
);

CREATE TABLE inventory (
    store       TEXT NOT NULL,
    sku         TEXT NOT NULL,
    on_hand     BIGINT NOT NULL,
    deltas      BIGINT NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (store, sku)
);

CREATE TABLE coupons (
    id            TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    value         BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    member        TEXT NOT NULL,
    expires       TIMESTAMPTZ NOT NULL,
    coupon        BYTEA NOT NULL,
    token         TEXT NOT NULL,
    issued_at     TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoke_reason TEXT NOT NULL DEFAULT ''
);

CREATE TABLE coupon_redemptions (
    event_id    TEXT PRIMARY KEY,
    coupon_id   TEXT NOT NULL,
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    sale_id     TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    redeemed_at TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX coupon_redemptions_coupon ON coupon_redemptions(coupon_id);
CREATE INDEX coupon_redemptions_status ON coupon_redemptions(status);

CREATE TABLE change_feed (
    version BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store   TEXT NOT NULL, -- a store id or '*'
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    op      TEXT NOT NULL,
    data    BYTEA NOT NULL,
    at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX change_feed_store ON change_feed(store, version);
CREATE INDEX change_feed_key ON change_feed(kind, key, version);
