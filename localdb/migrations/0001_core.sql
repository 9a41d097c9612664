-- Core tables: key/value meta and the transactional outbox.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per business event, written in the same transaction as the change
-- it records. seq is per terminal, monotonic and gapless: AUTOINCREMENT never
-- reuses a value, and a rolled-back transaction does not consume one.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL, -- UUIDv7, unique by construction; HQ dedupes by it
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at TIMESTAMP NOT NULL,
    acked      INTEGER NOT NULL DEFAULT 0,
    acked_at   TIMESTAMP,
    rejected   TEXT    -- HQ's reason when it refused the event for good (dead letter)
);
CREATE INDEX outbox_unacked ON outbox(seq) WHERE acked = 0;
CREATE INDEX outbox_rejected ON outbox(seq) WHERE rejected IS NOT NULL;
