package agent

import (
	"context"
	"fmt"
	"time"
)

// UnitsSold returns how many whole units of sku the sales completed at or
// after since hold; voided sales do not count. It answers a weight
// shelf's question "does a sale explain this drop?" (devices/shelf Sales):
// shelf goods are sold by the each, so the thousandths of sale_lines.qty
// are cut to whole units. Returns are not subtracted: a returned item is
// not back on the shelf until someone puts it there, which the shelf sees.
func (l *Ledger) UnitsSold(ctx context.Context, sku string, since time.Time) (int64, error) {
	var milli int64
	// completed_at and since are both written by the driver with
	// _time_format=sqlite in UTC, so the text comparison is the time order.
	err := l.db.Read.QueryRowContext(ctx, `SELECT COALESCE(SUM(l.qty), 0)
		FROM sale_lines l JOIN sales s ON s.id = l.sale_id
		WHERE l.sku = ? AND s.state = 'completed' AND s.completed_at >= ?`, sku, since.UTC()).Scan(&milli)
	if err != nil {
		return 0, fmt.Errorf("units of %s sold since %s: %w", sku, since.UTC().Format(time.RFC3339), err)
	}
	return max(milli/1000, 0), nil
}
