package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// queued returns the pending print jobs, oldest first.
func queued(tb testing.TB, l *Ledger) []PrintJob {
	tb.Helper()
	js, err := l.QueuedPrintJobs(context.Background(), 100)
	require.NoError(tb, err)
	return js
}

// TestEveryReturnQueuesItsSlip: a return against a receipt, a blind return
// and an online return each queue one "return" job with the return's id
// and number, and the ledger reads each back as its slip prints it.
func TestEveryReturnQueuesItsSlip(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "MILK1L")
	s, err := f.l.SetQty(s.ID, 1, 3000)
	require.NoError(t, err)
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)
	require.Len(t, queued(t, f.l), 1, "the sale's receipt")

	f.now = f.now.Add(90e9)
	r1, err := f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 2000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 900}},
		Cashier: DemoCashier, Manager: DemoManager})
	require.NoError(t, err)
	require.Equal(t, "queued", r1.PrintState)
	r2, err := f.l.ReturnItems(ctx, ReturnRequest{Blind: []BlindLine{{SKU: "APPLE", Qty: 532, Amount: 744}},
		Refunds: []Tender{{Kind: TenderCard, Amount: 744, Ref: "AUTH-9"}}, Cashier: DemoCashier, Manager: DemoManager})
	require.NoError(t, err)
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.NoError(t, err)
	r3, err := f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: "P-1001", Cashier: DemoCashier, Manager: DemoManager,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}})
	require.NoError(t, err)

	var slips []PrintJob
	for _, j := range queued(t, f.l) {
		if j.Kind == PrintReturn {
			slips = append(slips, j)
		}
	}
	require.Len(t, slips, 3, "one slip per return")
	for i, r := range []*Return{r1, r2, r3} {
		require.Equal(t, r.ID, slips[i].ID, "the slip's job has the return's id")
		require.Equal(t, r.Receipt, slips[i].Receipt)
		require.Empty(t, slips[i].SaleID, "a slip is not the sale's receipt")
		j, err := f.l.PrintJob(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, "queued", j.State)
	}

	rr, err := f.l.ReturnReceipt(ctx, r1.ID)
	require.NoError(t, err)
	require.Equal(t, ReturnReceipt{ReturnID: r1.ID, Receipt: "T1-R00001", Store: "S001", Terminal: "T1", Channel: "store", Cashier: DemoCashier, Manager: DemoManager,
		BusinessDay: done.BusinessDay, ReturnedAt: f.now, LocalTime: "2026-11-23 10:01:30", OrigReceipt: done.Receipt, OrigSaleID: done.ID,
		Currency: "CNY", MinorDigits: 2, TaxInclusive: true,
		Lines:   []ReturnReceiptLine{{Line: 1, OrigLine: 1, SKU: "TEA500", Name: "Oolong tea 500ml", Unit: "each", Qty: 2000, UnitPrice: 450, Amount: 900}},
		Total:   900,
		Refunds: []Tender{{Kind: TenderCash, Amount: 900}}}, rr)

	rr, err = f.l.ReturnReceipt(ctx, r2.ID)
	require.NoError(t, err)
	require.Equal(t, "blind", rr.Channel)
	require.Empty(t, rr.OrigReceipt)
	require.Equal(t, []ReturnReceiptLine{{Line: 1, SKU: "APPLE", Name: "Fuji apples", Unit: "kg", Qty: 532, Amount: 744}}, rr.Lines, "named from the catalog")
	require.Equal(t, []Tender{{Kind: TenderCard, Amount: 744, Ref: "AUTH-9"}}, rr.Refunds)

	rr, err = f.l.ReturnReceipt(ctx, r3.ID)
	require.NoError(t, err)
	require.Equal(t, "online", rr.Channel)
	require.Equal(t, "o1", rr.OrderID)
	require.Equal(t, "P-1001", rr.OrderCode)
	require.Equal(t, []Tender{{Kind: TenderOnline, Amount: 1290, Ref: "order:o1"}}, rr.Refunds)
	require.Equal(t, "Fresh milk 1L", rr.Lines[0].Name)

	_, err = f.l.ReturnReceipt(ctx, "no-such-return")
	require.ErrorIs(t, err, ErrNotFound)
}

// TestReturnSlipIsInTheReturnsTransaction: a real SQLite abort when the
// slip is queued (the return's last write but its audit) leaves no return,
// no stock back, no returned quantity, no refund on the sale and no event.
func TestReturnSlipIsInTheReturnsTransaction(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	done, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "MILK1L")).ID, "")
	require.NoError(t, err)
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.NoError(t, err)
	_, err = f.db.Write.Exec(`CREATE TRIGGER fail_slip BEFORE INSERT ON print_queue WHEN NEW.kind = 'return'
		BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END`)
	require.NoError(t, err)
	milk, events := onHand(t, f.l, "MILK1L"), outboxLen(t, f.db)

	for name, ret := range map[string]func() error{
		"receipt": func() error {
			_, err := f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}},
				Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}, Cashier: DemoCashier, Manager: DemoManager})
			return err
		},
		"blind": func() error {
			_, err := f.l.ReturnItems(ctx, ReturnRequest{Blind: []BlindLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}},
				Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}, Cashier: DemoCashier, Manager: DemoManager})
			return err
		},
		"online": func() error {
			_, err := f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: "P-1001", Cashier: DemoCashier, Manager: DemoManager,
				Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, ret(), "disk full")
			require.Equal(t, milk, onHand(t, f.l, "MILK1L"), "no stock back")
			require.Equal(t, events, outboxLen(t, f.db), "no event")
			var returns, refunded, returnedQty int64
			require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM returns").Scan(&returns))
			require.NoError(t, f.db.Read.QueryRow("SELECT refunded FROM sales WHERE id = ?", done.ID).Scan(&refunded))
			require.NoError(t, f.db.Read.QueryRow("SELECT returned_qty FROM sale_lines WHERE sale_id = ?", done.ID).Scan(&returnedQty))
			require.Zero(t, returns)
			require.Zero(t, refunded)
			require.Zero(t, returnedQty)
		})
	}
	var counter int64
	require.NoError(t, f.db.Read.QueryRow("SELECT COALESCE((SELECT value FROM counters WHERE name = 'return'), 0)").Scan(&counter))
	require.Zero(t, counter, "no return number used up")
}

// TestPickupHandoverQueuesItsSlip: a hand-over queues one "pickup" job
// with its id and the order's code, in its own transaction (an abort at
// the job leaves the order open, the stock and the outbox untouched); the
// slip reads the customer, the lines handed, the substitute and the line
// missing.
func TestPickupHandoverQueuesItsSlip(t *testing.T) {
	f := pickupFixture(t)
	ctx := context.Background()
	_, err := f.db.Write.Exec(`CREATE TRIGGER fail_slip BEFORE INSERT ON print_queue WHEN NEW.kind = 'pickup'
		BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END`)
	require.NoError(t, err)
	milk, before := onHand(t, f.l, "MILK1L"), outboxLen(t, f.db)
	req := HandoverRequest{Order: "P-1001", Cashier: DemoCashier, Lines: []HandoverLine{
		{SKU: "MILK1L", Handed: 2000}, {SKU: "TEA500", Handed: 1000, Substitute: "WATER"}, {SKU: "BREAD", Missing: true}}}
	_, err = f.l.HandOverPickup(ctx, req)
	require.ErrorContains(t, err, "disk full")
	require.Equal(t, milk, onHand(t, f.l, "MILK1L"))
	require.Equal(t, before, outboxLen(t, f.db))
	os, err := f.l.LookupPickup(ctx, "P-1001")
	require.NoError(t, err)
	require.Equal(t, PickupOpen, os[0].Status)
	_, err = f.db.Write.Exec("DROP TRIGGER fail_slip")
	require.NoError(t, err)

	h, err := f.l.HandOverPickup(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "queued", h.PrintState)
	js := queued(t, f.l)
	require.Len(t, js, 1)
	require.Equal(t, PrintJob{ID: h.ID, Receipt: "P-1001", Kind: PrintPickup, State: "queued", CreatedAt: f.now}, js[0])

	hr, err := f.l.HandoverReceipt(ctx, h.ID)
	require.NoError(t, err)
	require.Equal(t, HandoverReceipt{HandoverID: h.ID, OrderID: "o1", Code: "P-1001", Store: "S001", Terminal: "T1", Cashier: DemoCashier,
		Customer: "Li Lei", Phone: "13800000001", HandedAt: f.now, LocalTime: "2026-11-23 10:00:00", Final: true, Complete: false,
		Lines: []HandoverReceiptLine{
			{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Ordered: 2000, Handed: 2000},
			{SKU: "TEA500", Name: "Oolong tea 500ml", Unit: "each", Ordered: 1000, Handed: 1000, Substitute: "WATER", SubstituteName: "Mineral water 550ml", SubstituteUnit: "each"},
			{SKU: "BREAD", Name: "Whole wheat bread", Unit: "each", Ordered: 1000, Missing: true},
		}}, hr)
	_, err = f.l.HandoverReceipt(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
}

// TestReceiptPointsAreReadWithTheReceipt: a member's receipt carries what
// the sale earned and spent and the balance as this terminal sees it when
// the receipt is read; an unknown member's says pending; a sale without a
// member has none.
func TestReceiptPointsAreReadWithTheReceipt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 500, OfflineCap: 300})
	s := f.sale(t, "RICE5") // 49.90
	_, err := f.l.AttachMember(ctx, s.ID, "13800000001")
	require.NoError(t, err)
	_, err = f.l.PayWithPoints(ctx, s.ID, 250)
	require.NoError(t, err)
	s, err = f.l.GetSale(ctx, s.ID)
	require.NoError(t, err)
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)
	r, err := f.l.Receipt(ctx, done.ID)
	require.NoError(t, err)
	require.Equal(t, &ReceiptPoints{Earned: 47, Spent: 250, SpentValue: 250, Balance: 500 - 250 + 47}, r.Points)

	// HQ confirms and sends the new balance: the next print shows it.
	ackAll(t, f.db)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 297, OfflineCap: 300})
	r, err = f.l.Receipt(ctx, done.ID)
	require.NoError(t, err)
	require.EqualValues(t, 297, r.Points.Balance)

	s = f.sale(t, "WATER")
	_, err = f.l.AttachMember(ctx, s.ID, "13900000009") // unknown here
	require.NoError(t, err)
	done, err = f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)
	r, err = f.l.Receipt(ctx, done.ID)
	require.NoError(t, err)
	require.Equal(t, &ReceiptPoints{Pending: true}, r.Points)

	done, err = f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "WATER")).ID, "")
	require.NoError(t, err)
	r, err = f.l.Receipt(ctx, done.ID)
	require.NoError(t, err)
	require.Nil(t, r.Points)
}

// TestOnlineReturnableSuggestsRefunds: the return screen's view of an
// online order lists what the customer took (a substitute under its own
// SKU, a missing line not at all), with the paid total split by catalog
// price and what earlier returns refunded taken off.
func TestOnlineReturnableSuggestsRefunds(t *testing.T) {
	f := pickupFixture(t) // o1: milk ×2, bread, tea; paid 44.80
	ctx := context.Background()
	_, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier, Lines: []HandoverLine{
		{SKU: "MILK1L", Handed: 2000}, {SKU: "TEA500", Handed: 1000, Substitute: "WATER"}, {SKU: "BREAD", Missing: true}}})
	require.NoError(t, err)

	// 44.80 over milk 25.80, bread 8.90, tea 4.50 (largest remainders):
	// 29.49, 10.17, 5.14.
	o, err := f.l.OnlineReturnable(ctx, wire.PickupQR("S001", "P-1001"))
	require.NoError(t, err)
	require.Equal(t, OnlineReturnOrder{OrderID: "o1", Code: "P-1001", Status: PickupHandedOver, Customer: "Li Lei", Phone: "13800000001", Paid: 4480, Left: 4480,
		Items: []OnlineReturnItem{
			{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Handed: 2000, Returnable: 2000, Refundable: 2949, Suggested: true},
			{SKU: "WATER", Name: "Mineral water 550ml", Unit: "each", SubstituteFor: "TEA500", Handed: 1000, Returnable: 1000, Refundable: 514, Suggested: true},
		}}, o)

	_, err = f.l.ReturnOnlineOrder(ctx, OnlineReturnRequest{Order: "P-1001", Cashier: DemoCashier, Manager: DemoManager,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}})
	require.NoError(t, err)
	o, err = f.l.OnlineReturnable(ctx, "o1")
	require.NoError(t, err)
	require.EqualValues(t, 1290, o.Refunded)
	require.EqualValues(t, 3190, o.Left)
	require.Equal(t, OnlineReturnItem{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Handed: 2000, Returned: 1000, Returnable: 1000, Refundable: 2949 - 1290, Suggested: true}, o.Items[0])

	// One line: what was paid, whatever the shelf price says today.
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1002", Cashier: DemoCashier})
	require.NoError(t, err)
	o, err = f.l.OnlineReturnable(ctx, "P-1002")
	require.NoError(t, err)
	require.EqualValues(t, 200, o.Items[0].Refundable)

	// A line the catalog does not price: no suggestion.
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o3", Code: "P-1003", Status: "open", Paid: 5000,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 1000}, {SKU: "WEB-ONLY", Qty: 1000}}})
	_, err = f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1003", Cashier: DemoCashier})
	require.NoError(t, err)
	o, err = f.l.OnlineReturnable(ctx, "P-1003")
	require.NoError(t, err)
	require.Len(t, o.Items, 2)
	for _, it := range o.Items {
		require.False(t, it.Suggested, it.SKU)
		require.Zero(t, it.Refundable)
	}

	_, err = f.l.OnlineReturnable(ctx, wire.PickupQR("S002", "P-1001"))
	require.ErrorIs(t, err, ErrPickupOtherStore)
	_, err = f.l.OnlineReturnable(ctx, "web-77")
	require.ErrorIs(t, err, ErrPickupUnknown, "delivered home: the screen takes the items by hand")
	_, err = f.l.OnlineReturnable(ctx, "not an id!")
	require.ErrorContains(t, err, "not an order id")
}

func TestSplitByWeight(t *testing.T) {
	require.Equal(t, []int64{2949, 1017, 514}, splitByWeight(4480, []int64{2580, 890, 450}))
	require.Equal(t, []int64{34, 33, 33}, splitByWeight(100, []int64{1, 1, 1}))
	require.Equal(t, []int64{7, 0}, splitByWeight(7, []int64{0, 0}))
	require.Empty(t, splitByWeight(7, nil))
}
