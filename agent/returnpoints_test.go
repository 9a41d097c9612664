package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// payDue pays what is left of s in cash.
func (f *fixture) payDue(tb testing.TB, s *Sale) *Sale {
	tb.Helper()
	s, err := f.l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: s.Due})
	require.NoError(tb, err)
	return s
}

// memberSale sells skus to member, paying points with points and the rest
// in cash, and has HQ confirm it with the balance it would send.
func (f *fixture) memberSale(tb testing.TB, member string, points int64, skus ...string) *Sale {
	tb.Helper()
	ctx := context.Background()
	s := f.sale(tb, skus...)
	_, err := f.l.AttachMember(ctx, s.ID, member)
	require.NoError(tb, err)
	if points > 0 {
		s, err = f.l.PayWithPoints(ctx, s.ID, points)
		require.NoError(tb, err)
	}
	done, err := f.l.CompleteSale(ctx, f.payDue(tb, s).ID, "")
	require.NoError(tb, err)
	return done
}

func TestReturnMovesMemberPointsBackProRata(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 1000, OfflineCap: 800})
	// 17.40, 3.00 of it with 300 points: earns 14 on the 14.40 paid in cash.
	sale := f.memberSale(t, "M1", 300, "MILK1L", "TEA500")
	require.EqualValues(t, 14, sale.PointsEarned)
	ackAll(t, f.db)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 714, OfflineCap: 800}) // HQ's balance after the sale

	// The milk, 12.90 of 17.40: 300 × 1290/1740 = 222.4 → 222 points
	// (paying 2.22) come back as points, 14 × 1290/1740 = 10.4 → 10 earned
	// are taken back, 12.90 − 2.22 = 10.68 comes back in cash.
	milk := ReturnRequest{Receipt: sale.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Cashier: DemoCashier, Manager: DemoManager}
	q, err := f.l.QuoteReturn(ctx, milk)
	require.NoError(t, err)
	require.Equal(t, ReturnQuote{Total: 1290, Refund: 1068, ReturnPoints: ReturnPoints{TakenBack: 10, GivenBack: 222, PointsValue: 222}}, q)
	milk.Refunds = []Tender{{Kind: TenderCash, Amount: 1290}}
	_, err = f.l.ReturnItems(ctx, milk)
	require.ErrorIs(t, err, ErrRefundTooLarge, "never cash for what points paid")
	milk.Refunds = []Tender{{Kind: TenderCash, Amount: 1000}}
	_, err = f.l.ReturnItems(ctx, milk)
	require.ErrorContains(t, err, "refund 1068")
	milk.Refunds = []Tender{{Kind: TenderCash, Amount: 1068}}
	ret, err := f.l.ReturnItems(ctx, milk)
	require.NoError(t, err)
	require.Equal(t, ReturnPoints{TakenBack: 10, GivenBack: 222, PointsValue: 222}, ret.ReturnPoints)
	require.Equal(t, []Tender{{Kind: TenderCash, Amount: 1068}, {Kind: TenderPoints, Amount: 222, Ref: "points:222"}}, ret.Refunds)
	ev := events[wire.ReturnCompleted](t, f.db, wire.EventReturnCompleted)[0]
	require.EqualValues(t, 1290, ev.Total)
	require.Equal(t, []wire.Tender{{Kind: "cash", Amount: 1068}, {Kind: "points", Amount: 222, Ref: "points:222"}}, ev.Refunds,
		"the refunds add up to the goods' value; HQ works the points out itself")

	// The terminal's view moves at once, before HQ confirms.
	mp, err := f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.EqualValues(t, 10, mp.UnconfirmedTakenBack)
	require.EqualValues(t, 222, mp.UnconfirmedGivenBack)
	require.EqualValues(t, 714-10+222, mp.Provisional)
	require.EqualValues(t, 704, mp.Spendable, "taken back counts at once, given back once HQ confirms")
	require.EqualValues(t, 800, mp.CapLeft, "a take-back is not spending")

	slip, err := f.l.ReturnReceipt(ctx, ret.ID)
	require.NoError(t, err)
	require.Equal(t, &ReturnReceiptPoints{Member: "M1", TakenBack: 10, GivenBack: 222, GivenBackValue: 222, Balance: 926}, slip.Points)

	// The tea, the rest: what is left of all three, so the sale's points
	// come back exactly: 78 and 4, and 4.50 − 0.78 in cash.
	tea := ReturnRequest{Receipt: sale.Receipt, Lines: []ReturnLine{{Line: 2, Qty: 1000}}, Cashier: DemoCashier, Manager: DemoManager,
		Refunds: []Tender{{Kind: TenderCash, Amount: 372}}}
	ret, err = f.l.ReturnItems(ctx, tea)
	require.NoError(t, err)
	require.Equal(t, ReturnPoints{TakenBack: 4, GivenBack: 78, PointsValue: 78}, ret.ReturnPoints)
	mp, err = f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.EqualValues(t, 1000, mp.Provisional, "everything returned: where the member was before the sale")
	got, err := f.l.GetSale(ctx, sale.ID)
	require.NoError(t, err)
	require.EqualValues(t, 1440, got.Refunded, "all the cash paid, none of what points paid")

	// HQ confirms and sends its balance: nothing is counted twice.
	ackAll(t, f.db)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 1000, OfflineCap: 800})
	mp, err = f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.EqualValues(t, 1000, mp.Provisional)
	require.Zero(t, mp.UnconfirmedTakenBack+mp.UnconfirmedGivenBack)
}

func TestReturnTakeBackLimitsSpending(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 0})
	sale := f.memberSale(t, "M1", 0, "MILK1L") // earns 12
	ackAll(t, f.db)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Points: 12})
	_, err := f.l.ReturnItems(ctx, ReturnRequest{Receipt: sale.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Cashier: DemoCashier,
		Manager: DemoManager, Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}})
	require.NoError(t, err, "no points paid: all of it in cash, as before")
	mp, err := f.l.MemberPoints(ctx, "M1")
	require.NoError(t, err)
	require.Zero(t, mp.Provisional)
	require.Zero(t, mp.Spendable)
	s := f.sale(t, "WATER")
	_, err = f.l.AttachMember(ctx, s.ID, "M1")
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s.ID, 1)
	require.ErrorIs(t, err, ErrPointsBalance, "the points the return took back are not spendable here")
}

func TestReturnOfNonMemberSaleMovesNoPoints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sale, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "MILK1L")).ID, "")
	require.NoError(t, err)
	req := ReturnRequest{Receipt: sale.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 500}}, Cashier: DemoCashier, Manager: DemoManager,
		Refunds: []Tender{{Kind: TenderCash, Amount: 645}}}
	ret, err := f.l.ReturnItems(ctx, req)
	require.NoError(t, err)
	require.Zero(t, ret.ReturnPoints)
	require.Equal(t, []Tender{{Kind: TenderCash, Amount: 645}}, ret.Refunds)
	slip, err := f.l.ReturnReceipt(ctx, ret.ID)
	require.NoError(t, err)
	require.Nil(t, slip.Points, "the sale's receipt showed no points")
}
