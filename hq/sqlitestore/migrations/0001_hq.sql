-- HQ schema, SQLite flavour. Times are UTC TIMESTAMP (text, _time_format=sqlite).
CREATE TABLE terminals (
    store           TEXT NOT NULL,
    terminal        TEXT NOT NULL,
    db_id           TEXT NOT NULL DEFAULT '',
    acked_seq       INTEGER NOT NULL DEFAULT 0, -- highest contiguous seq handled
    high_seq        INTEGER NOT NULL DEFAULT 0, -- highest seq handled
    online          BOOLEAN NOT NULL DEFAULT 0,
    status_at       TIMESTAMP,
    last_seen       TIMESTAMP,
    agent_version   TEXT NOT NULL DEFAULT '',
    backlog         INTEGER NOT NULL DEFAULT 0,
    oldest_unsynced TIMESTAMP,
    clock_skew_ms   INTEGER NOT NULL DEFAULT 0,
    last_upload     TIMESTAMP,
    feed_version    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (store, terminal)
);

CREATE TABLE events (
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    db_id       TEXT NOT NULL,
    at          TIMESTAMP NOT NULL, -- as the terminal sent it
    received_at TIMESTAMP NOT NULL,
    payload     BLOB NOT NULL,
    PRIMARY KEY (store, terminal, seq)
) WITHOUT ROWID;

CREATE TABLE rejected_events (
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    id          TEXT NOT NULL,
    type        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (store, terminal, seq)
);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TIMESTAMP NOT NULL,
    topic       TEXT NOT NULL,
    store       TEXT NOT NULL DEFAULT '',
    terminal    TEXT NOT NULL DEFAULT '',
    seq         INTEGER NOT NULL DEFAULT 0,
    event_id    TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    raw         BLOB NOT NULL
);

CREATE TABLE sales_daily (
    store        TEXT NOT NULL,
    business_day TEXT NOT NULL,
    sales_count  INTEGER NOT NULL,
    gross        INTEGER NOT NULL,
    tax          INTEGER NOT NULL,
    void_count   INTEGER NOT NULL,
    voided       INTEGER NOT NULL,
    return_count INTEGER NOT NULL,
    returned     INTEGER NOT NULL,
    PRIMARY KEY (store, business_day)
);

CREATE TABLE inventory (
    store       TEXT NOT NULL,
    sku         TEXT NOT NULL,
    on_hand     INTEGER NOT NULL,
    deltas      INTEGER NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (store, sku)
);

CREATE TABLE coupons (
    id            TEXT PRIMARY KEY,
    key_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    value         INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    member        TEXT NOT NULL,
    expires       TIMESTAMP NOT NULL,
    coupon        BLOB NOT NULL,
    token         TEXT NOT NULL,
    issued_at     TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP,
    revoke_reason TEXT NOT NULL DEFAULT ''
);

CREATE TABLE coupon_redemptions (
    event_id    TEXT PRIMARY KEY,
    coupon_id   TEXT NOT NULL,
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    receipt     TEXT NOT NULL,
    sale_id     TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    redeemed_at TIMESTAMP NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX coupon_redemptions_coupon ON coupon_redemptions(coupon_id);
CREATE INDEX coupon_redemptions_status ON coupon_redemptions(status);

CREATE TABLE change_feed (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    store   TEXT NOT NULL, -- a store id or '*'
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    op      TEXT NOT NULL,
    data    BLOB NOT NULL,
    at      TIMESTAMP NOT NULL
);
CREATE INDEX change_feed_store ON change_feed(store, version);
CREATE INDEX change_feed_key ON change_feed(kind, key, version);
