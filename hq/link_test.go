package hq_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	st "github.com/edgepos/edgepos/hq/storetest"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

// TestWithRealLink runs the terminal's real sync link (sync/link over a
// localdb outbox) against HQ: events are stored once and acked, a bad
// payload is dead-lettered without blocking the queue, the change feed
// reaches the terminal, and a reinstalled terminal is rebased.
func TestWithRealLink(t *testing.T) {
	ctx := context.Background()
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-link")

	openTerminal := func(path string) (*localdb.DB, *link.Link, *sync.Map) {
		db, err := localdb.Open(ctx, path, localdb.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close(ctx) })
		applied := &sync.Map{}
		l := link.New(db, link.Options{Store: "S1", Terminal: "T1", Broker: broker, AgentVersion: "link-test",
			BatchEvents: 100, AckTimeout: 2 * time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			Poll: 20 * time.Millisecond,
			Apply: func(_ context.Context, _ *sql.Tx, c wire.Change) error {
				applied.Store(c.Kind+"/"+c.Key, c.Version)
				return nil
			}})
		require.NoError(t, l.Open(ctx))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l.Close(ctx)
		})
		return db, l, applied
	}
	add := func(db *localdb.DB, n int, typ string, payload func(i int) any) {
		require.NoError(t, db.WriteTx(ctx, func(tx *sql.Tx) error {
			for i := 0; i < n; i++ {
				if _, err := localdb.AppendEvent(ctx, tx, typ, payload(i), time.Now()); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	state := func(l *link.Link) link.State {
		s, err := l.State(ctx)
		require.NoError(t, err)
		return s
	}

	dir := t.TempDir()
	db, l, applied := openTerminal(filepath.Join(dir, "pos.db"))
	add(db, 250, wire.EventStockLevel, func(i int) any {
		return wire.StockLevel{SKU: "A", OnHand: int64(i), Delta: 1, Reason: "adjust", At: time.Now().UTC()}
	})
	add(db, 1, wire.EventStockLevel, func(int) any { return map[string]any{"on_hand": 1} }) // no sku: rejected
	add(db, 9, wire.EventStockLevel, func(i int) any {
		return wire.StockLevel{SKU: "B", OnHand: int64(i), Delta: 1, Reason: "adjust", At: time.Now().UTC()}
	})
	l.Notify()
	require.Eventually(t, func() bool { s := state(l); return s.Backlog == 0 && s.AckedSeq == 260 }, 20*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 1, state(l).Rejected, "the bad event is dead-lettered, the rest flow")
	inv, err := store.Inventory(ctx, "S1")
	require.NoError(t, err)
	require.Len(t, inv, 2)
	require.EqualValues(t, 259, inv[0].Deltas+inv[1].Deltas, "each good event once")

	// The feed: the initial coupon key arrived on hello, a product arrives live.
	require.Eventually(t, func() bool {
		n := 0
		applied.Range(func(k, _ any) bool { n++; return true })
		return n >= 1
	}, wait, 10*time.Millisecond)
	c := apiClient{t, svc.Addr(), token}
	status, body := c.do("PUT", "/api/catalog/products?store=S1", []wire.ProductChange{{SKU: "A", Name: "Apple", Unit: "each", Price: 100, Active: true}})
	require.Equal(t, 200, status, string(body))
	require.Eventually(t, func() bool { _, ok := applied.Load(wire.ChangeProduct + "/A"); return ok }, wait, 10*time.Millisecond)

	// Reinstall: a fresh database for the same terminal is rebased above
	// what HQ holds, and its events are stored, not rejected as duplicates.
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, l.Close(ctx2))
	cancel()
	db2, l2, _ := openTerminal(filepath.Join(dir, "reinstalled.db"))
	add(db2, 5, wire.EventSaleCompleted, func(i int) any {
		return wire.SaleCompleted{SaleID: st.NewID(t), Receipt: "T1-R" + string(rune('0'+i)), BusinessDay: "2026-11-23", CompletedAt: time.Now().UTC(),
			Currency: "CNY", Total: 100, Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Total: 100}}}
	})
	l2.Notify()
	require.Eventually(t, func() bool { s := state(l2); return s.Backlog == 0 && s.AckedSeq == 265 }, 20*time.Second, 20*time.Millisecond)
	require.Zero(t, state(l2).Rejected)
	sales, err := store.Sales(ctx, "S1", "2026-11-23")
	require.NoError(t, err)
	require.EqualValues(t, 5, sales[0].Count)
	f, err := store.Fleet(ctx)
	require.NoError(t, err)
	require.Equal(t, db2.ID(), f[0].DBID)
	require.Equal(t, "link-test", f[0].AgentVersion)
}
