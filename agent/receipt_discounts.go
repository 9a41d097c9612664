package agent

import (
	"context"
	"database/sql"
	"fmt"
)

// ReceiptDiscount is one discount a completed sale was given, as
// recorded with it (the sale's lines carry only the total each line got
// off): an item discount on one line, the sale discount, or a coupon. The
// receipt layout prints them by name.
type ReceiptDiscount struct {
	// Line is the receipt line (Receipt.Lines[Line-1]) of an item
	// discount; 0 for the sale discount and coupons.
	Line int `json:"line,omitempty"`
	// Kind is item, sale or coupon.
	Kind string `json:"kind"`
	// Basis is amount (Value in minor units) or percent (Value in basis
	// points).
	Basis  string `json:"basis"`
	Value  int64  `json:"value"`
	Amount int64  `json:"amount"` // what it took off, minor units
	Ref    string `json:"ref,omitempty"`
}

// ReceiptDiscounts returns the discounts of a completed sale in the order
// they were applied (item discounts, the sale discount, coupons); none for
// a sale without any.
func (l *Ledger) ReceiptDiscounts(ctx context.Context, saleID string) ([]ReceiptDiscount, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT COALESCE(line, 0), kind, basis, value, amount, ref FROM sale_discounts WHERE sale_id = ? ORDER BY seq", saleID)
	if err != nil {
		return nil, fmt.Errorf("discounts of %s: %w", saleID, err)
	}
	return scanDiscounts(rows, saleID)
}

func scanDiscounts(rows *sql.Rows, saleID string) ([]ReceiptDiscount, error) {
	defer rows.Close()
	var out []ReceiptDiscount
	for rows.Next() {
		var d ReceiptDiscount
		if err := rows.Scan(&d.Line, &d.Kind, &d.Basis, &d.Value, &d.Amount, &d.Ref); err != nil {
			return nil, fmt.Errorf("discounts of %s: %w", saleID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("discounts of %s: %w", saleID, err)
	}
	return out, nil
}
