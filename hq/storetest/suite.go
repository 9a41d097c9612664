// Package storetest is the behaviour suite every hq.Store implementation
// passes: the same test body runs against SQLite and PostgreSQL, so the two
// cannot drift.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// Factory opens a fresh, empty store for one test; it registers its own
// cleanup.
type Factory func(t *testing.T) hq.Store

// T0 is the suite's reference time.
var T0 = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

// NewID returns a UUIDv7 string.
func NewID(tb testing.TB) string {
	tb.Helper()
	return uuid.Must(uuid.NewV7()).String()
}

// Event builds an event of typ with payload marshalled to JSON.
func Event(tb testing.TB, seq int64, typ string, payload any) wire.Event {
	tb.Helper()
	raw, err := json.Marshal(payload)
	require.NoError(tb, err)
	return wire.Event{Seq: seq, ID: NewID(tb), Type: typ, At: T0.Add(time.Duration(seq) * time.Second), Payload: raw}
}

// Stock builds a stock.level event.
func Stock(tb testing.TB, seq int64, sku string, onHand, delta int64, at time.Time) wire.Event {
	tb.Helper()
	return Event(tb, seq, wire.EventStockLevel, wire.StockLevel{SKU: sku, OnHand: onHand, Delta: delta, Reason: "sale", At: at})
}

// Sale builds a sale.completed event.
func Sale(tb testing.TB, seq int64, day string, total, tax int64) wire.Event {
	tb.Helper()
	return Event(tb, seq, wire.EventSaleCompleted, wire.SaleCompleted{SaleID: NewID(tb), Receipt: fmt.Sprintf("T1-%06d", seq), BusinessDay: day,
		CompletedAt: T0, Currency: "CNY", Subtotal: total, Tax: tax, Total: total,
		Lines:   []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, UnitPrice: total, Tax: tax, Total: total}},
		Tenders: []wire.Tender{{Kind: "cash", Amount: total}}})
}

// Redeem builds a coupon.redeemed event.
func Redeem(tb testing.TB, seq int64, coupon, receipt string, at time.Time) wire.Event {
	tb.Helper()
	return Event(tb, seq, wire.EventCouponRedeemed, wire.CouponRedeemed{CouponID: coupon, KeyID: "k1", SaleID: NewID(tb), Receipt: receipt, Amount: 500, RedeemedAt: at})
}

// Batch wraps events for store/terminal/db.
func Batch(store, terminal, db string, evs ...wire.Event) *wire.Batch {
	return &wire.Batch{V: wire.SchemaVersion, Store: store, Terminal: terminal, DBID: db, SentAt: T0, Events: evs}
}

// SameTime asserts two instants are equal to the microsecond: PostgreSQL
// keeps microseconds (rounded), SQLite nanoseconds. The raw event payload
// keeps the exact time either way.
func SameTime(tb testing.TB, want, got time.Time) {
	tb.Helper()
	require.WithinDuration(tb, want, got, time.Microsecond)
}

// RunSuite runs the behaviour suite against stores from open.
func RunSuite(t *testing.T, open Factory) {
	ctx := context.Background()
	ingest := func(t *testing.T, s hq.Store, b *wire.Batch, invalid map[int64]string) hq.IngestResult {
		t.Helper()
		r, err := s.IngestBatch(ctx, b, invalid, T0)
		require.NoError(t, err)
		return r
	}

	t.Run("idempotent insert", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		b := Batch("S1", "T1", db, Sale(t, 1, "2026-11-23", 1000, 100), Sale(t, 2, "2026-11-23", 500, 50), Stock(t, 3, "A", 5000, -1000, T0))
		r := ingest(t, s, b, nil)
		require.Equal(t, int64(3), r.Through)
		require.Equal(t, 3, r.Stored)
		require.Empty(t, r.Rejected)
		r = ingest(t, s, b, nil)
		require.Equal(t, int64(3), r.Through)
		require.Equal(t, 0, r.Stored)
		require.Equal(t, 3, r.Duplicates)
		sales, err := s.Sales(ctx, "S1", "")
		require.NoError(t, err)
		require.Len(t, sales, 1)
		require.Equal(t, int64(2), sales[0].Count, "a redelivered batch is counted once")
		require.Equal(t, int64(1500), sales[0].Gross)
	})

	t.Run("duplicate seq with another id is rejected", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		ingest(t, s, Batch("S1", "T1", db, Sale(t, 1, "2026-11-23", 100, 0), Sale(t, 2, "2026-11-23", 100, 0)), nil)
		other := Sale(t, 2, "2026-11-23", 999, 0)
		r := ingest(t, s, Batch("S1", "T1", db, other), nil)
		require.Equal(t, []wire.Rejection{{Seq: 2, ID: other.ID, Reason: hq.ReasonDuplicateSeq}}, r.Rejected)
		require.Equal(t, int64(2), r.Through)
		sales, err := s.Sales(ctx, "S1", "2026-11-23")
		require.NoError(t, err)
		require.Equal(t, int64(200), sales[0].Gross, "the original event stands")
	})

	t.Run("duplicate id at another seq is rejected and handled", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		first := Sale(t, 1, "2026-11-23", 100, 0)
		ingest(t, s, Batch("S1", "T1", db, first), nil)
		again := first
		again.Seq = 2
		r := ingest(t, s, Batch("S1", "T1", db, again, Sale(t, 3, "2026-11-23", 100, 0)), nil)
		require.Equal(t, []wire.Rejection{{Seq: 2, ID: first.ID, Reason: hq.ReasonDuplicateID}}, r.Rejected)
		require.Equal(t, int64(3), r.Through, "a rejected event does not hold the cursor")
		// The same id twice inside one batch.
		a := Sale(t, 4, "2026-11-23", 100, 0)
		b := a
		b.Seq = 5
		r = ingest(t, s, Batch("S1", "T1", db, a, b), nil)
		require.Equal(t, []wire.Rejection{{Seq: 5, ID: a.ID, Reason: hq.ReasonDuplicateID}}, r.Rejected)
		require.Equal(t, int64(5), r.Through)
		// Resent: the rejection is repeated so the terminal can dead-letter it.
		r = ingest(t, s, Batch("S1", "T1", db, a, b), nil)
		require.Equal(t, []wire.Rejection{{Seq: 5, ID: a.ID, Reason: hq.ReasonDuplicateID}}, r.Rejected)
	})

	t.Run("contiguous cursor with gaps", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		r := ingest(t, s, Batch("S1", "T1", db, Stock(t, 1, "A", 1, 1, T0), Stock(t, 2, "A", 2, 1, T0)), nil)
		require.Equal(t, int64(2), r.Through)
		r = ingest(t, s, Batch("S1", "T1", db, Stock(t, 4, "A", 4, 1, T0), Stock(t, 5, "A", 5, 1, T0)), nil)
		require.Equal(t, int64(2), r.Through, "the gap at 3 holds the ack")
		require.Equal(t, int64(5), r.High)
		r = ingest(t, s, Batch("S1", "T1", db, Stock(t, 7, "A", 7, 1, T0)), nil)
		require.Equal(t, int64(2), r.Through)
		r = ingest(t, s, Batch("S1", "T1", db, Stock(t, 3, "A", 3, 1, T0)), nil)
		require.Equal(t, int64(5), r.Through, "filling the gap releases through the next one")
		// Cursors are per terminal.
		r = ingest(t, s, Batch("S1", "T2", NewID(t), Stock(t, 1, "A", 1, 1, T0)), nil)
		require.Equal(t, int64(1), r.Through)
	})

	t.Run("cursor follows random deliveries", func(t *testing.T) {
		// Batches of random runs of seqs, with gaps inside them, overlaps,
		// redeliveries and rejected events, against a model: the cursor is
		// the highest seq below which every seq is handled.
		s := open(t)
		db := NewID(t)
		rng := rand.New(rand.NewPCG(3, 5))
		const n = 400
		evs := make([]wire.Event, n+1)
		for seq := int64(1); seq <= n; seq++ {
			evs[seq] = Stock(t, seq, "A", seq, 1, T0)
		}
		handled := map[int64]bool{}
		for round := 0; round < 120; round++ {
			lo := 1 + rng.Int64N(n)
			var b []wire.Event
			invalid := map[int64]string{}
			for seq := lo; seq <= n && len(b) < 1+rng.IntN(40); seq++ {
				if rng.IntN(4) == 0 {
					continue // a gap inside the batch
				}
				b = append(b, evs[seq])
				if !handled[seq] && rng.IntN(15) == 0 {
					invalid[seq] = "invalid payload: test"
				}
			}
			if len(b) == 0 {
				continue
			}
			r := ingest(t, s, Batch("S1", "T1", db, b...), invalid)
			for _, e := range b {
				handled[e.Seq] = true
			}
			var want int64
			for handled[want+1] {
				want++
			}
			require.Equal(t, want, r.Through, "round %d, batch %d..%d", round, b[0].Seq, b[len(b)-1].Seq)
		}
	})

	t.Run("invalid payload is quarantined, rejected and handled", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		bad := Event(t, 2, wire.EventStockLevel, map[string]any{"on_hand": 1})
		b := Batch("S1", "T1", db, Stock(t, 1, "A", 1, 1, T0), bad, Stock(t, 3, "A", 3, 1, T0))
		r := ingest(t, s, b, map[int64]string{2: "invalid payload.sku: missing"})
		require.Equal(t, int64(3), r.Through)
		require.Equal(t, 2, r.Stored)
		require.Equal(t, []wire.Rejection{{Seq: 2, ID: bad.ID, Reason: "invalid payload.sku: missing"}}, r.Rejected)
		q, err := s.ListQuarantine(ctx, 10)
		require.NoError(t, err)
		require.Len(t, q, 1)
		require.Equal(t, int64(2), q[0].Seq)
		require.Equal(t, bad.ID, q[0].EventID)
		require.Equal(t, "S1", q[0].Store)
		require.Contains(t, q[0].Reason, "sku")
		r = ingest(t, s, b, nil)
		require.Len(t, r.Rejected, 1, "a resend hears of the rejection again")
	})

	t.Run("whole-message quarantine", func(t *testing.T) {
		s := open(t)
		big := make([]byte, hq.MaxQuarantineRaw+100)
		require.NoError(t, s.Quarantine(ctx, hq.QuarantineEntry{ReceivedAt: T0, Topic: "edgepos/v1/x", Reason: "bad topic", Size: len(big), Raw: big}))
		require.NoError(t, s.Quarantine(ctx, hq.QuarantineEntry{ReceivedAt: T0.Add(time.Second), Topic: "t2", Store: "S1", Terminal: "T1", Reason: "malformed", Size: 3, Raw: []byte("{{{")}))
		q, err := s.ListQuarantine(ctx, 10)
		require.NoError(t, err)
		require.Len(t, q, 2)
		require.Equal(t, "malformed", q[0].Reason, "newest first")
		require.Equal(t, []byte("{{{"), q[0].Raw)
		SameTime(t, T0.Add(time.Second), q[0].ReceivedAt)
		require.Len(t, q[1].Raw, hq.MaxQuarantineRaw, "raw bytes are capped")
		require.Equal(t, len(big), q[1].Size)
	})

	t.Run("hello, rebase and db mismatch", func(t *testing.T) {
		s := open(t)
		oldDB, newDB := NewID(t), NewID(t)
		hr, err := s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: oldDB, AgentVersion: "1.0.0", Clock: T0}, T0)
		require.NoError(t, err)
		require.Equal(t, hq.HelloResult{}, hr)
		ingest(t, s, Batch("S1", "T1", oldDB, Stock(t, 1, "A", 1, 1, T0), Stock(t, 2, "A", 1, 1, T0), Stock(t, 4, "A", 1, 1, T0)), nil)

		hr, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: oldDB, LastSeq: 1, Clock: T0}, T0)
		require.NoError(t, err)
		require.Equal(t, int64(2), hr.Through, "known db: the contiguous cursor")
		require.Zero(t, hr.Rebase)

		_, err = s.IngestBatch(ctx, Batch("S1", "T1", newDB, Stock(t, 1, "A", 1, 1, T0)), nil, T0)
		require.ErrorIs(t, err, hq.ErrDBMismatch, "a new database must say hello first")

		skewed := T0.Add(72 * time.Hour)
		hr, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: newDB, AgentVersion: "1.1.0", Backlog: 7, OldestUnsync: T0.Add(-time.Hour), Clock: skewed, FeedVersion: 0}, T0)
		require.NoError(t, err)
		require.True(t, hr.NewDB)
		require.Equal(t, int64(4), hr.Rebase, "rebase above the highest seq held")
		require.Equal(t, int64(4), hr.Through)

		r := ingest(t, s, Batch("S1", "T1", newDB, Stock(t, 5, "A", 1, 1, T0)), nil)
		require.Equal(t, int64(5), r.Through)
		_, err = s.IngestBatch(ctx, Batch("S1", "T1", oldDB, Stock(t, 6, "A", 1, 1, T0)), nil, T0)
		require.ErrorIs(t, err, hq.ErrDBMismatch, "the old install is no longer accepted")

		fleet, err := s.Fleet(ctx)
		require.NoError(t, err)
		require.Len(t, fleet, 1)
		f := fleet[0]
		require.Equal(t, "1.1.0", f.AgentVersion)
		require.Equal(t, newDB, f.DBID)
		require.Equal(t, int64(7), f.Backlog)
		SameTime(t, T0.Add(-time.Hour), f.OldestUnsynced)
		require.Equal(t, (72 * time.Hour).Milliseconds(), f.ClockSkewMS)
		require.Equal(t, int64(5), f.AckedSeq)
		require.Equal(t, int64(5), f.HighSeq)
		SameTime(t, T0, f.LastUpload)

		// A reinstall before any event was stored: no rebase.
		hr, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S2", Terminal: "T1", DBID: NewID(t), Clock: T0}, T0)
		require.NoError(t, err)
		hr, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S2", Terminal: "T1", DBID: NewID(t), Clock: T0}, T0)
		require.NoError(t, err)
		require.Zero(t, hr.Rebase)
	})

	t.Run("status", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.SetStatus(ctx, "S1", "T1", true, T0))
		require.NoError(t, s.SetStatus(ctx, "S1", "T2", false, T0))
		fleet, err := s.Fleet(ctx)
		require.NoError(t, err)
		require.Len(t, fleet, 2)
		require.True(t, fleet[0].Online)
		require.False(t, fleet[1].Online)
		require.NoError(t, s.SetStatus(ctx, "S1", "T1", false, T0.Add(time.Minute)))
		fleet, err = s.Fleet(ctx)
		require.NoError(t, err)
		require.False(t, fleet[0].Online)
		SameTime(t, T0.Add(time.Minute), fleet[0].StatusAt)
		stores, err := s.Stores(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"S1"}, stores)
	})

	t.Run("sales projection with voids and returns", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		void := Event(t, 3, wire.EventSaleVoided, wire.SaleVoided{SaleID: "x", Receipt: "T1-000001", BusinessDay: "2026-11-23", VoidedAt: T0, Manager: "m", Total: 1000,
			Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Tax: 100, Total: 1000}}})
		ret := Event(t, 4, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: "r", Receipt: "T1-R1", Channel: "store", BusinessDay: "2026-11-24", ReturnedAt: T0, Total: 300,
			Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Tax: 30, Total: 300}}, Refunds: []wire.Tender{{Kind: "cash", Amount: 300}}})
		ingest(t, s, Batch("S1", "T1", db, Sale(t, 1, "2026-11-23", 1000, 100), Sale(t, 2, "2026-11-23", 2000, 200), void, ret,
			Sale(t, 5, "2026-11-24", 700, 70)), nil)
		ingest(t, s, Batch("S2", "T1", NewID(t), Sale(t, 1, "2026-11-23", 50, 5)), nil)
		all, err := s.Sales(ctx, "", "")
		require.NoError(t, err)
		require.Len(t, all, 3)
		d := all[0]
		require.Equal(t, hq.SalesDay{Store: "S1", BusinessDay: "2026-11-23", Count: 2, Gross: 3000, Tax: 200, VoidCount: 1, Voided: 1000, Net: 2000}, d)
		d = all[1]
		require.Equal(t, hq.SalesDay{Store: "S1", BusinessDay: "2026-11-24", Count: 1, Gross: 700, Tax: 40, ReturnCount: 1, Returned: 300, Net: 400}, d)
		day, err := s.Sales(ctx, "", "2026-11-23")
		require.NoError(t, err)
		require.Len(t, day, 2)
	})

	t.Run("inventory projection", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		ingest(t, s, Batch("S1", "T1", db, Stock(t, 1, "A", 9000, -1000, T0.Add(2*time.Minute)), Stock(t, 2, "B", 500, 500, T0)), nil)
		// A level reported earlier but delivered later (another terminal
		// that was offline) does not roll the level back; its delta counts.
		ingest(t, s, Batch("S1", "T2", NewID(t), Stock(t, 1, "A", 12000, -2000, T0.Add(time.Minute))), nil)
		ingest(t, s, Batch("S2", "T1", NewID(t), Stock(t, 1, "A", 1, 1, T0)), nil)
		inv, err := s.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Len(t, inv, 2)
		require.Equal(t, "A", inv[0].SKU)
		require.Equal(t, int64(9000), inv[0].OnHand)
		require.Equal(t, int64(-3000), inv[0].Deltas)
		SameTime(t, T0.Add(2*time.Minute), inv[0].ReportedAt)
		ingest(t, s, Batch("S1", "T1", db, Stock(t, 3, "A", 8000, -1000, T0.Add(3*time.Minute))), nil)
		inv, err = s.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Equal(t, int64(8000), inv[0].OnHand)
		all, err := s.Inventory(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 3)
	})

	t.Run("inventory from sale lines", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		onHand := int64(4000)
		sale := Event(t, 1, wire.EventSaleCompleted, wire.SaleCompleted{SaleID: NewID(t), Receipt: "T1-000001", BusinessDay: "2026-11-23",
			CompletedAt: T0.Add(time.Minute), Currency: "CNY", Total: 300,
			Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 2000, UnitPrice: 150, Total: 300, OnHand: &onHand}, {Line: 2, SKU: "C", Qty: 1000, UnitPrice: 0, Total: 0}}})
		ingest(t, s, Batch("S1", "T1", db, sale), nil)
		inv, err := s.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Len(t, inv, 2)
		require.Equal(t, "A", inv[0].SKU)
		require.Equal(t, int64(4000), inv[0].OnHand, "the level the store reported with the line")
		require.Equal(t, int64(-2000), inv[0].Deltas)
		require.Equal(t, int64(-1000), inv[1].Deltas, "a line without a level still moves the deltas")
	})

	t.Run("events read back", func(t *testing.T) {
		s := open(t)
		b := Batch("S1", "T2", NewID(t), Sale(t, 1, "2026-11-23", 100, 10), Sale(t, 2, "2026-11-23", 200, 20))
		ingest(t, s, b, nil)
		ingest(t, s, Batch("S2", "T1", NewID(t), Sale(t, 1, "2026-11-23", 300, 30)), nil)
		var got []wire.Event
		require.NoError(t, s.Events(ctx, "S1", wire.EventSaleCompleted, func(term string, e wire.Event) error {
			require.Equal(t, "T2", term)
			got = append(got, e)
			return nil
		}))
		require.Len(t, got, 2)
		require.Equal(t, b.Events[0].ID, got[0].ID)
		require.JSONEq(t, string(b.Events[1].Payload), string(got[1].Payload))
		n := 0
		require.NoError(t, s.Events(ctx, "S1", "no.such", func(string, wire.Event) error { n++; return nil }))
		require.Zero(t, n)
	})

	t.Run("coupon conflicts", func(t *testing.T) {
		s := open(t)
		coupon := NewID(t)
		ingest(t, s, Batch("S1", "T1", NewID(t), Redeem(t, 1, coupon, "S1-T1-1", T0.Add(time.Hour))), nil)
		conf, err := s.CouponConflicts(ctx)
		require.NoError(t, err)
		require.Empty(t, conf)

		// Redeemed in a second store later: a conflict listing both receipts.
		ingest(t, s, Batch("S2", "T1", NewID(t), Redeem(t, 1, coupon, "S2-T1-1", T0.Add(2*time.Hour))), nil)
		conf, err = s.CouponConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 1)
		require.Equal(t, hq.ConflictDouble, conf[0].Reason)
		require.Equal(t, "S2-T1-1", conf[0].Loser.Receipt)
		require.NotNil(t, conf[0].Winner)
		require.Equal(t, "S1-T1-1", conf[0].Winner.Receipt)

		// A third store that was offline redeemed it EARLIER: the winner flips.
		ingest(t, s, Batch("S3", "T9", NewID(t), Redeem(t, 1, coupon, "S3-T9-1", T0)), nil)
		conf, err = s.CouponConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 2)
		for _, c := range conf {
			require.Equal(t, "S3-T9-1", c.Winner.Receipt)
			require.NotEqual(t, "S3-T9-1", c.Loser.Receipt)
		}
		info, err := s.Coupon(ctx, coupon)
		require.NoError(t, err)
		require.False(t, info.Issued)
		require.Len(t, info.Redemptions, 3)
		require.Equal(t, hq.RedemptionWinner, info.Redemptions[0].Status)
		require.Equal(t, "S3", info.Redemptions[0].Store)

		_, err = s.Coupon(ctx, NewID(t))
		require.ErrorIs(t, err, hq.ErrNotFound)
	})

	t.Run("issued, revoked then redeemed", func(t *testing.T) {
		s := open(t)
		c := wire.Coupon{ID: NewID(t), KeyID: "k1", Kind: wire.CouponAmountOff, Value: 500, Currency: "CNY", NotBefore: T0, Expires: T0.Add(48 * time.Hour)}
		_, err := s.IssueCoupons(ctx, []hq.IssuedCoupon{{Coupon: c, Token: "EP1.x.y", IssuedAt: T0}}, nil)
		require.NoError(t, err)
		info, err := s.Coupon(ctx, c.ID)
		require.NoError(t, err)
		require.True(t, info.Issued)
		require.Equal(t, c.Value, info.Coupon.Value)
		require.Empty(t, info.Redemptions)

		// Redeemed before the revocation: fine. After: a conflict.
		ingest(t, s, Batch("S1", "T1", NewID(t), Redeem(t, 1, c.ID, "before", T0.Add(time.Hour))), nil)
		e, err := s.RevokeCoupon(ctx, c.ID, "fraud", T0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, wire.ChangeRevocation, e.Kind)
		require.Equal(t, hq.AllStores, e.Store)
		ingest(t, s, Batch("S2", "T1", NewID(t), Redeem(t, 1, c.ID, "after", T0.Add(3*time.Hour))), nil)
		conf, err := s.CouponConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 1)
		require.Equal(t, hq.ConflictRevoked, conf[0].Reason)
		require.Equal(t, "after", conf[0].Loser.Receipt)

		_, err = s.RevokeCoupon(ctx, NewID(t), "x", T0)
		require.ErrorIs(t, err, hq.ErrNotFound)
		info, err = s.Coupon(ctx, c.ID)
		require.NoError(t, err)
		SameTime(t, T0.Add(2*time.Hour), info.RevokedAt)
	})

	t.Run("feed versions", func(t *testing.T) {
		s := open(t)
		v, err := s.FeedLatest(ctx, "S1")
		require.NoError(t, err)
		require.Zero(t, v)
		es, err := s.AppendChanges(ctx, []hq.ChangeInput{
			{Store: hq.AllStores, Kind: wire.ChangeProduct, Key: "A", Op: wire.OpUpsert, Data: json.RawMessage(`{"sku":"A"}`), At: T0},
			{Store: "S1", Kind: wire.ChangeProduct, Key: "B", Op: wire.OpUpsert, Data: json.RawMessage(`{"sku":"B"}`), At: T0},
			{Store: "S2", Kind: wire.ChangeProduct, Key: "C", Op: wire.OpDelete, At: T0},
		})
		require.NoError(t, err)
		require.Len(t, es, 3)
		require.Less(t, es[0].Version, es[1].Version)
		require.Less(t, es[1].Version, es[2].Version)

		s1, err := s.FeedSince(ctx, "S1", 0, 100)
		require.NoError(t, err)
		require.Len(t, s1, 2, "own entries and those for every store")
		require.Equal(t, "A", s1[0].Key)
		require.JSONEq(t, `{"sku":"B"}`, string(s1[1].Data))
		SameTime(t, T0, s1[1].At)
		s1, err = s.FeedSince(ctx, "S1", es[0].Version, 100)
		require.NoError(t, err)
		require.Len(t, s1, 1)
		s2, err := s.FeedSince(ctx, "S2", 0, 1)
		require.NoError(t, err)
		require.Len(t, s2, 1, "limit")
		require.Equal(t, "A", s2[0].Key)

		v, err = s.FeedLatest(ctx, "S1")
		require.NoError(t, err)
		require.Equal(t, es[1].Version, v)
		v, err = s.FeedLatest(ctx, "S9")
		require.NoError(t, err)
		require.Equal(t, es[0].Version, v)
		v, err = s.FeedBefore(ctx, "S2", es[2].Version)
		require.NoError(t, err)
		require.Equal(t, es[0].Version, v, "S2's entry before C is A, not S1's B")

		lc, err := s.LatestChange(ctx, "S2", wire.ChangeProduct, "C")
		require.NoError(t, err)
		require.Equal(t, wire.OpDelete, lc.Op)
		_, err = s.LatestChange(ctx, "S1", wire.ChangeProduct, "C")
		require.ErrorIs(t, err, hq.ErrNotFound)

		stores, err := s.Stores(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"S1", "S2"}, stores)

		// Hello reports the store's latest version.
		hr, err := s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: NewID(t), Clock: T0}, T0)
		require.NoError(t, err)
		require.Equal(t, es[1].Version, hr.FeedVersion)
	})

	t.Run("feed numbering continues above a terminal's cursor", func(t *testing.T) {
		// HQ restored from an older backup: a terminal has applied version
		// 40, HQ's feed is at 1. New entries must number above 40.
		s := open(t)
		_, err := s.AppendChanges(ctx, []hq.ChangeInput{{Store: "S1", Kind: wire.ChangeProduct, Key: "A", Op: wire.OpUpsert, At: T0}})
		require.NoError(t, err)
		_, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: NewID(t), FeedVersion: 40, Clock: T0}, T0)
		require.NoError(t, err)
		es, err := s.AppendChanges(ctx, []hq.ChangeInput{{Store: "S1", Kind: wire.ChangeProduct, Key: "B", Op: wire.OpUpsert, At: T0}})
		require.NoError(t, err)
		require.Greater(t, es[0].Version, int64(40))
		// A hello behind HQ does not move anything.
		_, err = s.Hello(ctx, &wire.Hello{V: 1, Store: "S1", Terminal: "T1", DBID: NewID(t), FeedVersion: 2, Clock: T0}, T0)
		require.NoError(t, err)
		es2, err := s.AppendChanges(ctx, []hq.ChangeInput{{Store: "S1", Kind: wire.ChangeProduct, Key: "C", Op: wire.OpUpsert, At: T0}})
		require.NoError(t, err)
		require.Equal(t, es[0].Version+1, es2[0].Version)
	})

	t.Run("member coupon issue appends feed entries", func(t *testing.T) {
		s := open(t)
		c := wire.Coupon{ID: NewID(t), KeyID: "k1", Kind: wire.CouponPercentOff, Value: 1000, Currency: "CNY", Member: "M1", NotBefore: T0, Expires: T0.Add(time.Hour)}
		data, _ := json.Marshal(wire.CouponChange{CouponID: c.ID, Member: "M1", Token: "tok"})
		es, err := s.IssueCoupons(ctx, []hq.IssuedCoupon{{Coupon: c, Token: "tok", IssuedAt: T0}},
			[]hq.ChangeInput{{Store: hq.AllStores, Kind: wire.ChangeCoupon, Key: c.ID, Op: wire.OpUpsert, Data: data, At: T0}})
		require.NoError(t, err)
		require.Len(t, es, 1)
		_, err = s.IssueCoupons(ctx, []hq.IssuedCoupon{{Coupon: c, Token: "tok", IssuedAt: T0}}, nil)
		require.Error(t, err, "a coupon id is issued once")
	})

	t.Run("times stored as sent", func(t *testing.T) {
		s := open(t)
		far := T0.Add(-96 * time.Hour) // a store clock days off
		e := Stock(t, 1, "A", 1, 1, far)
		e.At = far
		r := ingest(t, s, Batch("S1", "T1", NewID(t), e), nil)
		require.Equal(t, int64(1), r.Through)
		inv, err := s.Inventory(ctx, "S1")
		require.NoError(t, err)
		SameTime(t, far, inv[0].ReportedAt)
	})

	t.Run("stock folded per batch equals one movement at a time", func(t *testing.T) {
		// The store sums a batch's stock movements per SKU before it writes
		// them; the result must be what applying them one by one gives:
		// deltas add up, and the level with the latest time wins (of equal
		// times, the later movement), against what was stored before too.
		rng := rand.New(rand.NewPCG(7, 11))
		times := []time.Time{T0, T0.Add(time.Nanosecond), T0.Add(2 * time.Nanosecond), T0.Add(time.Second), T0.Add(-time.Minute),
			T0.Add(time.Hour), {}, time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC)}
		skus := []string{"A", "B", "C"}
		// Fixed cases first. D: of two levels within one microsecond the
		// later movement wins on PostgreSQL (it keeps microseconds), the
		// later time on SQLite. E: a line without a level creates the row
		// at the zero time, which a level from before it does not replace.
		x, y := int64(111), int64(222)
		sale := func(seq int64, at time.Time, lines ...wire.SaleLine) wire.Event {
			return Event(t, seq, wire.EventSaleCompleted, wire.SaleCompleted{SaleID: NewID(t), Receipt: fmt.Sprintf("T1-%06d", seq),
				BusinessDay: "2026-11-23", CompletedAt: at, Currency: "CNY", Total: 200, Lines: lines})
		}
		evs := []wire.Event{
			sale(1, T0.Add(2*time.Nanosecond), wire.SaleLine{Line: 1, SKU: "D", Qty: 1000, OnHand: &x}),
			sale(2, T0.Add(time.Nanosecond), wire.SaleLine{Line: 1, SKU: "D", Qty: 1000, OnHand: &y}),
			sale(3, T0, wire.SaleLine{Line: 1, SKU: "E", Qty: 1000}),
			sale(4, time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC), wire.SaleLine{Line: 1, SKU: "E", Qty: 1000, OnHand: &x}),
		}
		for seq := int64(len(evs) + 1); seq <= 300; seq++ {
			at := times[rng.IntN(len(times))]
			sku := skus[rng.IntN(len(skus))]
			var level *int64
			if rng.IntN(3) > 0 {
				v := rng.Int64N(10_000)
				level = &v
			}
			lines := []wire.SaleLine{{Line: 1, SKU: sku, Qty: 1 + rng.Int64N(3000), Total: 100, OnHand: level},
				{Line: 2, SKU: skus[rng.IntN(len(skus))], Qty: 1000, Total: 100}}
			switch rng.IntN(4) {
			case 0:
				e := Stock(t, seq, sku, rng.Int64N(10_000), rng.Int64N(2000)-1000, at)
				evs = append(evs, e)
			case 1:
				evs = append(evs, Event(t, seq, wire.EventSaleCompleted, wire.SaleCompleted{SaleID: NewID(t), Receipt: fmt.Sprintf("T1-%06d", seq),
					BusinessDay: "2026-11-23", CompletedAt: at, Currency: "CNY", Total: 200, Lines: lines}))
			case 2:
				evs = append(evs, Event(t, seq, wire.EventSaleVoided, wire.SaleVoided{SaleID: NewID(t), Receipt: fmt.Sprintf("T1-%06d", seq),
					BusinessDay: "2026-11-23", VoidedAt: at, Manager: "9", Total: 200, Lines: lines}))
			default:
				evs = append(evs, Event(t, seq, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: NewID(t), Receipt: fmt.Sprintf("T1-%06d", seq),
					Channel: "store", BusinessDay: "2026-11-23", ReturnedAt: at, Total: 200, Lines: lines}))
			}
		}
		batched, single := open(t), open(t)
		db := NewID(t)
		for _, cut := range [][2]int{{0, 20}, {20, 150}, {150, 151}, {151, 300}} {
			ingest(t, batched, Batch("S1", "T1", db, evs[cut[0]:cut[1]]...), nil)
		}
		for i := range evs {
			ingest(t, single, Batch("S1", "T1", db, evs[i]), nil)
		}
		want, err := single.Inventory(ctx, "S1")
		require.NoError(t, err)
		got, err := batched.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Len(t, got, len(skus)+2)
		require.Equal(t, want, got)
	})

	t.Run("large batch", func(t *testing.T) {
		s := open(t)
		db := NewID(t)
		var evs []wire.Event
		for i := int64(1); i <= wire.MaxBatchEvents; i++ {
			evs = append(evs, Stock(t, i, fmt.Sprintf("SKU-%d", i%50), i, 1, T0))
		}
		r := ingest(t, s, Batch("S1", "T1", db, evs...), nil)
		require.Equal(t, int64(wire.MaxBatchEvents), r.Through)
		require.Equal(t, wire.MaxBatchEvents, r.Stored)
		inv, err := s.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Len(t, inv, 50)
	})

	runRetailSuite(t, open)
	runReturnPointsSuite(t, open)
}
