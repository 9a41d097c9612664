package agent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/sync/wire"
)

// TestUnitsSoldCountsCompletedSalesSince: whole units of completed sales
// at or after the time, voided sales left out.
func TestUnitsSoldCountsCompletedSalesSince(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 2, 0, 0, 500_000_000, time.UTC) // a fraction: the text order must still be the time order
	sell := func(at time.Time, qty int64) *Sale {
		f.now = at
		s, err := f.l.OpenSale(ctx, DemoCashier)
		require.NoError(t, err)
		_, err = f.l.AddItem(ctx, s.ID, "WATER", qty)
		require.NoError(t, err)
		s, err = f.l.AddItem(ctx, s.ID, "TEA500", 1000)
		require.NoError(t, err)
		done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "k-"+s.ID)
		require.NoError(t, err)
		return done
	}
	sell(t0, 2000)
	sell(t0.Add(59*time.Second+600*time.Millisecond), 1000) // 02:01:00.1
	voided := sell(t0.Add(2*time.Minute), 3000)
	_, err := f.l.VoidSale(ctx, voided.ID, DemoManager, "wrong item")
	require.NoError(t, err)

	for _, c := range []struct {
		since time.Time
		want  int64
	}{
		{t0.Add(-time.Hour), 3},
		{t0, 3}, // at the very time counts
		{t0.Add(time.Nanosecond), 1},
		{time.Date(2026, 11, 23, 2, 1, 0, 0, time.UTC), 1}, // whole second before 02:01:00.1
		{t0.Add(61 * time.Second), 0},
		{t0.Add(time.Hour), 0},
	} {
		got, err := f.l.UnitsSold(ctx, "WATER", c.since.In(time.FixedZone("CST", 8*3600)))
		require.NoError(t, err)
		require.Equal(t, c.want, got, "since %s", c.since)
	}
	n, err := f.l.UnitsSold(ctx, "NOPE", t0)
	require.NoError(t, err)
	require.Zero(t, n)
}

// openAgent opens an agent on a temp database, with the POS API when
// withAPI.
func openAgent(t *testing.T, withAPI bool) *Agent {
	t.Helper()
	o := Options{Database: filepath.Join(t.TempDir(), "pos.db"), Ledger: LedgerConfig{Store: "S001", Terminal: "T1", BcryptCost: bcrypt.MinCost}, Locale: "en"}
	if withAPI {
		o.HTTPListen = "127.0.0.1:0"
		o.APIHandler = ServeAPI(APIConfig{})
	}
	a := New(o)
	require.NoError(t, a.Open(context.Background()))
	return a
}

func shelfAlerts(t *testing.T, a *Agent) []wire.ShelfAlert {
	t.Helper()
	rows, err := a.Ledger().DB().Read.Query("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", wire.EventShelfAlert)
	require.NoError(t, err)
	defer rows.Close()
	var out []wire.ShelfAlert
	for rows.Next() {
		var p string
		require.NoError(t, rows.Scan(&p))
		var al wire.ShelfAlert
		require.NoError(t, json.Unmarshal([]byte(p), &al))
		out = append(out, al)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestRecoveriesClearTheirAlerts: the status bar lists each slot's
// standing low stock or offline sensor once, a recovery removes it, every
// shrink stays; HQ gets every alert, recoveries included.
func TestRecoveriesClearTheirAlerts(t *testing.T) {
	a := openAgent(t, false)
	t.Cleanup(func() { require.NoError(t, a.Close(context.Background())) })
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	raise := func(kind, slot string, count int64) {
		require.NoError(t, a.RaiseAlert(ctx, Alert{Kind: kind, Shelf: "shelf0", Slot: slot, SKU: "WATER", Count: count, Grams: 100 * count, At: at}))
	}
	list := func() []string {
		var out []string
		for _, al := range a.Status(ctx).Alerts {
			out = append(out, al.Kind+"/"+al.Slot+"/"+string(rune('0'+al.Count)))
		}
		return out
	}
	raise(AlertLowStock, "0", 3)
	raise(AlertLowStock, "1", 2)
	raise(AlertShrink, "0", 2)
	raise(AlertLowStock, "0", 1) // the same condition, a newer count
	require.Equal(t, []string{"low_stock/1/2", "shrink/0/2", "low_stock/0/1"}, list())
	raise(AlertLowStockCleared, "0", 9)
	require.Equal(t, []string{"low_stock/1/2", "shrink/0/2"}, list(), "the refill ends slot 0's low stock only")
	raise(AlertSensorOffline, "1", 2)
	raise(AlertShrink, "0", 1)
	require.Equal(t, []string{"low_stock/1/2", "shrink/0/2", "sensor_offline/1/2", "shrink/0/1"}, list())
	raise(AlertSensorOnline, "1", 2)
	require.Equal(t, []string{"low_stock/1/2", "shrink/0/2", "shrink/0/1"}, list())

	sent := shelfAlerts(t, a)
	require.Len(t, sent, 8, "HQ hears every alert")
	require.Equal(t, wire.ShelfAlert{Kind: AlertLowStockCleared, Shelf: "shelf0", Slot: "0", SKU: "WATER", Count: 9, Grams: 900, At: at}, sent[4])

	for i := 0; i < 2*maxAlerts; i++ {
		raise(AlertShrink, "2", 1)
	}
	require.Len(t, a.Status(ctx).Alerts, maxAlerts)
}
