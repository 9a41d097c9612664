package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// ReturnOf builds a return.completed against the sale in event sale (a
// store return of goods worth amount, refunded in cash).
func ReturnOf(tb testing.TB, seq int64, sale wire.Event, amount int64) wire.Event {
	tb.Helper()
	var sp wire.SaleCompleted
	require.NoError(tb, json.Unmarshal(sale.Payload, &sp))
	return Event(tb, seq, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: NewID(tb), Receipt: "T1-R" + itoa(seq), OrigSaleID: sp.SaleID,
		OrigReceipt: sp.Receipt, Channel: "store", BusinessDay: "2026-11-23", ReturnedAt: T0.Add(time.Duration(seq) * time.Minute), Cashier: "1001",
		Total: amount, Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Total: amount}}, Refunds: []wire.Tender{{Kind: "cash", Amount: amount}}})
}

// ReturnAsPoints is ReturnOf refunded as the agent does when the sale was
// paid partly with points: value of it as points ("points:<points>"), the
// rest in cash.
func ReturnAsPoints(tb testing.TB, seq int64, sale wire.Event, amount, value, points int64) wire.Event {
	tb.Helper()
	e := ReturnOf(tb, seq, sale, amount)
	var p wire.ReturnCompleted
	require.NoError(tb, json.Unmarshal(e.Payload, &p))
	p.Refunds = []wire.Tender{{Kind: "cash", Amount: amount - value}, {Kind: "points", Amount: value, Ref: "points:" + itoa(points)}}
	raw, err := json.Marshal(p)
	require.NoError(tb, err)
	e.Payload = raw
	return e
}

// runReturnPointsSuite: returns against a member's store sale move its
// points back pro rata by value (docs/new-retail.md "Returns and points").
func runReturnPointsSuite(t *testing.T, open Factory) {
	ctx := context.Background()
	ingest := ingestAll
	member := func(t *testing.T, s hq.Store, id string) hq.MemberInfo {
		t.Helper()
		m, err := s.Member(ctx, id, 100)
		require.NoError(t, err)
		return m
	}
	// moved sums the member's ledger entries of kind: what the returns
	// (or a void) moved in all.
	moved := func(m hq.MemberInfo, kind string) int64 {
		var n int64
		for _, e := range m.Ledger {
			if e.Kind == kind {
				n += e.Points
			}
		}
		return n
	}
	newMember := func(t *testing.T, s hq.Store, points int64) {
		t.Helper()
		_, err := s.PutMembers(ctx, hq.AllStores, []wire.MemberChange{{MemberID: "M1", Points: points}}, T0)
		require.NoError(t, err)
	}

	t.Run("returns: a full return of a sale that earned and spent leaves the member where it was", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 500)
		db := NewID(t)
		// 10.00, 3.00 of it paid with 300 points: earns 7 on the 7.00 paid otherwise.
		sale := MemberSale(t, 1, "M1", 1000, 7, 300, false)
		ingest(t, s, Batch("S1", "T1", db, sale))
		require.Equal(t, int64(207), member(t, s, "M1").Balance)

		r := ingest(t, s, Batch("S1", "T1", db, ReturnAsPoints(t, 2, sale, 1000, 300, 300)))
		require.Equal(t, int64(500), memberFeed(t, r.Feed, "M1").Points, "the new balance goes down the feed")
		m := member(t, s, "M1")
		require.Equal(t, int64(500), m.Balance)
		require.Equal(t, hq.PointsReturnEarn, m.Ledger[0].Kind, "newest first: given back, then taken back")
		require.Equal(t, int64(-7), m.Ledger[0].Points)
		require.Equal(t, int64(500), m.Ledger[0].Balance)
		require.Equal(t, "T1-R2", m.Ledger[0].Receipt, "the return's number")
		require.Equal(t, hq.PointsReturnSpend, m.Ledger[1].Kind)
		require.Equal(t, int64(300), m.Ledger[1].Points)
		require.Equal(t, m.Ledger[2].SaleID, m.Ledger[0].SaleID, "filed under the sale returned against")
		require.Empty(t, m.Conflicts)
	})

	t.Run("returns: two partial returns move pro rata and add up to exactly the sale's points", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 500)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 1000, 6, 333, false)
		ingest(t, s, Batch("S1", "T1", db, sale))
		require.Equal(t, int64(173), member(t, s, "M1").Balance)

		// 4.00 of 10.00: 333 × 0.4 = 133.2 → 133 given back, 6 × 0.4 = 2.4 → 2 taken.
		ingest(t, s, Batch("S1", "T1", db, ReturnAsPoints(t, 2, sale, 400, 133, 133)))
		m := member(t, s, "M1")
		require.Equal(t, int64(133), moved(m, hq.PointsReturnSpend))
		require.Equal(t, int64(-2), moved(m, hq.PointsReturnEarn))
		require.Equal(t, int64(173+133-2), m.Balance)
		// The rest: what is left of both, not 200 and 4 rounded on their own.
		ingest(t, s, Batch("S1", "T1", db, ReturnAsPoints(t, 3, sale, 600, 200, 200)))
		m = member(t, s, "M1")
		require.Equal(t, int64(333), moved(m, hq.PointsReturnSpend))
		require.Equal(t, int64(-6), moved(m, hq.PointsReturnEarn))
		require.Equal(t, int64(500), m.Balance)

		// 12.99 earning 12, returned 5.00 then 7.99: 4 (4.6 down), then 8.
		sale2 := MemberSale(t, 4, "M1", 1299, 12, 0, false)
		ingest(t, s, Batch("S1", "T1", db, sale2, ReturnOf(t, 5, sale2, 500)))
		require.Equal(t, int64(508), member(t, s, "M1").Balance, "a sale and its return in one batch")
		ingest(t, s, Batch("S1", "T1", db, ReturnOf(t, 6, sale2, 799)))
		require.Equal(t, int64(500), member(t, s, "M1").Balance)
	})

	t.Run("returns: a redelivered return moves nothing again", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 0)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 2000, 20, 0, false)
		ret := ReturnOf(t, 2, sale, 1000)
		ingest(t, s, Batch("S1", "T1", db, sale, ret))
		require.Equal(t, int64(10), member(t, s, "M1").Balance)
		r := ingest(t, s, Batch("S1", "T1", db, ret))
		require.Empty(t, r.Feed)
		r = ingest(t, s, Batch("S1", "T1", db, sale, ret))
		require.Empty(t, r.Feed)
		m := member(t, s, "M1")
		require.Equal(t, int64(10), m.Balance)
		require.Len(t, m.Ledger, 2) // earn, return-earn
	})

	t.Run("returns: a return stored before its sale moves its points when the sale arrives", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 500)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 1000, 6, 333, false)
		// The batch with the returns reaches HQ first (another ingest
		// process took the sale's batch and has not committed yet).
		r := ingest(t, s, Batch("S1", "T1", db, ReturnAsPoints(t, 2, sale, 400, 133, 133), ReturnAsPoints(t, 3, sale, 600, 200, 200)))
		require.Empty(t, r.Feed, "nothing to move yet")
		require.Equal(t, int64(500), member(t, s, "M1").Balance)
		r = ingest(t, s, Batch("S1", "T1", db, sale))
		require.Equal(t, int64(500), memberFeed(t, r.Feed, "M1").Points, "the sale and both returns: where it started")
		m := member(t, s, "M1")
		require.Equal(t, int64(333), moved(m, hq.PointsReturnSpend))
		require.Equal(t, int64(-6), moved(m, hq.PointsReturnEarn))
		require.Empty(t, m.Conflicts, "given back before taken: no overdraft on the way")

		// Only part of it returned before the sale arrives: the rest later.
		sale2 := MemberSale(t, 4, "M1", 1299, 12, 0, false)
		ingest(t, s, Batch("S1", "T1", db, ReturnOf(t, 5, sale2, 500)))
		ingest(t, s, Batch("S1", "T1", db, sale2))
		require.Equal(t, int64(508), member(t, s, "M1").Balance)
		ingest(t, s, Batch("S1", "T1", db, ReturnOf(t, 6, sale2, 799)))
		require.Equal(t, int64(500), member(t, s, "M1").Balance)
	})

	t.Run("returns: no points move for a non-member sale, a blind return or an online return", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 50)
		db := NewID(t)
		plain := Sale(t, 1, "2026-11-23", 1000, 0)
		blind := Event(t, 3, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: NewID(t), Receipt: "T1-R3", Channel: "blind", BusinessDay: "2026-11-23",
			ReturnedAt: T0, Manager: "9001", Total: 300, Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Total: 300}}, Refunds: []wire.Tender{{Kind: "cash", Amount: 300}}})
		online := Event(t, 4, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: NewID(t), Receipt: "T1-R4", Channel: "online", OrderID: "o1",
			BusinessDay: "2026-11-23", ReturnedAt: T0, Total: 300, Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Total: 300}},
			Refunds: []wire.Tender{{Kind: "online", Amount: 300}}})
		r := ingest(t, s, Batch("S1", "T1", db, plain, ReturnOf(t, 2, plain, 1000), blind, online))
		require.Empty(t, r.Feed)
		m := member(t, s, "M1")
		require.Equal(t, int64(50), m.Balance)
		require.Len(t, m.Ledger, 1) // the opening balance
		conf, err := s.PointsConflicts(ctx)
		require.NoError(t, err)
		require.Empty(t, conf)
	})

	t.Run("returns: taking back earned points already spent is an overdraft conflict", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 0)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 1000, 10, 0, false)
		ingest(t, s, Batch("S1", "T1", db, sale, MemberSale(t, 2, "M1", 500, 0, 10, false)))
		require.Equal(t, int64(0), member(t, s, "M1").Balance)
		r := ingest(t, s, Batch("S1", "T1", db, ReturnOf(t, 3, sale, 1000)))
		require.Equal(t, int64(-10), memberFeed(t, r.Feed, "M1").Points, "HQ keeps the return: the goods came back")
		conf, err := s.PointsConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 1)
		require.Equal(t, hq.ConflictOverdraft, conf[0].Reason)
		require.Equal(t, int64(-10), conf[0].Points)
		require.Equal(t, int64(-10), conf[0].Balance)
		require.Equal(t, "T1-R3", conf[0].Receipt)
	})

	t.Run("returns: a return an older agent refunded all in money gives no spent points back", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 500)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 1000, 7, 300, false)
		// No "points" refund: the agent paid the goods' value in cash (up
		// to what was paid besides points), so the points stay spent; the
		// earned share is still taken back.
		ingest(t, s, Batch("S1", "T1", db, sale, ReturnOf(t, 2, sale, 500)))
		m := member(t, s, "M1")
		require.Zero(t, moved(m, hq.PointsReturnSpend))
		require.Equal(t, int64(-3), moved(m, hq.PointsReturnEarn))
		require.Equal(t, int64(500-300+7-3), m.Balance)
	})

	t.Run("returns: a void after a return gives back only what is left", func(t *testing.T) {
		s := open(t)
		newMember(t, s, 100)
		db := NewID(t)
		sale := MemberSale(t, 1, "M1", 1000, 10, 0, false)
		var sp wire.SaleCompleted
		require.NoError(t, json.Unmarshal(sale.Payload, &sp))
		void := Event(t, 3, wire.EventSaleVoided, wire.SaleVoided{SaleID: sp.SaleID, Receipt: sp.Receipt, BusinessDay: "2026-11-23", VoidedAt: T0.Add(time.Hour),
			Manager: "9001", Total: 1000, Lines: sp.Lines})
		ingest(t, s, Batch("S1", "T1", db, sale, ReturnOf(t, 2, sale, 500), void, ReturnOf(t, 4, sale, 500)))
		m := member(t, s, "M1")
		require.Equal(t, int64(100), m.Balance, "earned 10, 5 taken back by the return, 5 by the void, none after it")
		require.Equal(t, int64(-5), moved(m, hq.PointsVoid))
	})
}
