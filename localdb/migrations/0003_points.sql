-- Loyalty points on sales, and the sale's outbox seq so the agent knows
-- which spending HQ has not confirmed yet (the per-member offline cap).
ALTER TABLE sales ADD COLUMN points_earned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sales ADD COLUMN points_spent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sales ADD COLUMN outbox_seq INTEGER;
CREATE INDEX sales_member_points ON sales(member, outbox_seq) WHERE points_spent > 0;
