package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/edgepos/edgepos/sync/wire"
)

// OnlineReturnOrder is an online order as the return screen shows it:
// what the customer took home from this store and may bring back, with a
// suggested refund per item.
type OnlineReturnOrder struct {
	OrderID  string `json:"order_id"`
	Code     string `json:"code"`
	Status   string `json:"status"`
	Customer string `json:"customer,omitempty"`
	Phone    string `json:"phone,omitempty"`
	// Paid is what the order paid online; Refunded what returns here
	// refunded of it before; Left the difference (the most a return may
	// still refund).
	Paid     int64              `json:"paid"`
	Refunded int64              `json:"refunded"`
	Left     int64              `json:"left"`
	Items    []OnlineReturnItem `json:"items"`
}

// OnlineReturnItem is one SKU the customer received: an ordered one, or a
// substitute handed instead.
type OnlineReturnItem struct {
	SKU  string `json:"sku"`
	Name string `json:"name"`
	Unit string `json:"unit"` // each or kg
	// SubstituteFor is the ordered SKU this one was handed instead of.
	SubstituteFor string `json:"substitute_for,omitempty"`
	Handed        int64  `json:"handed"`     // thousandths handed over
	Returned      int64  `json:"returned"`   // returned before
	Returnable    int64  `json:"returnable"` // Handed − Returned
	// Refundable is the suggested refund for all Returnable units (the
	// screen suggests mulDivHalfUp(Refundable, q, Returnable) for q of
	// them, Refundable itself for all). Suggested is false when the order
	// cannot tell: the cashier types the amount.
	Refundable int64 `json:"refundable"`
	Suggested  bool  `json:"suggested"`
}

// OnlineReturnable looks an online order up for a return (pickup QR, code
// or order id) and lists what may come back. The order carries only its
// paid total, not a price per line, so the suggested refunds split the
// paid total over the order lines by today's catalog price × quantity
// ordered (largest remainders: they add up to what was paid), then over
// the units handed; what earlier returns refunded of an item is taken off.
// A one-line order needs no prices. With a line the catalog does not
// price, nothing is suggested. The ledger checks the refund against what
// the order paid when the return is recorded (ReturnOnlineOrder), not
// against these suggestions.
//
// Errors: ErrPickupOtherStore for another store's QR; ErrPickupUnknown
// for an order this store never saw (a valid order id can still be
// returned, by hand, with a manager); a plain error for text that cannot
// be an order id.
func (l *Ledger) OnlineReturnable(ctx context.Context, q string) (OnlineReturnOrder, error) {
	q = strings.TrimSpace(q)
	if store, code, ok := wire.ParsePickupQR(q); ok {
		if store != l.cfg.Store {
			return OnlineReturnOrder{}, fmt.Errorf("online return %s: %w (%s): enter the online order number instead", code, ErrPickupOtherStore, store)
		}
		q = code
	}
	o, err := l.pickupBy(ctx, l.db.Read, q)
	if errors.Is(err, ErrPickupUnknown) && !wire.ValidID(q) {
		return OnlineReturnOrder{}, fmt.Errorf("online return: %q is not an order id HQ could know", printableID(q))
	}
	if err != nil {
		return OnlineReturnOrder{}, fmt.Errorf("online return: %w", err)
	}
	out := OnlineReturnOrder{OrderID: o.ID, Code: o.Code, Status: o.Status, Customer: o.Customer, Phone: o.Phone, Paid: o.Paid, Items: []OnlineReturnItem{}}

	// What this terminal's hand-overs gave instead of each ordered SKU
	// (a substitute handed at another terminal is known only as part of
	// the line's total, as in handedOf).
	subs := map[string]map[string]int64{} // ordered SKU → substitute → handed
	rows, err := l.db.Read.QueryContext(ctx, "SELECT lines FROM pickup_handovers WHERE order_id = ? ORDER BY handed_at", o.ID)
	if err != nil {
		return out, fmt.Errorf("online return %s: %w", o.Code, err)
	}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return out, err
		}
		var ls []wire.PickupLine
		if err := json.Unmarshal([]byte(raw), &ls); err != nil {
			rows.Close()
			return out, fmt.Errorf("online return %s: stored hand-over: %w", o.Code, err)
		}
		for _, hl := range ls {
			if hl.Substitute != "" && hl.Handed > 0 {
				if subs[hl.SKU] == nil {
					subs[hl.SKU] = map[string]int64{}
				}
				subs[hl.SKU][hl.Substitute] += hl.Handed
			}
		}
	}
	if err := rows.Close(); err != nil {
		return out, err
	}
	if err := rows.Err(); err != nil {
		return out, err
	}

	// The paid total per order line, by catalog price × quantity.
	weights := make([]int64, len(o.Lines))
	priced := true
	for i, ol := range o.Lines {
		p, err := l.productBy(ctx, l.stmts.productBySKU, ol.SKU)
		if errors.Is(err, ErrNotFound) || (err == nil && p.Price <= 0) {
			priced = false
			continue
		}
		if err != nil {
			return out, fmt.Errorf("online return %s: %w", o.Code, err)
		}
		weights[i] = mulDivHalfUp(p.Price, ol.Qty, 1000)
	}
	var shares []int64
	switch {
	case len(o.Lines) == 1:
		shares = []int64{o.Paid}
	case priced:
		shares = splitByWeight(o.Paid, weights)
	}

	type acc struct {
		item  OnlineReturnItem
		value int64 // the paid share of the units handed
	}
	items := map[string]*acc{}
	var order []string
	add := func(sku, subFor string, handed, value int64) {
		a := items[sku]
		if a == nil {
			a = &acc{item: OnlineReturnItem{SKU: sku, SubstituteFor: subFor}}
			items[sku] = a
			order = append(order, sku)
		}
		a.item.Handed += handed
		a.value += value
	}
	for i, ol := range o.Lines {
		own := ol.Handed
		var subSKUs []string
		for s := range subs[ol.SKU] {
			subSKUs = append(subSKUs, s)
		}
		sort.Strings(subSKUs)
		for _, s := range subSKUs {
			own -= subs[ol.SKU][s]
		}
		own = max(own, 0)
		value := func(n int64) int64 {
			if shares == nil || ol.Qty <= 0 {
				return 0
			}
			return mulDivHalfUp(shares[i], n, ol.Qty)
		}
		if own > 0 {
			add(ol.SKU, "", own, value(own))
		}
		for _, s := range subSKUs {
			add(s, ol.SKU, subs[ol.SKU][s], value(subs[ol.SKU][s]))
		}
	}

	// What returns here took back and refunded, per SKU and in all.
	before := map[string][2]int64{}
	rrows, err := l.db.Read.QueryContext(ctx, `SELECT rl.sku, SUM(rl.qty), SUM(rl.amount) FROM return_lines rl JOIN returns r ON r.id = rl.return_id
		WHERE r.order_id = ? GROUP BY rl.sku`, o.ID)
	if err != nil {
		return out, fmt.Errorf("online return %s: %w", o.Code, err)
	}
	defer rrows.Close()
	for rrows.Next() {
		var sku string
		var qty, amount int64
		if err := rrows.Scan(&sku, &qty, &amount); err != nil {
			return out, err
		}
		before[sku] = [2]int64{qty, amount}
		out.Refunded += amount
	}
	if err := rrows.Err(); err != nil {
		return out, err
	}
	out.Left = max(o.Paid-out.Refunded, 0)
	for _, sku := range order {
		a := items[sku]
		it := a.item
		var err error
		if it.Name, it.Unit, err = l.productName(ctx, sku, it.Handed); err != nil {
			return out, err
		}
		it.Returned = before[sku][0]
		it.Returnable = max(it.Handed-it.Returned, 0)
		if shares != nil {
			it.Suggested = true
			it.Refundable = min(max(a.value-before[sku][1], 0), out.Left)
		}
		if it.Returnable == 0 {
			it.Refundable = 0
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}

// splitByWeight splits total over weights in proportion, the remainder
// to the largest remainders, so the parts add up to total exactly. With
// no weight at all everything goes to the first part.
func splitByWeight(total int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	var sum int64
	for _, w := range weights {
		sum += w
	}
	if len(out) == 0 {
		return out
	}
	if sum <= 0 {
		out[0] = total
		return out
	}
	rems := make([]int64, len(weights))
	var given int64
	for i, w := range weights {
		out[i] = total * w / sum
		rems[i] = total * w % sum
		given += out[i]
	}
	idx := make([]int, len(weights))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rems[idx[a]] > rems[idx[b]] })
	for k := 0; given < total; k++ {
		out[idx[k%len(idx)]]++
		given++
	}
	return out
}
