-- Returns against a store sale, kept for the points they move back
-- (docs/new-retail.md, "Returns and points"). HQ works the reversal out from
-- its own ledger: what the sale earned and spent, the sale's total (its
-- stored sale.completed event) and the value of every return of it so far,
-- which is this table. A return that arrives before its sale waits here
-- unsettled and is settled when the sale's points are recorded.
CREATE TABLE points_returns (
    event_id    TEXT PRIMARY KEY, -- the return.completed event
    store       TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    sale_id     TEXT NOT NULL, -- the sale returned against
    receipt     TEXT NOT NULL, -- the return's own number
    amount      INTEGER NOT NULL, -- the goods' value, minor units
    returned_at TIMESTAMP NOT NULL,
    -- The store refunded part of it as points (a "points" refund): an
    -- agent older than returns moving points refunded all in money, so
    -- such a return gives no spent points back (it still takes back).
    points_refund BOOLEAN NOT NULL,
    settled     BOOLEAN NOT NULL DEFAULT FALSE -- its points have moved (or it moved none)
);
CREATE INDEX points_returns_sale ON points_returns(store, sale_id);

-- points_ledger gets two kinds, return-earn (a return took back its share
-- of what the sale earned; negative) and return-spend (gave back its share
-- of what the sale spent; positive), keyed "<return event id>:return-earn:<member>"
-- and "<return event id>:return-spend:<member>". kind is free text: no
-- schema change.
