package shelf

import (
	"context"
	"time"
)

// Event kinds. The alert kinds (KindLowStock, KindShrink, KindAmbiguous,
// KindSensorOffline) are spelt as agent.Alert's Kind and as
// wire.ShelfAlert's, which also carries KindLowStockCleared and
// KindSensorOnline; KindCount is the count itself, not an alert.
const (
	// KindCount is a new stable, accepted count on a slot (Count, Prev).
	KindCount = "count"
	// KindLowStock is raised once when the count falls to or below the
	// slot's low-stock threshold.
	KindLowStock = "low_stock"
	// KindLowStockCleared is raised once when the count rises above the
	// threshold plus the margin (hysteresis).
	KindLowStockCleared = "low_stock_cleared"
	// KindShrink is a count drop that the sales recorded within the shrink
	// window do not explain; Count is the number of missing units.
	KindShrink = "shrink"
	// KindAmbiguous is a stable weight that is not a whole number of units
	// within tolerance (an item of another SKU on the tray, a hand resting
	// on it, a wrong unit weight); Count is the nearest count, Grams the
	// weight.
	KindAmbiguous = "ambiguous"
	// KindSensorOffline is a slot that sent no reading for OfflineAfter.
	KindSensorOffline = "sensor_offline"
	// KindSensorOnline is a slot heard from again after KindSensorOffline.
	KindSensorOnline = "sensor_online"
)

// Event is one thing a shelf reports about one slot. At is UTC.
type Event struct {
	Kind  string `json:"kind"`
	Shelf string `json:"shelf"`
	Slot  int    `json:"slot"`
	SKU   string `json:"sku"`
	// Count is the slot's count (KindCount, KindLowStock,
	// KindLowStockCleared), the nearest count (KindAmbiguous) or the
	// missing units (KindShrink).
	Count int64 `json:"count"`
	// Prev is the count before a KindCount change; Initial says there was
	// none (the first count since Open), and Prev is then 0.
	Prev    int64 `json:"prev,omitempty"`
	Initial bool  `json:"initial,omitempty"`
	// Grams is the stable gross weight the event is based on (0 when none).
	Grams  int64     `json:"grams,omitempty"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// IsAlert reports whether the event is one the agent shows and sends to HQ
// as a shelf alert (every kind but KindCount).
func (e Event) IsAlert() bool { return e.Kind != KindCount }

// Sales tells the shelf what the store sold, so a count drop that a sale
// explains is not reported as shrink. The agent implements it over its
// ledger; devices never import the agent.
type Sales interface {
	// Sold returns how many whole units of sku the sales completed at or
	// after since hold (voided sales excluded; a negative answer counts as
	// 0). It is called from the shelf's engine goroutine with a context
	// bounded by Config.SalesTimeout and must return by then; readings wait
	// meanwhile. An error postpones the decision to a later tick.
	Sold(ctx context.Context, sku string, since time.Time) (int64, error)
}

// SalesFunc adapts a function to Sales.
type SalesFunc func(ctx context.Context, sku string, since time.Time) (int64, error)

// Sold calls f.
func (f SalesFunc) Sold(ctx context.Context, sku string, since time.Time) (int64, error) {
	return f(ctx, sku, since)
}
