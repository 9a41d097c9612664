package agent

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

func ptr(v int64) *int64 { return &v }

// stockOf reads on-hand stock of sku.
func (f *fixture) stockOf(tb testing.TB, sku string) int64 {
	tb.Helper()
	var v int64
	require.NoError(tb, f.db.Read.QueryRow("SELECT COALESCE((SELECT on_hand FROM inventory WHERE sku = ?), 0)", sku).Scan(&v))
	return v
}

// stockEvents returns the stock.level events in the outbox, oldest first.
func (f *fixture) stockEvents(tb testing.TB) []wire.StockLevel {
	tb.Helper()
	rows, err := f.db.Read.Query("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", wire.EventStockLevel)
	require.NoError(tb, err)
	defer rows.Close()
	var out []wire.StockLevel
	for rows.Next() {
		var p []byte
		require.NoError(tb, rows.Scan(&p))
		var e wire.StockLevel
		require.NoError(tb, json.Unmarshal(p, &e))
		out = append(out, e)
	}
	require.NoError(tb, rows.Err())
	return out
}

func TestChangeStockDeliveryCountAndWriteOff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := f.stockOf(t, "MILK1L")
	before := len(f.stockEvents(t))

	// A delivery, received by a cashier, named by its scanned barcode.
	r, err := f.l.ChangeStock(ctx, StockChange{Code: "6907992500133", Delta: ptr(24000), Reason: StockDelivery, User: DemoCashier})
	require.NoError(t, err)
	require.Equal(t, StockResult{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Before: start, OnHand: start + 24000, Delta: 24000, Reason: StockDelivery}, r)

	// A sale moves the book; the count then replaces it and books the difference.
	f.pay(t, f.sale(t, "MILK1L"))
	_, err = f.l.CompleteSale(ctx, f.l.OpenCarts()[0].ID, "")
	require.NoError(t, err)
	r, err = f.l.ChangeStock(ctx, StockChange{Code: "MILK1L", Count: ptr(10000), Reason: StockCount, Note: "aisle 3", User: DemoCashier, Manager: DemoManager})
	require.NoError(t, err)
	require.Equal(t, start+24000-1000, r.Before, "the count reads the level after the sale")
	require.Equal(t, int64(10000), r.OnHand)
	require.Equal(t, 10000-(start+23000), r.Delta)

	// Weighed goods take thousandths of a kg; a write-off removes.
	r, err = f.l.ChangeStock(ctx, StockChange{Code: "APPLE", Delta: ptr(-2350), Reason: StockDamage, User: DemoCashier, Manager: DemoManager})
	require.NoError(t, err)
	require.Equal(t, r.Before-2350, r.OnHand)
	require.Equal(t, r.OnHand, f.stockOf(t, "APPLE"))
	require.Equal(t, int64(10000), f.stockOf(t, "MILK1L"))

	evs := f.stockEvents(t)[before:]
	require.Len(t, evs, 3, "delivery, count, damage (a sale's stock rides in its own event)")
	require.Equal(t, []string{"delivery", "count", "damage"}, []string{evs[0].Reason, evs[1].Reason, evs[2].Reason})
	require.Equal(t, wire.StockLevel{SKU: "MILK1L", OnHand: 10000, Delta: 10000 - (start + 23000), Reason: "count", At: f.now}, evs[1])

	audit, err := f.l.AuditLog(ctx, 10)
	require.NoError(t, err)
	var actions []string
	for _, a := range audit {
		actions = append(actions, a.Action)
	}
	require.Subset(t, actions, []string{"stock_delivery", "stock_count", "stock_damage"})
	for _, a := range audit {
		if a.Action == "stock_count" {
			require.Equal(t, DemoManager, a.Manager)
			require.Contains(t, a.Detail, "aisle 3")
		}
	}
}

func TestChangeStockRefusesBadInputAndWritesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	milk, apple := f.stockOf(t, "MILK1L"), f.stockOf(t, "APPLE")
	events := len(f.stockEvents(t))
	m := DemoManager
	for _, tc := range []struct {
		name string
		c    StockChange
		want error
	}{
		{"unknown reason", StockChange{Code: "MILK1L", Delta: ptr(1000), Reason: "gift", Manager: m}, ErrStockReason},
		{"no reason", StockChange{Code: "MILK1L", Delta: ptr(1000), Manager: m}, ErrStockReason},
		{"neither delta nor count", StockChange{Code: "MILK1L", Reason: StockCorrection, Manager: m}, ErrBadQuantity},
		{"both delta and count", StockChange{Code: "MILK1L", Delta: ptr(1000), Count: ptr(1000), Reason: StockCount, Manager: m}, ErrBadQuantity},
		{"count under another reason", StockChange{Code: "MILK1L", Count: ptr(1000), Reason: StockCorrection, Manager: m}, ErrStockReason},
		{"reason count without a count", StockChange{Code: "MILK1L", Delta: ptr(1000), Reason: StockCount, Manager: m}, ErrStockReason},
		{"negative count", StockChange{Code: "MILK1L", Count: ptr(-1000), Reason: StockCount, Manager: m}, ErrBadQuantity},
		{"zero delta", StockChange{Code: "MILK1L", Delta: ptr(0), Reason: StockCorrection, Manager: m}, ErrStockReason},
		{"a delivery that removes", StockChange{Code: "MILK1L", Delta: ptr(-1000), Reason: StockDelivery}, ErrStockReason},
		{"damage that adds", StockChange{Code: "MILK1L", Delta: ptr(1000), Reason: StockDamage, Manager: m}, ErrStockReason},
		{"half a piece", StockChange{Code: "MILK1L", Delta: ptr(1500), Reason: StockDelivery}, ErrBadQuantity},
		{"unknown SKU or barcode", StockChange{Code: "NOPE", Delta: ptr(1000), Reason: StockDelivery}, ErrUnknownCode},
		{"a GTIN not in the catalog", StockChange{Code: "96385074", Delta: ptr(1000), Reason: StockDelivery}, ErrUnknownCode},
		{"no code", StockChange{Code: "  ", Delta: ptr(1000), Reason: StockDelivery}, ErrUnknownCode},
		{"write-off without a manager", StockChange{Code: "APPLE", Delta: ptr(-1000), Reason: StockDamage}, ErrNeedsManager},
		{"count without a manager", StockChange{Code: "APPLE", Count: ptr(0), Reason: StockCount}, ErrNeedsManager},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.l.ChangeStock(ctx, tc.c)
			require.ErrorIs(t, err, tc.want)
		})
	}
	require.Equal(t, milk, f.stockOf(t, "MILK1L"))
	require.Equal(t, apple, f.stockOf(t, "APPLE"))
	require.Len(t, f.stockEvents(t), events, "no event for a refused change")
}

func TestAPIStockAdjust(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	start := f.stockOf(t, "BREAD")

	// A cashier receives a delivery.
	var ans struct{ Stock StockResult }
	c.ok("POST", "/api/inventory/adjust", map[string]any{"code": "4006381333931", "delta": 12000, "reason": "delivery", "note": "DN-778"}).decode(t, &ans)
	require.Equal(t, start+12000, ans.Stock.OnHand)
	require.Equal(t, "BREAD", ans.Stock.SKU)

	// A write-off needs a manager: refused without, wrong PIN refused, done with the PIN.
	r := c.do("POST", "/api/inventory/adjust", map[string]any{"code": "BREAD", "delta": -2000, "reason": "damage"})
	require.Equal(t, 403, r.status, "%s", r.body)
	require.Equal(t, "needs_manager", r.code())
	r = c.do("POST", "/api/inventory/adjust", map[string]any{"code": "BREAD", "delta": -2000, "reason": "damage", "manager_pin": "0000"})
	require.Equal(t, 403, r.status, "%s", r.body)
	require.Equal(t, "bad_pin", r.code())
	c.ok("POST", "/api/inventory/adjust", map[string]any{"code": "BREAD", "delta": -2000, "reason": "damage", "manager_pin": DemoManagerPIN}).decode(t, &ans)
	require.Equal(t, start+10000, ans.Stock.OnHand)

	// A manager's own session counts the shelf without a PIN.
	f.manager(t).ok("POST", "/api/inventory/adjust", map[string]any{"code": "BREAD", "count": 7000, "reason": "count"}).decode(t, &ans)
	require.Equal(t, StockResult{SKU: "BREAD", Name: "Whole wheat bread", Unit: "each", Before: start + 10000, OnHand: 7000, Delta: 7000 - start - 10000, Reason: "count"}, ans.Stock)

	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"code": "BREAD", "delta": 1000, "reason": "gift"}, "stock_reason"},
		{map[string]any{"code": "BREAD", "delta": -1000, "reason": "delivery"}, "stock_reason"},
		{map[string]any{"code": "BREAD", "delta": 1500, "reason": "delivery"}, "bad_quantity"},
		{map[string]any{"code": "6901234567890", "delta": 1000, "reason": "delivery"}, "unknown_code"},
		{map[string]any{"code": "BREAD", "delta": "ten", "reason": "delivery"}, "bad_json"},
	} {
		r := c.do("POST", "/api/inventory/adjust", tc.body)
		require.Equal(t, tc.code, r.code(), "%v: %s", tc.body, r.body)
	}
	require.Equal(t, int64(7000), f.stockOf(t, "BREAD"))
	require.Subset(t, f.auditActions(t), []string{"stock_delivery:", "stock_damage:" + DemoManager, "stock_count:" + DemoManager})
}
