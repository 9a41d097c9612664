package printer

import (
	"fmt"
	"time"

	"github.com/edgepos/edgepos/devices/printer/escpos"
)

// Points are a member's loyalty points printed under the member on a
// receipt. The layout prints them as given.
type Points struct {
	Earned int64
	Spent  int64
	// SpentValue is what the spent points paid (minor units), printed
	// beside them.
	SpentValue int64
	// Balance is printed as the balance; the caller says as of when (the
	// agent: as the terminal sees it when printing).
	Balance int64
	// Pending prints one line saying HQ adds the points (a member the
	// store does not know yet) instead of the figures.
	Pending bool
}

// ReturnPoints are the member's points a return moved back.
type ReturnPoints struct {
	// TakenBack are the earned points taken back, printed negative.
	TakenBack int64
	// GivenBack are the spent points given back; GivenBackValue what they
	// had paid (minor units), printed beside them.
	GivenBack      int64
	GivenBackValue int64
	// Balance is printed as the balance, as Points.Balance.
	Balance int64
	// Pending prints one line saying HQ adjusts the points (a member the
	// store does not know) instead of the figures.
	Pending bool
}

// ReturnSlip is what the agent fills in to print a return slip: what came
// back and how it was refunded. Money is int64 minor units of Currency;
// quantities are int64 thousandths. Like Receipt, it adds nothing up.
type ReturnSlip struct {
	// Title is the banner above the store name, e.g. "RETURN".
	Title     string
	StoreName string
	Header    []string
	Terminal  string
	// Number is the return's number, e.g. "T1-R00003".
	Number  string
	Cashier string
	// Manager is who approved the return; printed when set.
	Manager string
	// OrigNumber is the receipt returned against. Blind prints "no
	// receipt" instead (a return without one).
	OrigNumber string
	Blind      bool
	// OrderCode and OrderID name the online order of an online return.
	OrderCode string
	OrderID   string
	Time      time.Time
	Location  *time.Location
	// Lines are the returned items: Name, Qty and Unit, UnitPrice (0 when
	// unknown) and Total, the refund for the line. Discount is not used.
	Lines []Line
	// Total is the refund, printed at double height.
	Total int64
	// Refunds are how it is refunded: a labelled amount per tender (for
	// an online return, the online channel owes it).
	Refunds []Adjustment
	// Points are the member's points the return moved back, printed under
	// the refunds; nil for a return that moved none.
	Points      *ReturnPoints
	Footer      []string
	Currency    string
	MinorDigits int
}

// PickupSlip is what the agent fills in to print a pickup hand-over slip:
// the online order and what the customer took now.
type PickupSlip struct {
	// Title is the banner above the store name, e.g. "PICKUP".
	Title     string
	StoreName string
	Header    []string
	// Code is the order's pickup code; OrderID its id at HQ.
	Code     string
	OrderID  string
	Customer string
	// Phone is printed as given: mask it before (MaskPhone).
	Phone    string
	Terminal string
	Cashier  string
	Time     time.Time
	Location *time.Location
	Lines    []PickupLine
	// Final: nothing more will be handed over; Complete: final with
	// nothing missing. They choose the closing line.
	Final, Complete bool
	Footer          []string
}

// PickupLine is one order line of a hand-over.
type PickupLine struct {
	// Name is the ordered item (its SKU when the store does not sell it).
	Name    string
	Unit    Unit
	Ordered int64 // thousandths
	// Handed is what was handed now, of Substitute when set.
	Handed int64
	// Substitute is the name of the item handed instead, and SubUnit its
	// unit.
	Substitute string
	SubUnit    Unit
	// Missing: the rest of the line will not be handed over.
	Missing bool
}

type slipLabels struct {
	ret, origReceipt, blind, order, approvedBy, refund, qty                      string
	pointsEarned, pointsUsed, pointsBalance, pointsPending                       string
	pointsTakenBack, pointsGivenBack, pointsReturnPending                        string
	pickupCode, customer, item, handed, missing, insteadOf, ordered, restMissing string
	pickupComplete, pickupClosed, pickupToFollow                                 string
}

var (
	slipLabelsEN = slipLabels{ret: "Return", origReceipt: "Original receipt", blind: "No receipt", order: "Online order", approvedBy: "Approved by", refund: "REFUND", qty: "Qty",
		pointsEarned: "Points earned", pointsUsed: "Points used", pointsBalance: "Points balance", pointsPending: "Points: HQ adds them",
		pointsTakenBack: "Points taken back", pointsGivenBack: "Points given back", pointsReturnPending: "Points: HQ adjusts them",
		pickupCode: "Pickup code", customer: "Customer", item: "Item", handed: "Handed", missing: "Missing", insteadOf: "instead of", ordered: "ordered",
		restMissing: "rest missing", pickupComplete: "Order complete", pickupClosed: "Order closed: items missing", pickupToFollow: "The rest of the order follows"}
	slipLabelsZH = slipLabels{ret: "退货单号", origReceipt: "原小票", blind: "无小票", order: "线上订单", approvedBy: "授权主管", refund: "退款合计", qty: "数量",
		pointsEarned: "本次积分", pointsUsed: "使用积分", pointsBalance: "积分余额", pointsPending: "积分：由总部补记",
		pointsTakenBack: "扣回积分", pointsGivenBack: "退回积分", pointsReturnPending: "积分：由总部调整",
		pickupCode: "取货码", customer: "顾客", item: "商品", handed: "交付", missing: "缺货", insteadOf: "替代", ordered: "订购",
		restMissing: "其余缺货", pickupComplete: "订单已全部交付", pickupClosed: "订单已结束，部分缺货", pickupToFollow: "其余商品稍后交付"}
)

func (d *doc) slipLabels() slipLabels {
	if d.l.Language == LangZH {
		return slipLabelsZH
	}
	return slipLabelsEN
}

// field prints "Label: value", wrapping a long value (an order id) onto
// indented lines instead of cutting it.
func (d *doc) field(label, value string) {
	first := label + ": " + value
	if d.w.of(first) <= d.cols {
		d.b.Line(first)
		return
	}
	d.b.Line(label + ":")
	for _, part := range d.w.wrap(value, d.cols-2) {
		d.b.Line("  " + part)
	}
}

// when prints the time line in loc (default UTC).
func (d *doc) when(t time.Time, loc *time.Location) {
	if t.IsZero() {
		return
	}
	if loc == nil {
		loc = time.UTC
	}
	d.b.Line(d.w.pair(d.lb.time+": "+t.In(loc).Format("2006-01-02 15:04:05"), "", d.cols))
}

// points prints a member's points (Receipt.Points).
func (d *doc) points(p *Points, money func(int64) string) {
	sl := d.slipLabels()
	if p.Pending {
		d.b.Line(d.w.pair(sl.pointsPending, "", d.cols))
		return
	}
	d.b.Line(d.w.pair(sl.pointsEarned, fmt.Sprint(p.Earned), d.cols))
	if p.Spent != 0 {
		d.b.Line(d.w.pair(sl.pointsUsed, fmt.Sprintf("%d (%s)", p.Spent, money(-p.SpentValue)), d.cols))
	}
	d.b.Line(d.w.pair(sl.pointsBalance, fmt.Sprint(p.Balance), d.cols))
}

// RenderReturn lays a return slip out for l: init, logo, title, store
// header, the return's number, the receipt returned against (or "no
// receipt"), the online order, terminal and cashier, the approving
// manager and the time; each returned line with its quantity (× unit
// price when known) and refund; the refund at double height, how it is
// refunded, the footer, a feed and the cut.
func RenderReturn(r ReturnSlip, l Layout) (Rendered, error) {
	if r.MinorDigits < 0 || r.MinorDigits > 4 {
		return Rendered{}, fmt.Errorf("%w: minor digits %d", ErrBadLayout, r.MinorDigits)
	}
	d, err := newDoc(l)
	if err != nil {
		return Rendered{}, err
	}
	b, w, cols, lb, sl := d.b, d.w, d.cols, d.lb, d.slipLabels()
	money := func(v int64) string { return FormatMoney(v, r.Currency, r.MinorDigits) }

	d.head(r.Title, r.StoreName, r.Header)
	b.Line(d.rule)
	if r.Number != "" {
		d.field(sl.ret, r.Number)
	}
	switch {
	case r.OrigNumber != "":
		d.field(sl.origReceipt, r.OrigNumber)
	case r.Blind:
		b.Line(w.truncate(sl.blind, cols))
	}
	if r.OrderCode != "" {
		d.field(sl.order, r.OrderCode)
		if r.OrderID != "" && r.OrderID != r.OrderCode {
			for _, part := range w.wrap(r.OrderID, cols-2) {
				b.Line("  " + part)
			}
		}
	} else if r.OrderID != "" {
		d.field(sl.order, r.OrderID)
	}
	if r.Terminal != "" || r.Cashier != "" {
		b.Line(w.pair(lb.terminal+": "+r.Terminal, lb.cashier+": "+r.Cashier, cols))
	}
	if r.Manager != "" {
		d.field(sl.approvedBy, r.Manager)
	}
	d.when(r.Time, r.Location)
	b.Line(d.rule)
	for _, ln := range r.Lines {
		for _, s := range w.itemName(ln.Name, money(ln.Total), cols) {
			b.Line(s)
		}
		q := "  " + sl.qty + " " + formatQty(ln.Qty, ln.Unit)
		if ln.UnitPrice != 0 {
			q = "  " + formatQty(ln.Qty, ln.Unit) + " x " + money(ln.UnitPrice) + unitSuffix(ln.Unit)
		}
		b.Line(w.pair(q, "", cols))
	}
	b.Line(d.rule)
	b.Bold(true).Size(1, 2).Line(w.pair(sl.refund, money(r.Total), cols)).Size(1, 1).Bold(false)
	for _, a := range r.Refunds {
		for _, s := range w.itemName(a.Label, money(a.Amount), cols) {
			b.Line(s)
		}
	}
	if p := r.Points; p != nil {
		b.Line(d.rule)
		if p.Pending {
			b.Line(w.pair(sl.pointsReturnPending, "", cols))
		} else {
			if p.TakenBack != 0 {
				b.Line(w.pair(sl.pointsTakenBack, fmt.Sprint(-p.TakenBack), cols))
			}
			if p.GivenBack != 0 {
				b.Line(w.pair(sl.pointsGivenBack, fmt.Sprintf("%d (%s)", p.GivenBack, money(p.GivenBackValue)), cols))
			}
			b.Line(w.pair(sl.pointsBalance, fmt.Sprint(p.Balance), cols))
		}
	}
	b.Line(d.rule)
	d.centred(r.Footer)
	return d.end("return slip " + r.Number)
}

// RenderPickup lays a pickup hand-over slip out for l: title, store
// header, the pickup code (and the order id), the customer, terminal,
// cashier and time; per order line the item and what was handed now (or
// "missing"), the substitute's "instead of" and what was ordered when
// less was handed; a closing line (complete, closed with items missing,
// or the rest to follow), the footer, a feed and the cut.
func RenderPickup(p PickupSlip, l Layout) (Rendered, error) {
	d, err := newDoc(l)
	if err != nil {
		return Rendered{}, err
	}
	b, w, cols, lb, sl := d.b, d.w, d.cols, d.lb, d.slipLabels()
	d.head(p.Title, p.StoreName, p.Header)
	b.Line(d.rule)
	if p.Code != "" {
		d.field(sl.pickupCode, p.Code)
	}
	if p.OrderID != "" && p.OrderID != p.Code {
		d.field(sl.order, p.OrderID)
	}
	if p.Customer != "" || p.Phone != "" {
		b.Line(w.pair(sl.customer+": "+p.Customer, p.Phone, cols))
	}
	if p.Terminal != "" || p.Cashier != "" {
		b.Line(w.pair(lb.terminal+": "+p.Terminal, lb.cashier+": "+p.Cashier, cols))
	}
	d.when(p.Time, p.Location)
	b.Line(d.rule)
	b.Line(w.pair(sl.item, sl.handed, cols))
	for _, ln := range p.Lines {
		name, unit := ln.Name, ln.Unit
		if ln.Substitute != "" {
			name, unit = ln.Substitute, ln.SubUnit
		}
		right := formatQty(ln.Handed, unit)
		if ln.Missing && ln.Handed == 0 {
			right = sl.missing
		}
		for _, s := range w.itemName(name, right, cols) {
			b.Line(s)
		}
		if ln.Substitute != "" {
			for _, s := range w.wrap(sl.insteadOf+" "+ln.Name, cols-2) {
				b.Line("  " + s)
			}
		}
		if ln.Handed > 0 && (ln.Substitute != "" || ln.Handed < ln.Ordered) {
			note := sl.ordered + " " + formatQty(ln.Ordered, ln.Unit)
			if ln.Missing {
				note += ", " + sl.restMissing
			}
			b.Line(w.pair("  "+note, "", cols))
		}
	}
	b.Line(d.rule)
	closing := sl.pickupToFollow
	switch {
	case p.Complete:
		closing = sl.pickupComplete
	case p.Final:
		closing = sl.pickupClosed
	}
	b.Align(escpos.AlignCenter).Bold(true)
	for _, s := range w.wrap(closing, cols) {
		b.Line(s)
	}
	b.Bold(false).Align(escpos.AlignLeft)
	b.Line(d.rule)
	d.centred(p.Footer)
	return d.end("pickup slip " + p.Code)
}

// FormatQty prints a quantity in thousandths as the receipts do: 2000
// each → "2", 1500 each → "1.5", 532 kg → "0.532 kg".
func FormatQty(q int64, u Unit) string { return formatQty(q, u) }

// MaskPhone hides the middle of a phone number for paper: "13800000001"
// → "138****0001"; a shorter number keeps its first digit and last two
// ("1234567" → "1****67"), one of four or fewer is all hidden.
func MaskPhone(p string) string {
	r := []rune(p)
	switch {
	case len(r) >= 10:
		return string(r[:3]) + "****" + string(r[len(r)-4:])
	case len(r) >= 5:
		return string(r[:1]) + "****" + string(r[len(r)-2:])
	case len(r) == 0:
		return ""
	}
	return "****"
}
