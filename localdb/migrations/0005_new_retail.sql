-- New retail at the store: pickup hand-overs (each with the outbox seq of
-- its pickup.fulfilled event, so the terminal knows which HQ has not yet
-- counted), online purchases returned here (returns.order_id), and an
-- index for the per-member offline points cap that covers earning as well
-- as spending (it replaces 0003's, which covered spending only). Only
-- sales with a member pay for it.
CREATE TABLE pickup_handovers (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES pickup_orders(id),
    cashier    TEXT NOT NULL,
    handed_at  TIMESTAMP NOT NULL,
    final      INTEGER NOT NULL,
    complete   INTEGER NOT NULL,
    lines      TEXT NOT NULL, -- JSON list of wire.PickupLine: this hand-over's quantities
    outbox_seq INTEGER NOT NULL
);
CREATE INDEX pickup_handovers_order ON pickup_handovers(order_id);

ALTER TABLE returns ADD COLUMN order_id TEXT;
CREATE INDEX returns_order ON returns(order_id) WHERE order_id IS NOT NULL;

DROP INDEX sales_member_points;
CREATE INDEX sales_member_outbox ON sales(member, outbox_seq) WHERE member IS NOT NULL;
