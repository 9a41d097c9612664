package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

var feedVersion atomic.Int64

// applyChange applies one change-feed entry as the sync link would.
func applyChange(tb testing.TB, l *Ledger, kind, key, op string, data any) {
	tb.Helper()
	raw, err := json.Marshal(data)
	require.NoError(tb, err)
	ctx := context.Background()
	require.NoError(tb, l.DB().WriteTx(ctx, func(tx *sql.Tx) error {
		return l.ApplyChange(ctx, tx, wire.Change{Version: feedVersion.Add(1), Kind: kind, Key: key, Op: op, Data: raw, At: l.now()})
	}))
}

func putMember(tb testing.TB, l *Ledger, m wire.MemberChange) {
	tb.Helper()
	applyChange(tb, l, wire.ChangeMember, m.MemberID, wire.OpUpsert, m)
}

func putOrder(tb testing.TB, l *Ledger, o wire.PickupOrderChange) {
	tb.Helper()
	applyChange(tb, l, wire.ChangePickupOrder, o.OrderID, wire.OpUpsert, o)
}

// events returns the outbox payloads of typ, oldest first.
func events[T any](tb testing.TB, db *localdb.DB, typ string) []T {
	tb.Helper()
	rows, err := db.Read.Query("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", typ)
	require.NoError(tb, err)
	defer rows.Close()
	var out []T
	for rows.Next() {
		var raw string
		require.NoError(tb, rows.Scan(&raw))
		var v T
		require.NoError(tb, json.Unmarshal([]byte(raw), &v))
		out = append(out, v)
	}
	require.NoError(tb, rows.Err())
	return out
}

func onHand(tb testing.TB, l *Ledger, sku string) int64 {
	tb.Helper()
	var n int64
	require.NoError(tb, l.DB().Read.QueryRow("SELECT on_hand FROM inventory WHERE sku = ?", sku).Scan(&n))
	return n
}

// ackAll acks every outbox event, as HQ's ack would.
func ackAll(tb testing.TB, db *localdb.DB) {
	tb.Helper()
	st, err := db.OutboxState(context.Background())
	require.NoError(tb, err)
	_, err = db.AckThrough(context.Background(), st.LastSeq)
	require.NoError(tb, err)
}

func TestPointsEarnedSpentAndCappedOffline(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 100, OfflineCap: 50})

	s := f.sale(t, "TEA500", "MILK1L") // 17.40
	s, err := f.l.AttachMember(ctx, s.ID, wire.MemberQR("M1"))
	require.NoError(t, err)
	require.Equal(t, "M1", s.Member, "the member QR names the member")
	s, err = f.l.PayWithPoints(ctx, s.ID, 30)
	require.NoError(t, err)
	require.Equal(t, Tender{Kind: TenderPoints, Amount: 30, Ref: "points:30"}, s.Tenders[0])
	_, err = f.l.AttachMember(ctx, s.ID, "13800000009")
	require.ErrorIs(t, err, ErrSaleState, "the member cannot change under tendered points")
	s = f.pay(t, s)
	done, err := f.l.CompleteSale(ctx, s.ID, "")
	require.NoError(t, err)
	require.EqualValues(t, 30, done.PointsSpent)
	require.EqualValues(t, 17, done.PointsEarned, "17.10 paid besides points earns 17 at one point per yuan")
	ev := events[wire.SaleCompleted](t, f.db, wire.EventSaleCompleted)[0]
	require.Equal(t, "M1", ev.Member)
	require.EqualValues(t, 30, ev.PointsSpent)
	require.EqualValues(t, 17, ev.PointsEarned)
	require.False(t, ev.PointsPending)

	mp, err := f.l.MemberPoints(ctx, "13800000001")
	require.NoError(t, err)
	require.Equal(t, MemberPoints{Member: Member{ID: "M1", Phone: "13800000001", Points: 100, OfflineCap: 50}, Balance: 100,
		UnconfirmedSpent: 30, UnconfirmedEarned: 17, Provisional: 87, Spendable: 20, CapLeft: 20, PointValue: 1}, mp)

	// Offline: 30 of the cap of 50 is used; 21 more would pass it.
	s2 := f.sale(t, "RICE5")
	s2, err = f.l.AttachMember(ctx, s2.ID, "M1")
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s2.ID, 21)
	require.ErrorIs(t, err, ErrPointsCap)
	s2, err = f.l.PayWithPoints(ctx, s2.ID, 20)
	require.NoError(t, err)
	// Another cart on this terminal spends the same headroom first: the
	// completion checks again.
	s3 := f.sale(t, "BREAD")
	_, err = f.l.AttachMember(ctx, s3.ID, "M1")
	require.NoError(t, err)
	s3, err = f.l.PayWithPoints(ctx, s3.ID, 15)
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, f.pay(t, s2).ID, "")
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, f.pay(t, s3).ID, "")
	require.ErrorIs(t, err, ErrPointsCap, "the cap is checked again at completion")

	// HQ confirms (ack) and sends the new balance: the cap frees up.
	ackAll(t, f.db)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 100 - 30 + 17 - 20 + 49, OfflineCap: 50})
	mp, err = f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.EqualValues(t, 116, mp.Provisional)
	require.EqualValues(t, 50, mp.Spendable)
	_, err = f.l.CompleteSale(ctx, s3.ID, "")
	require.NoError(t, err, "within the cap again")

	// More than the balance.
	putMember(t, f.l, wire.MemberChange{MemberID: "M2", Points: 10})
	s4 := f.sale(t, "WATER")
	_, err = f.l.AttachMember(ctx, s4.ID, "M2")
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s4.ID, 11)
	require.ErrorIs(t, err, ErrPointsBalance)
	_, err = f.l.PayWithPoints(ctx, s4.ID, 0)
	require.ErrorIs(t, err, ErrBadAmount)
	_, err = f.l.PayWithPoints(ctx, s4.ID, 10)
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s4.ID, 1)
	require.ErrorIs(t, err, ErrPointsBalance, "tendered points count")

	// Points pay at most what is due.
	putMember(t, f.l, wire.MemberChange{MemberID: "M3", Points: 100000})
	s5 := f.sale(t, "WATER")
	_, err = f.l.AttachMember(ctx, s5.ID, "M3")
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s5.ID, 201)
	require.ErrorIs(t, err, ErrBadAmount)
}

func TestUnknownMemberSellsWithoutPoints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "CHOCO")
	s, err := f.l.AttachMember(ctx, s.ID, "13900000009") // a phone the store has not heard of
	require.NoError(t, err)
	require.Equal(t, "13900000009", s.Member, "attached as typed")
	_, err = f.l.PayWithPoints(ctx, s.ID, 1)
	require.ErrorIs(t, err, ErrPointsMember, "points need a member the store knows")
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err, "the sale goes on")
	require.Zero(t, done.PointsEarned)
	require.True(t, done.PointsPending)
	ev := events[wire.SaleCompleted](t, f.db, wire.EventSaleCompleted)[0]
	require.True(t, ev.PointsPending, "HQ attaches the points later")
	require.Equal(t, "13900000009", ev.Member)

	s = f.sale(t, "CHOCO")
	_, err = f.l.AttachMember(ctx, s.ID, strings.Repeat("9", 65))
	require.ErrorIs(t, err, ErrMemberCode, "HQ would refuse the sale's event")
	_, err = f.l.AttachMember(ctx, s.ID, "M 1")
	require.ErrorIs(t, err, ErrMemberCode)
	_, err = f.l.PayWithPoints(ctx, s.ID, 5)
	require.ErrorIs(t, err, ErrPointsMember, "no member attached")
}

func TestPointsPaidPartIsNotRefundedAsCash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 1000})
	s := f.sale(t, "MILK1L")
	_, err := f.l.AttachMember(ctx, s.ID, "M1")
	require.NoError(t, err)
	s, err = f.l.PayWithPoints(ctx, s.ID, 290)
	require.NoError(t, err)
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)
	_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Cashier: DemoCashier, Manager: DemoManager,
		Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}})
	require.ErrorIs(t, err, ErrRefundTooLarge)
}

func pickupFixture(t *testing.T) *fixture {
	f := newFixture(t)
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Phone: "13800000001", Paid: 4480,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}, {SKU: "TEA500", Qty: 1000}}})
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o2", Code: "P-1002", Status: "open", Phone: "13800000001", Paid: 200,
		Lines: []wire.PickupLine{{SKU: "WATER", Qty: 1000}}})
	return f
}

func TestPickupLookup(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	os, err := f.l.LookupPickup(ctx, wire.PickupQR("S001", "P-1001"))
	require.NoError(t, err)
	require.Len(t, os, 1)
	require.Equal(t, "o1", os[0].ID)
	os, err = f.l.LookupPickup(ctx, " P-1002 ")
	require.NoError(t, err)
	require.Equal(t, "o2", os[0].ID)
	os, err = f.l.LookupPickup(ctx, "13800000001")
	require.NoError(t, err)
	require.Len(t, os, 2, "a phone finds every order still to hand over")

	_, err = f.l.LookupPickup(ctx, "P-9999")
	require.ErrorIs(t, err, ErrPickupUnknown)
	_, err = f.l.LookupPickup(ctx, wire.PickupQR("S002", "P-1001"))
	require.ErrorIs(t, err, ErrPickupOtherStore, "told apart from an unknown code while offline")
	_, err = f.l.LookupPickup(ctx, "")
	require.ErrorIs(t, err, ErrPickupUnknown)
}

func TestPickupHandoverPartialSubstituteMissing(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	milk, water, tea := onHand(t, f.l, "MILK1L"), onHand(t, f.l, "WATER"), onHand(t, f.l, "TEA500")

	h, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: wire.PickupQR("S001", "P-1001"), Cashier: DemoCashier, Lines: []HandoverLine{
		{SKU: "MILK1L", Handed: 1000}, {SKU: "TEA500", Handed: 1000, Substitute: "WATER"}}})
	require.NoError(t, err)
	require.False(t, h.Final)
	require.False(t, h.Complete)
	require.Equal(t, PickupPartial, h.Order.Status)
	require.Equal(t, milk-1000, onHand(t, f.l, "MILK1L"), "stock moves at the store")
	require.Equal(t, water-1000, onHand(t, f.l, "WATER"), "the substitute left the shelf")
	require.Equal(t, tea, onHand(t, f.l, "TEA500"))

	// Its rows, stock and events were one transaction: the events are in
	// the outbox, the hand-over knows its event's seq.
	ful := events[wire.PickupFulfilled](t, f.db, wire.EventPickupFulfilled)
	require.Len(t, ful, 1)
	require.Equal(t, wire.PickupFulfilled{OrderID: "o1", Code: "P-1001", Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 1000},
		{SKU: "TEA500", Qty: 1000, Handed: 1000, Substitute: "WATER"}}, HandoverID: h.ID, Cashier: DemoCashier, HandedAt: f.now}, ful[0])
	var seq int64
	require.NoError(t, f.db.Read.QueryRow("SELECT outbox_seq FROM pickup_handovers WHERE id = ?", h.ID).Scan(&seq))
	var typ string
	require.NoError(t, f.db.Read.QueryRow("SELECT type FROM outbox WHERE seq = ?", seq).Scan(&typ))
	require.Equal(t, wire.EventPickupFulfilled, typ)
	stock := events[wire.StockLevel](t, f.db, wire.EventStockLevel)
	last := stock[len(stock)-2:]
	require.Equal(t, "pickup", last[0].Reason)
	require.Equal(t, "WATER", last[1].SKU)
	require.EqualValues(t, -1000, last[1].Delta)

	bad := map[string]struct {
		lines []HandoverLine
		err   error
	}{
		"more than is left":      {[]HandoverLine{{SKU: "MILK1L", Handed: 2000}}, ErrPickupLines},
		"not on the order":       {[]HandoverLine{{SKU: "RICE5", Handed: 1000}}, ErrPickupLines},
		"already handed in full": {[]HandoverLine{{SKU: "TEA500", Handed: 1000}}, ErrPickupLines},
		"unknown substitute":     {[]HandoverLine{{SKU: "MILK1L", Handed: 1000, Substitute: "NOPE"}}, ErrPickupLines},
		"half a loaf":            {[]HandoverLine{{SKU: "BREAD", Handed: 500}}, ErrBadQuantity},
		"negative":               {[]HandoverLine{{SKU: "BREAD", Handed: -1000}}, ErrBadQuantity},
		"listed twice":           {[]HandoverLine{{SKU: "BREAD", Handed: 1000}, {SKU: "BREAD", Handed: 0, Missing: true}}, ErrPickupLines},
		"nothing at all":         {[]HandoverLine{{SKU: "BREAD"}}, ErrPickupLines},
	}
	before := outboxLen(t, f.db)
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier, Lines: b.lines})
			require.ErrorIs(t, err, b.err)
		})
	}
	require.Equal(t, before, outboxLen(t, f.db), "a refused hand-over writes nothing")
	require.Equal(t, milk-1000, onHand(t, f.l, "MILK1L"))

	// The rest of the milk, and the bread is missing: final, not complete.
	h, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "o1", Cashier: DemoCashier, Lines: []HandoverLine{
		{SKU: "MILK1L", Handed: 1000}, {SKU: "BREAD", Missing: true}}})
	require.NoError(t, err)
	require.True(t, h.Final)
	require.False(t, h.Complete)
	require.Equal(t, PickupHandedOver, h.Order.Status)

	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrPickupHandedOver)
	_, err = f.l.LookupPickup(ctx, "P-1001")
	require.ErrorIs(t, err, ErrPickupHandedOver)
	// HQ's view of the order (the feed) never undoes the hand-over.
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "cancelled", Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}})
	_, err = f.l.LookupPickup(ctx, "P-1001")
	require.ErrorIs(t, err, ErrPickupHandedOver)

	// All of an order, no lines given.
	h, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1002", Cashier: DemoCashier})
	require.NoError(t, err)
	require.True(t, h.Complete)
	require.Equal(t, []wire.PickupLine{{SKU: "WATER", Qty: 1000, Handed: 1000}}, h.Lines)
}

func outboxLen(tb testing.TB, db *localdb.DB) int {
	tb.Helper()
	var n int
	require.NoError(tb, db.Read.QueryRow("SELECT COUNT(*) FROM outbox").Scan(&n))
	return n
}

func TestPickupRefusedWhenCancelledUnknownOrElsewhere(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o2", Code: "P-1002", Status: "cancelled", Lines: []wire.PickupLine{{SKU: "WATER", Qty: 1000}}})
	for name, c := range map[string]struct {
		order string
		err   error
	}{
		"cancelled by HQ":  {"P-1002", ErrPickupCancelled},
		"unknown code":     {"P-0000", ErrPickupUnknown},
		"another store":    {wire.PickupQR("S777", "P-1001"), ErrPickupOtherStore},
		"no code":          {"  ", ErrPickupUnknown},
		"cancelled lookup": {"P-1002", ErrPickupCancelled},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: c.order, Cashier: DemoCashier})
			require.ErrorIs(t, err, c.err)
		})
	}
	_, err := f.l.LookupPickup(ctx, "P-1002")
	require.ErrorIs(t, err, ErrPickupCancelled)
	// Fulfilled at another terminal of the store: HQ's feed says so.
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "fulfilled",
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 2000}, {SKU: "BREAD", Qty: 1000, Handed: 1000}, {SKU: "TEA500", Qty: 1000, Handed: 1000}}})
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrPickupHandedOver)
}

func TestPickupPartlyHandedAtAnotherTerminal(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	// HQ's totals after T2 handed one milk.
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "partially_handed_over",
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 1000}, {SKU: "BREAD", Qty: 1000}, {SKU: "TEA500", Qty: 1000}}})
	os, err := f.l.LookupPickup(ctx, "P-1001")
	require.NoError(t, err)
	require.EqualValues(t, 1000, os[0].Lines[0].Handed)
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier, Lines: []HandoverLine{{SKU: "MILK1L", Handed: 2000}}})
	require.ErrorIs(t, err, ErrPickupLines, "only what is left")
	h, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.NoError(t, err)
	require.True(t, h.Complete)
	require.Equal(t, []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 1000}, {SKU: "BREAD", Qty: 1000, Handed: 1000}, {SKU: "TEA500", Qty: 1000, Handed: 1000}}, h.Lines)
}

func TestPickupHandoverIsOneTransaction(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	// A fault at the last write of the hand-over (a real SQLite abort).
	_, err := f.db.Write.Exec(`CREATE TRIGGER fail_handover BEFORE UPDATE OF status ON pickup_orders WHEN NEW.status = 'handed_over'
		BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END`)
	require.NoError(t, err)
	milk, before := onHand(t, f.l, "MILK1L"), outboxLen(t, f.db)
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, milk, onHand(t, f.l, "MILK1L"), "no stock moved")
	require.Equal(t, before, outboxLen(t, f.db), "no event written")
	var n int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM pickup_handovers").Scan(&n))
	require.Zero(t, n)
	os, err := f.l.LookupPickup(ctx, "P-1001")
	require.NoError(t, err)
	require.Equal(t, PickupOpen, os[0].Status)
}

func TestOnlineOrderReturnedInStore(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	_, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier, Lines: []HandoverLine{
		{SKU: "MILK1L", Handed: 2000}, {SKU: "TEA500", Handed: 1000, Substitute: "WATER"}, {SKU: "BREAD", Missing: true}}})
	require.NoError(t, err)
	milk := onHand(t, f.l, "MILK1L")
	var salesBefore int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sales").Scan(&salesBefore))

	ret, err := f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: wire.PickupQR("S001", "P-1001"), Cashier: DemoCashier,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}, {SKU: "WATER", Qty: 1000, Amount: 450}}})
	require.NoError(t, err)
	require.Equal(t, "online", ret.Channel)
	require.Equal(t, "o1", ret.OrderID)
	require.EqualValues(t, 1740, ret.Total)
	require.Equal(t, []Tender{{Kind: TenderOnline, Amount: 1740, Ref: "order:o1"}}, ret.Refunds, "owed by the online channel")
	require.Equal(t, milk+1000, onHand(t, f.l, "MILK1L"), "stock back into the store")
	ev := events[wire.ReturnCompleted](t, f.db, wire.EventReturnCompleted)
	require.Len(t, ev, 1)
	require.Equal(t, "o1", ev[0].OrderID)
	require.Equal(t, "online", ev[0].Channel)

	for name, c := range map[string]struct {
		req OnlineReturnRequest
		err error
	}{
		"more than handed over": {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 2000, Amount: 100}}}, ErrReturnTooMany},
		"never handed":          {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "BREAD", Qty: 1000, Amount: 100}}}, ErrReturnTooMany},
		"ordered, substituted":  {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "TEA500", Qty: 1000, Amount: 100}}}, ErrReturnTooMany},
		"more than paid":        {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 4000}}}, ErrRefundTooLarge},
		"unknown order, no mgr": {OnlineReturnRequest{Order: "web-77", Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 100}}}, ErrNeedsManager},
		"another store's QR":    {OnlineReturnRequest{Order: wire.PickupQR("S002", "P-1001"), Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000}}}, ErrPickupOtherStore},
		"zero quantity":         {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "MILK1L", Amount: 1}}}, ErrBadQuantity},
		"negative amount":       {OnlineReturnRequest{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: -1}}}, ErrBadAmount},
		"unknown product":       {OnlineReturnRequest{Order: "web-77", Manager: DemoManager, Lines: []OnlineReturnLine{{SKU: "NOPE", Qty: 1000}}}, ErrNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			c.req.Cashier = DemoCashier
			_, err := f.l.ReturnOnlineOrder(ctx, c.req)
			require.ErrorIs(t, err, c.err)
		})
	}
	_, err = f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: "not an id!", Manager: DemoManager, Cashier: DemoCashier,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000}}})
	require.ErrorContains(t, err, "not an order id")

	// Delivered to the customer's home: unknown here, a manager takes it.
	ret, err = f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: "web-77", Cashier: DemoCashier, Manager: DemoManager,
		Lines: []OnlineReturnLine{{SKU: "RICE5", Qty: 1000, Amount: 4990}}})
	require.NoError(t, err)
	require.Equal(t, "web-77", ret.OrderID)
	var salesAfter int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sales").Scan(&salesAfter))
	require.Equal(t, salesBefore, salesAfter)
}

// TestRebaseKeepsUnconfirmedPointsUnconfirmed: a reinstalled terminal sells
// before it first reaches HQ, and HQ's hello renumbers its queue above what
// HQ already holds. The points spent stay unconfirmed (they count against
// the cap) until HQ acks the renumbered event, and the coupon redeemed in
// the sale still points at its event.
func TestRebaseKeepsUnconfirmedPointsUnconfirmed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 100, OfflineCap: 50})
	ackAll(t, f.db) // the member change is all this file has; nothing to confirm

	s := f.sale(t, "TEA500", "MILK1L")
	s, err := f.l.AttachMember(ctx, s.ID, "M1")
	require.NoError(t, err)
	s, err = f.l.ApplyCoupon(ctx, s.ID, f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100}), "")
	require.NoError(t, err)
	s, err = f.l.PayWithPoints(ctx, s.ID, 30)
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)

	shift, err := f.db.Rebase(ctx, 10_000)
	require.NoError(t, err)
	require.Positive(t, shift)
	var saleSeq, couponSeq int64
	require.NoError(t, f.db.Read.QueryRowContext(ctx, "SELECT outbox_seq FROM sales WHERE id = ?", s.ID).Scan(&saleSeq))
	require.NoError(t, f.db.Read.QueryRowContext(ctx, "SELECT outbox_seq FROM coupon_redemptions WHERE sale_id = ?", s.ID).Scan(&couponSeq))
	var saleType, couponType string
	require.NoError(t, f.db.Read.QueryRowContext(ctx, "SELECT type FROM outbox WHERE seq = ?", saleSeq).Scan(&saleType))
	require.NoError(t, f.db.Read.QueryRowContext(ctx, "SELECT type FROM outbox WHERE seq = ?", couponSeq).Scan(&couponType))
	require.Equal(t, wire.EventSaleCompleted, saleType, "sales.outbox_seq follows its event")
	require.Equal(t, wire.EventCouponRedeemed, couponType, "coupon_redemptions.outbox_seq follows its event")

	// HQ acks up to where it already was: the renumbered sale is not
	// confirmed by that, so its 30 points still use the cap.
	_, err = f.db.AckThrough(ctx, 10_000)
	require.NoError(t, err)
	mp, err := f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.EqualValues(t, 30, mp.UnconfirmedSpent)
	require.EqualValues(t, 20, mp.CapLeft)
}
