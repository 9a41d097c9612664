-- The store's ledger: catalog, users, sales, returns, coupons, shifts,
-- inventory, members and pickup orders from HQ, the print queue.
-- Money is INTEGER minor units; quantities INTEGER thousandths.

CREATE TABLE tax_classes (
    code    TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    rate_bp INTEGER NOT NULL CHECK (rate_bp BETWEEN 0 AND 100000)
) STRICT;

CREATE TABLE products (
    sku       TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    unit      TEXT NOT NULL CHECK (unit IN ('each', 'kg')),
    tax_class TEXT NOT NULL REFERENCES tax_classes(code),
    price     INTEGER NOT NULL CHECK (price >= 0), -- per each, or per kg
    active    INTEGER NOT NULL DEFAULT 1,
    plu       TEXT
) STRICT;
CREATE UNIQUE INDEX products_plu ON products(plu) WHERE plu IS NOT NULL AND plu <> '';

-- Barcodes are stored as 14-digit GTINs so a UPC-A and its EAN-13 match;
-- store labels keep their text.
CREATE TABLE barcodes (
    code TEXT PRIMARY KEY,
    sku  TEXT NOT NULL REFERENCES products(sku) ON DELETE CASCADE
) STRICT;
CREATE INDEX barcodes_sku ON barcodes(sku);

CREATE TABLE inventory (
    sku     TEXT PRIMARY KEY,
    on_hand INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('cashier', 'manager')),
    pin_hash     TEXT NOT NULL,
    failed       INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    active       INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE shifts (
    id           TEXT PRIMARY KEY,
    cashier      TEXT NOT NULL,
    business_day TEXT NOT NULL,
    opened_at    TIMESTAMP NOT NULL,
    float_amount INTEGER NOT NULL CHECK (float_amount >= 0),
    closed_at    TIMESTAMP,
    expected     INTEGER,
    counted      INTEGER,
    over_short   INTEGER
);
CREATE UNIQUE INDEX shifts_one_open ON shifts((1)) WHERE closed_at IS NULL;

CREATE TABLE cash_movements (
    id       TEXT PRIMARY KEY,
    shift_id TEXT NOT NULL REFERENCES shifts(id),
    kind     TEXT NOT NULL CHECK (kind IN ('paid_in', 'paid_out', 'no_sale')),
    amount   INTEGER NOT NULL CHECK (amount >= 0),
    reason   TEXT NOT NULL DEFAULT '',
    user_id  TEXT NOT NULL,
    manager  TEXT,
    at       TIMESTAMP NOT NULL
);

-- Only completed, voided and suspended sales are here: an open cart lives
-- in the agent's memory until it is suspended or completed.
CREATE TABLE sales (
    id           TEXT PRIMARY KEY,
    state        TEXT NOT NULL CHECK (state IN ('suspended', 'completed', 'voided')),
    receipt      TEXT UNIQUE,
    complete_key TEXT, -- idempotency key of the completing request
    cashier      TEXT NOT NULL,
    member       TEXT,
    shift_id     TEXT,
    business_day TEXT,
    created_at   TIMESTAMP NOT NULL,
    completed_at TIMESTAMP,
    subtotal     INTEGER NOT NULL DEFAULT 0,
    discount     INTEGER NOT NULL DEFAULT 0,
    tax          INTEGER NOT NULL DEFAULT 0,
    total        INTEGER NOT NULL DEFAULT 0,
    paid         INTEGER NOT NULL DEFAULT 0,
    change_due   INTEGER NOT NULL DEFAULT 0,
    refunded     INTEGER NOT NULL DEFAULT 0,
    voided_at    TIMESTAMP,
    void_manager TEXT,
    void_reason  TEXT,
    cart         TEXT -- the suspended cart, JSON
) WITHOUT ROWID;
CREATE UNIQUE INDEX sales_complete_key ON sales(complete_key) WHERE complete_key IS NOT NULL;
-- No index on business_day: reports scan one terminal's sales, and every
-- index is another page each sale commit writes.

CREATE TABLE sale_lines (
    sale_id      TEXT NOT NULL REFERENCES sales(id),
    line         INTEGER NOT NULL,
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    unit         TEXT NOT NULL,
    qty          INTEGER NOT NULL CHECK (qty > 0),
    unit_price   INTEGER NOT NULL CHECK (unit_price >= 0),
    gross        INTEGER NOT NULL CHECK (gross >= 0),
    discount     INTEGER NOT NULL DEFAULT 0 CHECK (discount >= 0),
    tax          INTEGER NOT NULL DEFAULT 0,
    total        INTEGER NOT NULL CHECK (total >= 0),
    override_by  TEXT,
    returned_qty INTEGER NOT NULL DEFAULT 0 CHECK (returned_qty >= 0 AND returned_qty <= qty),
    PRIMARY KEY (sale_id, line)
) STRICT, WITHOUT ROWID;

CREATE TABLE sale_tenders (
    sale_id TEXT NOT NULL REFERENCES sales(id),
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('cash', 'card', 'wallet', 'points', 'online')),
    amount  INTEGER NOT NULL CHECK (amount > 0),
    ref     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (sale_id, seq)
) STRICT, WITHOUT ROWID;

-- Single use on this terminal: the primary key refuses a second redemption.
CREATE TABLE coupon_redemptions (
    coupon_id   TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,
    sale_id     TEXT NOT NULL REFERENCES sales(id),
    amount      INTEGER NOT NULL CHECK (amount >= 0),
    manager     TEXT,
    outbox_seq  INTEGER NOT NULL,
    redeemed_at TIMESTAMP NOT NULL
);

CREATE TABLE coupon_keys (
    key_id     TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE coupon_revocations (
    coupon_id  TEXT PRIMARY KEY,
    reason     TEXT NOT NULL DEFAULT '',
    revoked_at TIMESTAMP
);

CREATE TABLE coupons_issued (
    coupon_id TEXT PRIMARY KEY,
    member    TEXT,
    token     TEXT NOT NULL
);

CREATE TABLE returns (
    id           TEXT PRIMARY KEY,
    receipt      TEXT NOT NULL UNIQUE,
    orig_sale_id TEXT REFERENCES sales(id),
    channel      TEXT NOT NULL CHECK (channel IN ('store', 'online', 'blind')),
    cashier      TEXT NOT NULL,
    manager      TEXT,
    business_day TEXT NOT NULL,
    total        INTEGER NOT NULL CHECK (total >= 0),
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE return_lines (
    return_id TEXT NOT NULL REFERENCES returns(id),
    line      INTEGER NOT NULL,
    orig_line INTEGER,
    sku       TEXT NOT NULL,
    qty       INTEGER NOT NULL CHECK (qty > 0),
    amount    INTEGER NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (return_id, line)
) STRICT;

CREATE TABLE return_refunds (
    return_id TEXT NOT NULL REFERENCES returns(id),
    seq       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    amount    INTEGER NOT NULL CHECK (amount > 0),
    ref       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (return_id, seq)
) STRICT;

CREATE TABLE audit (
    id      TEXT PRIMARY KEY,
    action  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    manager TEXT NOT NULL,
    sale_id TEXT,
    detail  TEXT NOT NULL DEFAULT '',
    at      TIMESTAMP NOT NULL
);

CREATE TABLE members (
    id          TEXT PRIMARY KEY,
    phone       TEXT,
    name        TEXT,
    tier        TEXT,
    points      INTEGER NOT NULL DEFAULT 0,
    offline_cap INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX members_phone ON members(phone);

CREATE TABLE pickup_orders (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    customer   TEXT,
    phone      TEXT,
    member     TEXT,
    paid       INTEGER NOT NULL DEFAULT 0,
    lines      TEXT NOT NULL, -- JSON list of wire.PickupLine
    handed_at  TIMESTAMP,
    handed_by  TEXT,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX pickup_phone ON pickup_orders(phone);

CREATE TABLE store_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The durable print queue: a job is printed only when the printer confirmed
-- it; a restarted agent resumes queued jobs.
CREATE TABLE print_jobs (
    id         TEXT PRIMARY KEY,
    sale_id    TEXT,
    receipt    TEXT,
    kind       TEXT NOT NULL CHECK (kind IN ('receipt', 'copy', 'return', 'report')),
    state      TEXT NOT NULL CHECK (state IN ('queued', 'printed', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    printed_at TIMESTAMP
) WITHOUT ROWID;
CREATE INDEX print_jobs_queued ON print_jobs(created_at) WHERE state = 'queued';
