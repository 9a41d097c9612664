-- The points a return against a member's sale moved back (docs/new-retail.md,
-- "Returns and points"): points_taken of what the sale earned, points_given
-- of what it spent (the points part of the refund; its value is the
-- return's 'points' row in return_refunds). member and outbox_seq tell which
-- of them HQ has not confirmed yet, as the same columns of sales do.
ALTER TABLE returns ADD COLUMN member TEXT;
ALTER TABLE returns ADD COLUMN points_taken INTEGER NOT NULL DEFAULT 0;
ALTER TABLE returns ADD COLUMN points_given INTEGER NOT NULL DEFAULT 0;
ALTER TABLE returns ADD COLUMN outbox_seq INTEGER;
CREATE INDEX returns_member_outbox ON returns(member, outbox_seq) WHERE member IS NOT NULL;
CREATE INDEX returns_orig_sale ON returns(orig_sale_id) WHERE orig_sale_id IS NOT NULL;
