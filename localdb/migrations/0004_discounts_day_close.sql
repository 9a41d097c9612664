-- What each discount on a completed sale was (the lines carry only the
-- amounts), the tax rate each line was priced at (receipts print a tax
-- summary per rate), and the closed business days (Z reports).

-- One row per item discount, sale discount or coupon on a completed sale.
-- Written in the sale's transaction, only when the sale has discounts.
CREATE TABLE sale_discounts (
    sale_id TEXT NOT NULL REFERENCES sales(id),
    seq     INTEGER NOT NULL,
    line    INTEGER, -- the sale line for an item discount, NULL for the sale
    kind    TEXT NOT NULL CHECK (kind IN ('item', 'sale', 'coupon')),
    basis   TEXT NOT NULL CHECK (basis IN ('amount', 'percent')),
    value   INTEGER NOT NULL CHECK (value >= 0), -- minor units, or basis points
    amount  INTEGER NOT NULL CHECK (amount >= 0), -- what it took off
    ref     TEXT NOT NULL DEFAULT '', -- coupon id
    PRIMARY KEY (sale_id, seq)
) STRICT, WITHOUT ROWID;

ALTER TABLE sale_lines ADD COLUMN tax_bp INTEGER NOT NULL DEFAULT 0 CHECK (tax_bp >= 0);

-- A Z report closes its business day: later sales go to the next day.
CREATE TABLE day_closes (
    business_day TEXT PRIMARY KEY, -- YYYY-MM-DD in the store's zone
    z_number     INTEGER NOT NULL UNIQUE,
    report       TEXT NOT NULL, -- the Report, JSON
    closed_by    TEXT NOT NULL,
    closed_at    TIMESTAMP NOT NULL
);
