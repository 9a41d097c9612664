package devset

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices/printer"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
)

// Print job kinds, as the ledger queues them (agent.PrintReceipt …).
const (
	KindReceipt = agent.PrintReceipt // CompleteSale: the customer's receipt
	KindCopy    = agent.PrintCopy    // Reprint: a copy, marked as such
	KindReturn  = agent.PrintReturn  // every return: its slip; the job has the return's id
	KindReport  = agent.PrintReport  // CloseDay: the Z report; PrintJob.Receipt is the business day
	KindPickup  = agent.PrintPickup  // a pickup hand-over: its slip; the job has the hand-over's id
)

// errUnknownKind is a job of a kind this package cannot lay out: it can
// never print, so it is marked failed.
var errUnknownKind = errors.New("unknown print job kind")

// words are the receipt's words that are not the printer layout's own
// labels: titles and tender names.
type words struct {
	copy, void, ret, pickup, owedOnline, zReport, thanks      string
	cash, card, wallet, points, online                        string
	day, zNumber, closedBy, sales, gross, discounts, coupons  string
	tax, net, voids, returns, change, cashExpected, printedAt string
	taxRate, discount                                         string
}

var (
	wordsEN = words{copy: "COPY", void: "VOID", ret: "RETURN", pickup: "PICKUP", owedOnline: "Refund owed by the online channel", zReport: "Z REPORT", thanks: "Thank you!",
		cash: "Cash", card: "Card", wallet: "Wallet", points: "Points", online: "Online",
		day: "Business day", zNumber: "Z number", closedBy: "Closed by", sales: "Sales", gross: "Gross", discounts: "Discounts",
		coupons: "Coupons", tax: "Tax", net: "Net", voids: "Voids", returns: "Returns", change: "Change given",
		cashExpected: "Cash expected", printedAt: "Printed", taxRate: "Tax", discount: "Discount"}
	wordsZH = words{copy: "重印", void: "作废", ret: "退货", pickup: "自提", owedOnline: "由线上渠道退款", zReport: "日结报表", thanks: "谢谢惠顾！",
		cash: "现金", card: "银行卡", wallet: "电子钱包", points: "积分", online: "线上支付",
		day: "营业日", zNumber: "日结号", closedBy: "日结人", sales: "笔数", gross: "销售额", discounts: "折扣",
		coupons: "优惠券", tax: "税额", net: "净额", voids: "作废", returns: "退货", change: "找零",
		cashExpected: "应有现金", printedAt: "打印时间", taxRate: "税率", discount: "折扣"}
)

func (s *Set) words() words {
	if s.lang == printer.LangZH {
		return wordsZH
	}
	return wordsEN
}

// render lays out one queued job. Errors that mean the job can never
// print (its sale, return or hand-over is gone or the sale not completed,
// an unknown kind, a layout error) are returned as permanent; others (the
// database) are worth a retry.
func (s *Set) render(ctx context.Context, job agent.PrintJob, l printer.Layout) (printer.Rendered, error) {
	w := s.words()
	switch job.Kind {
	case KindReceipt, KindCopy:
		title := map[string]string{KindCopy: w.copy}[job.Kind]
		r, err := s.receipt(ctx, job.SaleID, title)
		if err != nil {
			return printer.Rendered{}, err
		}
		return laidOut(printer.Render(r, l))
	case KindReturn:
		slip, err := s.returnSlip(ctx, job.ID)
		if err != nil {
			return printer.Rendered{}, err
		}
		return laidOut(printer.RenderReturn(slip, l))
	case KindPickup:
		slip, err := s.pickupSlip(ctx, job.ID)
		if err != nil {
			return printer.Rendered{}, err
		}
		return laidOut(printer.RenderPickup(slip, l))
	case KindReport:
		slip, err := s.zReport(ctx, job.Receipt)
		if err != nil {
			return printer.Rendered{}, err
		}
		return laidOut(printer.RenderSlip(slip, l))
	}
	return printer.Rendered{}, permanent(fmt.Errorf("%w %q", errUnknownKind, job.Kind))
}

// permanentError marks a job failure that no retry can fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return permanentError{err} }

// isPermanent reports whether a render error means the job can never
// print: its sale is gone or not completed, or the layout refuses it.
// Other errors (reading the ledger) are worth a retry.
func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, agent.ErrNotFound) || errors.Is(err, agent.ErrSaleState)
}

// laidOut marks layout failures permanent: the same job fails the same way.
func laidOut(r printer.Rendered, err error) (printer.Rendered, error) {
	if err != nil {
		return r, permanent(err)
	}
	return r, nil
}

// receipt builds the printer's receipt for a completed (or voided) sale.
func (s *Set) receipt(ctx context.Context, saleID, title string) (printer.Receipt, error) {
	l := s.a.Ledger()
	r, err := l.Receipt(ctx, saleID)
	if err != nil {
		return printer.Receipt{}, err
	}
	ds, err := l.ReceiptDiscounts(ctx, saleID)
	if err != nil {
		return printer.Receipt{}, err
	}
	return s.receiptOf(r, ds, title), nil
}

// receiptOf maps the ledger's receipt to the printer's. It adds nothing
// up: every amount is the ledger's; a discount the records do not name
// is printed as one line so the receipt still adds up.
func (s *Set) receiptOf(r agent.Receipt, ds []agent.ReceiptDiscount, title string) printer.Receipt {
	w := s.words()
	if r.State == agent.StateVoided {
		title = strings.TrimSpace(title + " " + w.void)
	}
	loc := s.a.Ledger().Config().Location
	pr := printer.Receipt{
		Title: title, StoreName: s.opts.StoreName, Header: s.opts.Header, Footer: s.opts.Footer,
		Terminal: r.Terminal, Number: r.Receipt, Cashier: r.Cashier, Time: r.CompletedAt, Location: loc,
		Subtotal: r.Subtotal, Total: r.Total, Change: r.ChangeDue, Member: r.Member, ReceiptID: r.SaleID,
		Currency: r.Currency, MinorDigits: r.MinorDigits, TaxIncluded: r.TaxInclusive,
	}
	if pr.StoreName == "" {
		pr.StoreName = r.Store
	}
	if len(pr.Footer) == 0 {
		pr.Footer = []string{w.thanks}
	}
	var named int64
	for i, ln := range r.Lines {
		pl := printer.Line{Name: ln.Name, Qty: ln.Qty, Unit: unitOf(ln.Unit), UnitPrice: ln.UnitPrice, Total: ln.Gross}
		for _, d := range ds {
			if d.Kind == "item" && d.Line == i+1 {
				pl.Discount += d.Amount
				pl.DiscountLabel = discountLabel(w.discount, d)
				named += d.Amount
			}
		}
		pr.Lines = append(pr.Lines, pl)
	}
	coupons := false
	for _, d := range ds {
		switch d.Kind {
		case "sale":
			label := ""
			if d.Basis == "percent" {
				label = percent(d.Value)
			}
			pr.Discounts = append(pr.Discounts, printer.Adjustment{Label: label, Amount: d.Amount})
			named += d.Amount
		case "coupon":
			pr.Coupons = append(pr.Coupons, printer.Adjustment{Label: d.Ref, Amount: d.Amount})
			named += d.Amount
			coupons = true
		}
	}
	if !coupons { // a sale recorded before its discounts were
		for _, c := range r.Coupons {
			pr.Coupons = append(pr.Coupons, printer.Adjustment{Label: c.CouponID, Amount: c.Amount})
			named += c.Amount
		}
	}
	if rest := r.Discount - named; rest > 0 {
		pr.Discounts = append(pr.Discounts, printer.Adjustment{Amount: rest})
	}
	for _, t := range r.Taxes {
		if t.Tax == 0 {
			continue
		}
		pr.Taxes = append(pr.Taxes, printer.Adjustment{Label: w.taxRate + " " + percent(t.RateBP), Amount: t.Tax})
	}
	for _, t := range r.Tenders {
		pr.Tenders = append(pr.Tenders, printer.Adjustment{Label: w.tender(t.Kind), Amount: t.Amount})
	}
	if p := r.Points; p != nil {
		pr.Points = &printer.Points{Earned: p.Earned, Spent: p.Spent, SpentValue: p.SpentValue, Balance: p.Balance, Pending: p.Pending}
	}
	return pr
}

// returnSlip builds the slip of return id (the job's id) from the
// ledger's record of it.
func (s *Set) returnSlip(ctx context.Context, id string) (printer.ReturnSlip, error) {
	l := s.a.Ledger()
	r, err := l.ReturnReceipt(ctx, id)
	if err != nil {
		return printer.ReturnSlip{}, err
	}
	w := s.words()
	slip := printer.ReturnSlip{
		Title: w.ret, StoreName: s.opts.StoreName, Header: s.opts.Header, Footer: s.opts.Footer,
		Terminal: r.Terminal, Number: r.Receipt, Cashier: r.Cashier, Manager: r.Manager,
		OrigNumber: r.OrigReceipt, Blind: r.Channel == "blind", OrderCode: r.OrderCode, OrderID: r.OrderID,
		Time: r.ReturnedAt, Location: l.Config().Location, Total: r.Total, Currency: r.Currency, MinorDigits: r.MinorDigits,
	}
	if slip.StoreName == "" {
		slip.StoreName = r.Store
	}
	for _, ln := range r.Lines {
		slip.Lines = append(slip.Lines, printer.Line{Name: cmp.Or(ln.Name, ln.SKU), Qty: ln.Qty, Unit: unitOf(ln.Unit), UnitPrice: ln.UnitPrice, Total: ln.Amount})
	}
	for _, t := range r.Refunds {
		label := w.tender(t.Kind)
		if t.Kind == agent.TenderOnline {
			label = w.owedOnline // no money left the drawer
		}
		slip.Refunds = append(slip.Refunds, printer.Adjustment{Label: label, Amount: t.Amount})
	}
	if p := r.Points; p != nil {
		slip.Points = &printer.ReturnPoints{TakenBack: p.TakenBack, GivenBack: p.GivenBack, GivenBackValue: p.GivenBackValue,
			Balance: p.Balance, Pending: p.Pending}
	}
	return slip, nil
}

// pickupSlip builds the slip of hand-over id (the job's id).
func (s *Set) pickupSlip(ctx context.Context, id string) (printer.PickupSlip, error) {
	l := s.a.Ledger()
	h, err := l.HandoverReceipt(ctx, id)
	if err != nil {
		return printer.PickupSlip{}, err
	}
	w := s.words()
	slip := printer.PickupSlip{
		Title: w.pickup, StoreName: s.opts.StoreName, Header: s.opts.Header, Footer: s.opts.Footer,
		Code: h.Code, OrderID: h.OrderID, Customer: h.Customer, Phone: printer.MaskPhone(h.Phone),
		Terminal: h.Terminal, Cashier: h.Cashier, Time: h.HandedAt, Location: l.Config().Location, Final: h.Final, Complete: h.Complete,
	}
	if slip.StoreName == "" {
		slip.StoreName = h.Store
	}
	if len(slip.Footer) == 0 {
		slip.Footer = []string{w.thanks}
	}
	for _, ln := range h.Lines {
		pl := printer.PickupLine{Name: cmp.Or(ln.Name, ln.SKU), Unit: unitOf(ln.Unit), Ordered: ln.Ordered, Handed: ln.Handed, Missing: ln.Missing}
		if ln.Substitute != "" {
			pl.Substitute, pl.SubUnit = cmp.Or(ln.SubstituteName, ln.Substitute), unitOf(ln.SubstituteUnit)
		}
		slip.Lines = append(slip.Lines, pl)
	}
	return slip, nil
}

func unitOf(u string) printer.Unit {
	if u == "kg" {
		return printer.UnitKg
	}
	return printer.UnitEach
}

func (w words) tender(kind string) string {
	switch kind {
	case agent.TenderCash:
		return w.cash
	case agent.TenderCard:
		return w.card
	case agent.TenderWallet:
		return w.wallet
	case agent.TenderPoints:
		return w.points
	case agent.TenderOnline:
		return w.online
	}
	return kind
}

func discountLabel(word string, d agent.ReceiptDiscount) string {
	if d.Basis == "percent" {
		return word + " " + percent(d.Value)
	}
	return word
}

// percent prints basis points: 1300 → "13%", 650 → "6.5%", 1 → "0.01%".
func percent(bp int64) string {
	s := strconv.FormatInt(bp/100, 10)
	if f := bp % 100; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%02d", f), "0")
	}
	return s + "%"
}

// zReport builds the slip of a business day's Z report.
func (s *Set) zReport(ctx context.Context, day string) (printer.Slip, error) {
	l := s.a.Ledger()
	rep, err := l.ZReport(ctx, day)
	if err != nil {
		return printer.Slip{}, err
	}
	w := s.words()
	lc := l.Config()
	money := func(v int64) string { return printer.FormatMoney(v, lc.Currency, lc.MinorDigits) }
	title := w.zReport
	if rep.Kind != "Z" {
		title = rep.Kind
	}
	rows := []printer.Row{
		{Left: w.day, Right: rep.BusinessDay},
	}
	if rep.ZNumber > 0 {
		rows = append(rows, printer.Row{Left: w.zNumber, Right: fmt.Sprintf("Z%04d", rep.ZNumber)}, printer.Row{Left: w.closedBy, Right: rep.ClosedBy})
	}
	rows = append(rows, printer.Row{Rule: true},
		printer.Row{Left: w.sales, Right: strconv.FormatInt(rep.Sales, 10)},
		printer.Row{Left: w.gross, Right: money(rep.Gross)},
		printer.Row{Left: w.discounts, Right: money(-rep.Discounts)},
		printer.Row{Left: w.coupons, Right: money(-rep.Coupons)},
		printer.Row{Left: w.voids, Right: fmt.Sprintf("%d  %s", rep.Voids, money(-rep.VoidTotal))},
		printer.Row{Left: w.returns, Right: fmt.Sprintf("%d  %s", rep.Returns, money(-rep.ReturnTotal))},
		printer.Row{Left: w.net, Right: money(rep.Net), Bold: true},
		printer.Row{Left: w.tax, Right: money(rep.Tax)},
		printer.Row{Rule: true})
	kinds := make([]string, 0, len(rep.Tenders))
	for k := range rep.Tenders {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		rows = append(rows, printer.Row{Left: w.tender(k), Right: money(rep.Tenders[k])})
	}
	rows = append(rows, printer.Row{Left: w.change, Right: money(-rep.Change)})
	if rep.CashExpected > 0 {
		rows = append(rows, printer.Row{Left: w.cashExpected, Right: money(rep.CashExpected)})
	}
	at := rep.At
	if lc.Location != nil {
		at = at.In(lc.Location)
	}
	return printer.Slip{Title: title, StoreName: s.opts.StoreName, Header: []string{lc.Store + " / " + lc.Terminal}, Rows: rows,
		Footer: []string{w.printedAt + " " + at.Format(time.DateTime)}}, nil
}

// text renders a job's bytes as the virtual printer would print them:
// the receipt preview is exactly what the printer gets, '?' and all.
func text(r printer.Rendered, cols int) string {
	jobs, _ := virtualprinter.Parse(r.Data)
	if len(jobs) == 0 {
		return ""
	}
	t := jobs[0].Text(cols)
	t = strings.TrimSuffix(t, strings.Repeat("=", cols)+"\n") // the cut
	return strings.TrimRight(t, "\n") + "\n"
}
