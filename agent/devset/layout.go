package devset

import (
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

// Print job kinds, as agent.Ledger.Enqueue records them.
const (
	KindReceipt = "receipt" // CompleteSale: the customer's receipt
	KindCopy    = "copy"    // Reprint: a copy, marked as such
	KindReturn  = "return"  // a return slip (no ledger path queues one yet)
	KindReport  = "report"  // CloseDay: the Z report; PrintJob.Receipt is the business day
)

// errUnknownKind is a job of a kind this package cannot lay out: it can
// never print, so it is marked failed.
var errUnknownKind = errors.New("unknown print job kind")

// words are the receipt's words that are not the printer layout's own
// labels: titles and tender names.
type words struct {
	copy, void, ret, zReport, thanks                          string
	cash, card, wallet, points, online                        string
	day, zNumber, closedBy, sales, gross, discounts, coupons  string
	tax, net, voids, returns, change, cashExpected, printedAt string
	taxRate, discount                                         string
}

var (
	wordsEN = words{copy: "COPY", void: "VOID", ret: "RETURN", zReport: "Z REPORT", thanks: "Thank you!",
		cash: "Cash", card: "Card", wallet: "Wallet", points: "Points", online: "Online",
		day: "Business day", zNumber: "Z number", closedBy: "Closed by", sales: "Sales", gross: "Gross", discounts: "Discounts",
		coupons: "Coupons", tax: "Tax", net: "Net", voids: "Voids", returns: "Returns", change: "Change given",
		cashExpected: "Cash expected", printedAt: "Printed", taxRate: "Tax", discount: "Discount"}
	wordsZH = words{copy: "重印", void: "作废", ret: "退货", zReport: "日结报表", thanks: "谢谢惠顾！",
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
// print (its sale is gone or not completed, an unknown kind, a layout
// error) are returned as permanent; others (the database) are worth a
// retry.
func (s *Set) render(ctx context.Context, job agent.PrintJob, l printer.Layout) (printer.Rendered, error) {
	w := s.words()
	switch job.Kind {
	case KindReceipt, KindCopy, KindReturn:
		title := map[string]string{KindCopy: w.copy, KindReturn: w.ret}[job.Kind]
		r, err := s.receipt(ctx, job.SaleID, title)
		if err != nil {
			return printer.Rendered{}, err
		}
		return laidOut(printer.Render(r, l))
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
		pl := printer.Line{Name: ln.Name, Qty: ln.Qty, Unit: printer.UnitEach, UnitPrice: ln.UnitPrice, Total: ln.Gross}
		if ln.Unit == "kg" {
			pl.Unit = printer.UnitKg
		}
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
	return pr
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
