package storetest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// MemberSale builds a sale.completed of total for member that earned and
// spent points (spent points paid spent minor units).
func MemberSale(tb testing.TB, seq int64, member string, total, earned, spent int64, pending bool) wire.Event {
	tb.Helper()
	tenders := []wire.Tender{}
	if spent > 0 {
		tenders = append(tenders, wire.Tender{Kind: "points", Amount: spent, Ref: "points:" + itoa(spent)})
	}
	if total-spent > 0 {
		tenders = append(tenders, wire.Tender{Kind: "cash", Amount: total - spent})
	}
	return Event(tb, seq, wire.EventSaleCompleted, wire.SaleCompleted{SaleID: NewID(tb), Receipt: "T1-" + itoa(seq), BusinessDay: "2026-11-23",
		CompletedAt: T0.Add(time.Duration(seq) * time.Minute), Currency: "CNY", Member: member, Subtotal: total, Total: total,
		Lines:   []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, UnitPrice: total, Total: total}},
		Tenders: tenders, PointsEarned: earned, PointsSpent: spent, PointsPending: pending})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Handover builds a pickup.fulfilled event.
func Handover(tb testing.TB, seq int64, order, code string, final, complete bool, lines ...wire.PickupLine) wire.Event {
	tb.Helper()
	return Event(tb, seq, wire.EventPickupFulfilled, wire.PickupFulfilled{OrderID: order, Code: code, Lines: lines, Final: final, Complete: complete,
		HandoverID: NewID(tb), Cashier: "1001", HandedAt: T0.Add(time.Duration(seq) * time.Minute)})
}

// validated runs wire.ValidatePayload on each event, as the ingest path does.
func validated(tb testing.TB, evs ...wire.Event) []wire.Event {
	tb.Helper()
	for i := range evs {
		require.NoError(tb, wire.ValidatePayload(&evs[i]))
	}
	return evs
}

func memberFeed(tb testing.TB, es []hq.FeedEntry, id string) wire.MemberChange {
	tb.Helper()
	for _, e := range es {
		if e.Kind == wire.ChangeMember && e.Key == id {
			var m wire.MemberChange
			require.NoError(tb, json.Unmarshal(e.Data, &m))
			return m
		}
	}
	tb.Fatalf("no member %s entry in %v", id, es)
	return wire.MemberChange{}
}

// ingestAll validates b's events as the link does, ingests them and
// requires that none was rejected.
func ingestAll(t *testing.T, s hq.Store, b *wire.Batch) hq.IngestResult {
	t.Helper()
	b.Events = validated(t, b.Events...)
	r, err := s.IngestBatch(context.Background(), b, nil, T0)
	require.NoError(t, err)
	require.Empty(t, r.Rejected)
	return r
}

func runRetailSuite(t *testing.T, open Factory) {
	ctx := context.Background()
	ingest := ingestAll
	balance := func(t *testing.T, s hq.Store, id string) int64 {
		t.Helper()
		m, err := s.Member(ctx, id, 10)
		require.NoError(t, err)
		return m.Balance
	}

	t.Run("points earned, spent, overdrawn offline and given back by a void", func(t *testing.T) {
		s := open(t)
		es, err := s.PutMembers(ctx, hq.AllStores, []wire.MemberChange{{MemberID: "M1", Phone: "13800000001", Tier: "gold", Points: 100, OfflineCap: 50}}, T0)
		require.NoError(t, err)
		require.Equal(t, int64(100), memberFeed(t, es, "M1").Points, "the feed carries HQ's balance")
		require.Equal(t, int64(50), memberFeed(t, es, "M1").OfflineCap)

		dbA := NewID(t)
		sale := MemberSale(t, 1, "M1", 1299, 12, 0, false)
		r := ingest(t, s, Batch("S1", "T1", dbA, sale))
		require.Equal(t, int64(112), memberFeed(t, r.Feed, "M1").Points, "the new balance goes back down in the batch's feed entries")
		require.Equal(t, hq.AllStores, r.Feed[0].Store)
		r = ingest(t, s, Batch("S1", "T1", dbA, sale))
		require.Empty(t, r.Feed, "a redelivered batch moves nothing")
		require.Equal(t, int64(112), balance(t, s, "M1"))

		// Two stores offline each spend within the cap; together beyond
		// the balance: HQ keeps both and shows the overdraft.
		ingest(t, s, Batch("S1", "T1", dbA, MemberSale(t, 2, "M1", 8000, 0, 50, false), MemberSale(t, 3, "M1", 4000, 0, 40, false)))
		require.Equal(t, int64(22), balance(t, s, "M1"))
		ingest(t, s, Batch("S2", "T1", NewID(t), MemberSale(t, 1, "13800000001", 5000, 0, 50, false)))
		require.Equal(t, int64(-28), balance(t, s, "M1"), "the phone the cashier typed finds the member")
		conf, err := s.PointsConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 1)
		require.Equal(t, hq.ConflictOverdraft, conf[0].Reason)
		require.Equal(t, "S2", conf[0].Store)
		require.Equal(t, int64(-50), conf[0].Points)
		require.Equal(t, int64(-28), conf[0].Balance)

		// Voiding the first sale gives back the 12 it earned.
		var sp wire.SaleCompleted
		require.NoError(t, json.Unmarshal(sale.Payload, &sp))
		void := Event(t, 4, wire.EventSaleVoided, wire.SaleVoided{SaleID: sp.SaleID, Receipt: sp.Receipt, BusinessDay: "2026-11-23", VoidedAt: T0.Add(time.Hour),
			Manager: "9001", Total: 1299, Lines: sp.Lines})
		r = ingest(t, s, Batch("S1", "T1", dbA, void))
		require.Equal(t, int64(-40), memberFeed(t, r.Feed, "M1").Points)
		m, err := s.Member(ctx, "M1", 100)
		require.NoError(t, err)
		require.Equal(t, wire.MemberQR("M1"), m.QR)
		require.Len(t, m.Ledger, 6) // opening, earn, 3 spends, void
		require.Equal(t, hq.PointsVoid, m.Ledger[0].Kind, "newest first")
		require.Equal(t, int64(-12), m.Ledger[0].Points)
		require.Equal(t, hq.PointsOpening, m.Ledger[5].Kind)
		require.Len(t, m.Conflicts, 1)
	})

	t.Run("points of a sale whose member the store did not know", func(t *testing.T) {
		s := open(t)
		_, err := s.AppendChanges(ctx, []hq.ChangeInput{{Store: "S1", Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert,
			Data: json.RawMessage(`{"points_per_unit":2}`), At: T0}})
		require.NoError(t, err)
		_, err = s.PutMembers(ctx, "S1", []wire.MemberChange{{MemberID: "M1"}}, T0)
		require.NoError(t, err)
		r := ingest(t, s, Batch("S1", "T1", NewID(t), MemberSale(t, 1, "M1", 1299, 0, 0, true)))
		require.Equal(t, int64(24), balance(t, s, "M1"), "HQ earns it by the store's rule: 12 units × 2")
		require.Equal(t, "S1", r.Feed[0].Store, "a member meant for one store stays there")

		// A code HQ does not know either waits, and attaches when the
		// member is created with that phone.
		ingest(t, s, Batch("S1", "T2", NewID(t), MemberSale(t, 1, "13900000009", 500, 0, 0, true)))
		conf, err := s.PointsConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 1)
		require.Equal(t, hq.ConflictUnknownMember, conf[0].Reason)
		_, err = s.Member(ctx, "13900000009", 10)
		require.ErrorIs(t, err, hq.ErrNotFound)
		es, err := s.PutMembers(ctx, hq.AllStores, []wire.MemberChange{{MemberID: "M9", Phone: "13900000009", Points: 5}}, T0)
		require.NoError(t, err)
		require.Equal(t, int64(15), memberFeed(t, es, "M9").Points, "opening 5 + 10 earned before HQ knew the member")
		conf, err = s.PointsConflicts(ctx)
		require.NoError(t, err)
		require.Empty(t, conf, "attached: no longer a conflict")
	})

	t.Run("members: points move through the ledger only", func(t *testing.T) {
		s := open(t)
		_, err := s.PutMembers(ctx, "", []wire.MemberChange{{MemberID: "M1", Points: 10}}, T0)
		require.NoError(t, err)
		_, err = s.PutMembers(ctx, "", []wire.MemberChange{{MemberID: "M1", Points: 99}}, T0)
		require.ErrorIs(t, err, hq.ErrConflict)
		_, err = s.PutMembers(ctx, "", []wire.MemberChange{{MemberID: "M1", Tier: "gold", OfflineCap: 30}}, T0.Add(time.Minute))
		require.NoError(t, err, "a profile update without points")
		m, err := s.Member(ctx, "M1", 10)
		require.NoError(t, err)
		require.Equal(t, "gold", m.Tier)
		require.Equal(t, int64(10), m.Balance)

		e, feed, err := s.AdjustPoints(ctx, "M1", 25, "order-1", "bought online", T0)
		require.NoError(t, err)
		require.Equal(t, int64(35), e.Balance)
		require.Len(t, feed, 1)
		again, feed, err := s.AdjustPoints(ctx, "M1", 25, "order-1", "bought online", T0)
		require.NoError(t, err)
		require.Empty(t, feed, "the same ref again changes nothing")
		require.Equal(t, e.Key, again.Key)
		_, _, err = s.AdjustPoints(ctx, "M1", 7, "order-1", "", T0)
		require.ErrorIs(t, err, hq.ErrConflict, "a ref reused for another amount")
		_, _, err = s.AdjustPoints(ctx, "M1", -36, "redeem-1", "", T0)
		require.ErrorIs(t, err, hq.ErrConflict, "HQ is online: it refuses an overdraft")
		_, _, err = s.AdjustPoints(ctx, "nobody", 1, "x", "", T0)
		require.ErrorIs(t, err, hq.ErrNotFound)
		require.Equal(t, int64(35), balance(t, s, "M1"))
	})

	t.Run("pickup orders: hand-over in parts, conflicts kept visible", func(t *testing.T) {
		s := open(t)
		order := wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: hq.PickupOpen, Customer: "Li Lei", Phone: "13800000001", Paid: 3000,
			Lines: []wire.PickupLine{{SKU: "MILK", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}}
		e, err := s.CreatePickupOrder(ctx, "S1", order, T0)
		require.NoError(t, err)
		require.Equal(t, "S1", e.Store)
		dup := order
		dup.OrderID = "o2"
		_, err = s.CreatePickupOrder(ctx, "S1", dup, T0)
		require.ErrorIs(t, err, hq.ErrConflict, "a code is used once")

		db := NewID(t)
		r := ingest(t, s, Batch("S1", "T1", db, Handover(t, 1, "o1", "P-1001", false, false, wire.PickupLine{SKU: "MILK", Qty: 2000, Handed: 1000})))
		require.Len(t, r.Feed, 1, "the store's other terminals hear of the part handed over")
		var fed wire.PickupOrderChange
		require.NoError(t, json.Unmarshal(r.Feed[0].Data, &fed))
		require.Equal(t, hq.PickupPartial, fed.Status)
		require.Equal(t, int64(1000), fed.Lines[0].Handed)
		_, err = s.CancelPickupOrder(ctx, "S1", "o1", T0)
		require.ErrorIs(t, err, hq.ErrConflict, "part of it was handed over")

		ingest(t, s, Batch("S1", "T2", NewID(t), Handover(t, 1, "o1", "P-1001", true, false,
			wire.PickupLine{SKU: "MILK", Qty: 2000, Handed: 1000, Substitute: "MILK-LF"}, wire.PickupLine{SKU: "BREAD", Qty: 1000, Missing: true})))
		p, err := s.PickupOrder(ctx, "S1", "o1")
		require.NoError(t, err)
		require.Equal(t, hq.PickupFulfilled, p.Status)
		require.Equal(t, "MILK-LF", p.Order.Lines[0].Substitute)
		require.True(t, p.Order.Lines[1].Missing)
		require.Len(t, p.Handovers, 2)
		require.Equal(t, wire.PickupQR("S1", "P-1001"), p.QR)
		SameTime(t, T0.Add(time.Minute), p.HandedAt)

		// Cancelled at HQ while the store was offline; the store handed it
		// over anyway.
		_, err = s.CreatePickupOrder(ctx, "S1", wire.PickupOrderChange{OrderID: "o3", Code: "P-1003", Status: hq.PickupOpen, Paid: 100,
			Lines: []wire.PickupLine{{SKU: "MILK", Qty: 1000}}}, T0)
		require.NoError(t, err)
		_, err = s.CancelPickupOrder(ctx, "S1", "o3", T0)
		require.NoError(t, err)
		_, err = s.CancelPickupOrder(ctx, "S1", "o3", T0)
		require.ErrorIs(t, err, hq.ErrConflict)
		_, err = s.CancelPickupOrder(ctx, "S2", "o3", T0)
		require.ErrorIs(t, err, hq.ErrNotFound, "another store's order")
		_, err = s.CreatePickupOrder(ctx, "S2", wire.PickupOrderChange{OrderID: "o4", Code: "P-1004", Status: hq.PickupOpen,
			Lines: []wire.PickupLine{{SKU: "MILK", Qty: 1000}}}, T0)
		require.NoError(t, err)
		r = ingest(t, s, Batch("S1", "T1", db,
			Handover(t, 2, "o3", "P-1003", true, true, wire.PickupLine{SKU: "MILK", Qty: 1000, Handed: 1000}),
			Handover(t, 3, "nope", "P-9999", true, true, wire.PickupLine{SKU: "MILK", Qty: 1000, Handed: 1000}),
			Handover(t, 4, "o4", "P-1004", true, true, wire.PickupLine{SKU: "MILK", Qty: 1000, Handed: 1000}),
			Handover(t, 5, "o1", "P-1001", true, true, wire.PickupLine{SKU: "MILK", Qty: 2000, Handed: 1000})))
		require.Equal(t, int64(5), r.Through, "conflicts are stored and acked, never dropped")
		require.Empty(t, r.Feed)
		conf, err := s.PickupConflicts(ctx)
		require.NoError(t, err)
		require.Len(t, conf, 4)
		reasons := map[string]string{}
		for _, c := range conf {
			reasons[c.OrderID] = c.Reason
		}
		require.Equal(t, map[string]string{"o3": hq.ConflictCancelled, "nope": hq.ConflictUnknownOrder, "o4": hq.ConflictOtherStore,
			"o1": hq.ConflictAlreadyHanded}, reasons)
		for _, c := range conf {
			if c.OrderID == "o3" {
				SameTime(t, T0, c.CancelledAt)
				require.Equal(t, "T1", c.Terminal)
			}
		}
		p, err = s.PickupOrder(ctx, "S1", "o3")
		require.NoError(t, err)
		require.Equal(t, hq.PickupCancelled, p.Status, "HQ's state stands; the conflict shows beside it")
		require.Equal(t, hq.HandoverConflict, p.Handovers[0].Status)

		// More than ordered is a conflict too.
		_, err = s.CreatePickupOrder(ctx, "S1", wire.PickupOrderChange{OrderID: "o5", Code: "P-1005", Status: hq.PickupOpen,
			Lines: []wire.PickupLine{{SKU: "MILK", Qty: 1000}}}, T0)
		require.NoError(t, err)
		ingest(t, s, Batch("S1", "T1", db, Handover(t, 6, "o5", "P-1005", true, true, wire.PickupLine{SKU: "MILK", Qty: 1000, Handed: 3000})))
		p, err = s.PickupOrder(ctx, "S1", "o5")
		require.NoError(t, err)
		require.Equal(t, hq.PickupOpen, p.Status)
		require.Equal(t, hq.ConflictOverHanded, p.Handovers[0].Reason)

		list, err := s.PickupOrders(ctx, "S1", hq.PickupCancelled, 10)
		require.NoError(t, err)
		require.Len(t, list, 1)
		all, err := s.PickupOrders(ctx, "S1", "", 10)
		require.NoError(t, err)
		require.Len(t, all, 3)
		_, err = s.PickupOrder(ctx, "S2", "o1")
		require.ErrorIs(t, err, hq.ErrNotFound)
	})

	t.Run("online purchases returned in a store", func(t *testing.T) {
		s := open(t)
		_, err := s.CreatePickupOrder(ctx, "S1", wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: hq.PickupOpen, Paid: 1000,
			Lines: []wire.PickupLine{{SKU: "A", Qty: 2000}}}, T0)
		require.NoError(t, err)
		ret := func(seq int64, order string, amount int64) wire.Event {
			return Event(t, seq, wire.EventReturnCompleted, wire.ReturnCompleted{ReturnID: NewID(t), Receipt: "T1-R0000" + itoa(seq), Channel: "online", OrderID: order,
				BusinessDay: "2026-11-23", ReturnedAt: T0, Total: amount, Lines: []wire.SaleLine{{Line: 1, SKU: "A", Qty: 1000, Total: amount}},
				Refunds: []wire.Tender{{Kind: "online", Amount: amount, Ref: "owed by online channel"}}})
		}
		ingest(t, s, Batch("S1", "T1", NewID(t), Sale(t, 1, "2026-11-23", 500, 0), ret(2, "o1", 600), ret(3, "o1", 600), ret(4, "web-77", 300)))
		refunds, err := s.OnlineRefunds(ctx, "S1", "2026-11-23")
		require.NoError(t, err)
		require.Len(t, refunds, 3)
		byOrder := map[string][]string{}
		for _, r := range refunds {
			byOrder[r.OrderID] = append(byOrder[r.OrderID], r.Status)
		}
		require.Equal(t, []string{hq.RefundOwed, hq.RefundExceeds}, byOrder["o1"], "600 of 1000, then 600 more")
		require.Equal(t, []string{hq.RefundUnverified}, byOrder["web-77"], "an order HQ does not know")
		sales, err := s.Sales(ctx, "S1", "2026-11-23")
		require.NoError(t, err)
		require.Equal(t, int64(0), sales[0].Returned, "the store never sold it: its sales are not reduced")
		require.Equal(t, int64(500), sales[0].Net)
		inv, err := s.Inventory(ctx, "S1")
		require.NoError(t, err)
		require.Equal(t, int64(3000-1000), inv[0].Deltas, "the goods went back into the store's stock")
		none, err := s.OnlineRefunds(ctx, "S2", "")
		require.NoError(t, err)
		require.Empty(t, none)
	})

	t.Run("coupon ledger and daily report", func(t *testing.T) {
		s := open(t)
		issue := func(exp time.Time) wire.Coupon {
			c := wire.Coupon{ID: NewID(t), KeyID: "k1", Kind: wire.CouponAmountOff, Value: 500, Currency: "CNY", Member: "M1", NotBefore: T0.Add(-time.Hour), Expires: exp}
			_, err := s.IssueCoupons(ctx, []hq.IssuedCoupon{{Coupon: c, Token: "EP1.x.y", IssuedAt: T0.Add(-time.Hour)}}, nil)
			require.NoError(t, err)
			return c
		}
		double := issue(T0.Add(48 * time.Hour))
		revoked := issue(T0.Add(48 * time.Hour))
		expired := issue(T0.Add(30 * time.Minute))
		unused := issue(T0.Add(48 * time.Hour))
		lapsed := issue(T0.Add(10 * time.Minute))
		_, err := s.RevokeCoupon(ctx, revoked.ID, "refunded online", T0.Add(time.Hour))
		require.NoError(t, err)
		day := func(e wire.Event, d string) wire.Event {
			var p wire.CouponRedeemed
			require.NoError(t, json.Unmarshal(e.Payload, &p))
			p.BusinessDay = d
			e.Payload, _ = json.Marshal(p)
			return e
		}
		ingest(t, s, Batch("S1", "T1", NewID(t),
			day(Redeem(t, 1, double.ID, "T1-000001", T0.Add(10*time.Minute)), "2026-11-23"),
			day(Redeem(t, 2, revoked.ID, "T1-000002", T0.Add(2*time.Hour)), "2026-11-23"),
			day(Redeem(t, 3, expired.ID, "T1-000003", T0.Add(time.Hour)), "2026-11-23"),
			day(Redeem(t, 4, NewID(t), "T1-000004", T0.Add(3*time.Hour)), "2026-11-24")))
		ingest(t, s, Batch("S2", "T1", NewID(t), Redeem(t, 1, double.ID, "T1-000009", T0.Add(20*time.Minute))))

		rep, err := s.CouponReport(ctx, "S1", "2026-11-23", T0.Add(4*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, rep.Redeemed)
		require.Equal(t, int64(500), rep.RedeemedAmount)
		require.Equal(t, 2, rep.Conflicts)
		require.Equal(t, int64(1000), rep.ConflictAmount)
		require.Len(t, rep.Rows, 3)
		require.Equal(t, "T1-000001", rep.Rows[0].Receipt, "by redemption time")
		require.Equal(t, hq.RedemptionWinner, rep.Rows[0].Status)
		require.Equal(t, hq.CouponRedeemed, rep.Rows[0].CouponState)
		require.Equal(t, "M1", rep.Rows[0].Member)
		require.Equal(t, hq.ConflictExpired, rep.Rows[1].Reason, "redeemed after its expiry by the store's clock")
		require.Equal(t, hq.CouponExpired, rep.Rows[1].CouponState)
		require.Equal(t, hq.ConflictRevoked, rep.Rows[2].Reason)
		require.Equal(t, hq.CouponRevoked, rep.Rows[2].CouponState)
		SameTime(t, T0.Add(time.Hour), rep.Rows[2].RevokedAt)

		rep2, err := s.CouponReport(ctx, "S2", T0.Format(time.DateOnly), T0)
		require.NoError(t, err)
		require.Len(t, rep2.Rows, 1, "an older agent's redemption falls on the UTC day of its time")
		require.Equal(t, hq.ConflictDouble, rep2.Rows[0].Reason)
		require.Equal(t, "S1", rep2.Rows[0].WinnerStore)
		require.Equal(t, "T1-000001", rep2.Rows[0].WinnerReceipt)

		other, err := s.CouponReport(ctx, "S1", "2026-11-24", T0)
		require.NoError(t, err)
		require.Equal(t, hq.CouponUnknown, other.Rows[0].CouponState)

		var buf bytes.Buffer
		require.NoError(t, hq.WriteCouponReportCSV(&buf, rep))
		recs, err := csv.NewReader(&buf).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 4)
		require.Equal(t, hq.CouponReportColumns, recs[0])
		require.Equal(t, []string{"2026-11-23", "S1", "T1", double.ID, "T1-000001"}, recs[1][:5])
		require.Equal(t, "500", recs[1][7], "money in minor units")

		now := T0.Add(4 * time.Hour)
		states := map[string]string{}
		all, err := s.CouponLedger(ctx, "", now, 100)
		require.NoError(t, err)
		require.Len(t, all, 5)
		for _, c := range all {
			states[c.ID] = c.State
		}
		require.Equal(t, map[string]string{double.ID: hq.CouponRedeemed, revoked.ID: hq.CouponRevoked, expired.ID: hq.CouponExpired,
			unused.ID: hq.CouponIssued, lapsed.ID: hq.CouponExpired}, states)
		for state, want := range map[string][]string{
			hq.CouponIssued: {unused.ID}, hq.CouponRedeemed: {double.ID}, hq.CouponRevoked: {revoked.ID},
			hq.CouponExpired: {expired.ID, lapsed.ID}, hq.CouponConflicted: {double.ID, revoked.ID, expired.ID},
		} {
			got, err := s.CouponLedger(ctx, state, now, 100)
			require.NoError(t, err)
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			require.ElementsMatch(t, want, ids, state)
		}
		red, err := s.CouponLedger(ctx, hq.CouponRedeemed, now, 1)
		require.NoError(t, err)
		require.Equal(t, "T1-000001", red[0].Winner.Receipt)
		require.Equal(t, 1, red[0].Conflicts)
	})
}
