package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/sync/wire"
)

// VoidSale voids a completed sale (manager): stock goes back, the sale no
// longer counts, HQ is told. A sale with returns against it cannot be voided.
func (l *Ledger) VoidSale(ctx context.Context, saleID, manager, reason string) (*Sale, error) {
	if manager == "" {
		return nil, ErrNeedsManager
	}
	s, err := l.getStored(ctx, saleID)
	if err != nil {
		return nil, err
	}
	if s.State != StateCompleted {
		return nil, fmt.Errorf("void %s: %w: sale is %s", s.Receipt, ErrSaleState, s.State)
	}
	if s.Refunded > 0 {
		return nil, fmt.Errorf("void %s: %w: it has returns; return the rest instead", s.Receipt, ErrSaleState)
	}
	now := l.now()
	err = l.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE sales SET state = 'voided', voided_at = ?, void_manager = ?, void_reason = ? WHERE id = ? AND state = 'completed'",
			now, manager, reason, saleID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrSaleState
		}
		ev := wire.SaleVoided{SaleID: s.ID, Receipt: s.Receipt, BusinessDay: s.BusinessDay, VoidedAt: now, Manager: manager, Reason: reason, Total: s.Total}
		for _, ln := range s.Lines {
			var onHand int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO inventory(sku, on_hand) VALUES(?, ?) ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand RETURNING on_hand`,
				ln.SKU, ln.Qty).Scan(&onHand); err != nil {
				return err
			}
			ev.Lines = append(ev.Lines, wire.SaleLine{Line: ln.Line, SKU: ln.SKU, Name: ln.Name, Qty: ln.Qty, UnitPrice: ln.UnitPrice, Discount: ln.Discount, Tax: ln.Tax, Total: ln.Total, OnHand: &onHand})
		}
		if _, err := l.db.AppendEvent(ctx, tx, wire.EventSaleVoided, ev, now); err != nil {
			return err
		}
		return l.auditTx(ctx, tx, "void_sale", s.Cashier, manager, saleID, reason)
	})
	if err != nil {
		return nil, fmt.Errorf("void %s: %w", saleID, err)
	}
	return l.getStored(ctx, saleID)
}

// ReturnLine is a quantity of one line of the original sale to return.
type ReturnLine struct {
	Line int   `json:"line"`
	Qty  int64 `json:"qty"` // thousandths
}

// BlindLine is an item returned without a receipt.
type BlindLine struct {
	SKU    string `json:"sku"`
	Qty    int64  `json:"qty"`
	Amount int64  `json:"amount"` // refund for this line, minor units
}

// ReturnRequest is a return against a receipt, or a blind return.
type ReturnRequest struct {
	Receipt string       `json:"receipt,omitempty"`
	Lines   []ReturnLine `json:"lines,omitempty"`
	Blind   []BlindLine  `json:"blind,omitempty"`
	// Channel is "store" (default) or "online": a purchase made online,
	// refunded as owed by HQ's online channel, stock back into this store.
	Channel string   `json:"channel,omitempty"`
	Refunds []Tender `json:"refunds"`
	Cashier string   `json:"cashier"`
	Manager string   `json:"manager,omitempty"`
}

// Return is a recorded return.
type Return struct {
	ID      string      `json:"id"`
	Receipt string      `json:"receipt"`
	Orig    string      `json:"orig_receipt,omitempty"`
	Channel string      `json:"channel"`
	OrderID string      `json:"order_id,omitempty"` // the online order, for an online return
	Total   int64       `json:"total"`
	Lines   []BlindLine `json:"lines"`
	Refunds []Tender    `json:"refunds"`
	// PrintState is the return slip's: its print job has the return's id
	// (GET /api/print-jobs/{id}).
	PrintState string `json:"print_state,omitempty"`
}

// ReturnItems records a return: against a receipt (partial quantities, at
// most what was sold and not yet returned, refunded at what was paid per
// unit) or blind (manager only). The refund tenders must add up to the
// refund, and never exceed what was paid.
func (l *Ledger) ReturnItems(ctx context.Context, req ReturnRequest) (*Return, error) {
	if req.Channel == "" {
		req.Channel = "store"
	}
	var orig *Sale
	var lines []wire.SaleLine
	var total int64
	switch {
	case req.Receipt != "":
		var err error
		if orig, err = l.FindSaleByReceipt(ctx, req.Receipt); err != nil {
			return nil, err
		}
		if orig.State != StateCompleted {
			return nil, fmt.Errorf("return against %s: %w: sale is %s", req.Receipt, ErrSaleState, orig.State)
		}
		if len(req.Lines) == 0 {
			return nil, fmt.Errorf("return against %s: no lines", req.Receipt)
		}
		seen := map[int]bool{}
		for _, rl := range req.Lines {
			if rl.Qty <= 0 {
				return nil, ErrBadQuantity
			}
			if rl.Line < 1 || rl.Line > len(orig.Lines) || seen[rl.Line] {
				return nil, fmt.Errorf("return line %d: %w", rl.Line, ErrNotFound)
			}
			seen[rl.Line] = true
			ol := orig.Lines[rl.Line-1]
			if rl.Qty > ol.Qty-ol.ReturnedQty {
				return nil, fmt.Errorf("%w: line %d sold %d, returned %d, asked %d", ErrReturnTooMany, rl.Line, ol.Qty, ol.ReturnedQty, rl.Qty)
			}
			amt := mulDivHalfUp(ol.Total, rl.Qty, ol.Qty)
			if rl.Qty == ol.Qty-ol.ReturnedQty {
				// The last part gets what is left, so rounding never refunds
				// more or less than the line cost in total.
				amt = ol.Total - mulDivHalfUp(ol.Total, ol.ReturnedQty, ol.Qty)
			}
			tax := mulDivHalfUp(ol.Tax, rl.Qty, ol.Qty)
			lines = append(lines, wire.SaleLine{Line: rl.Line, SKU: ol.SKU, Name: ol.Name, Qty: rl.Qty, UnitPrice: ol.UnitPrice, Tax: tax, Total: amt})
			total += amt
		}
	case len(req.Blind) > 0:
		if req.Manager == "" {
			return nil, fmt.Errorf("blind return: %w", ErrNeedsManager)
		}
		for i, b := range req.Blind {
			if b.Qty <= 0 {
				return nil, ErrBadQuantity
			}
			if b.Amount < 0 {
				return nil, ErrBadAmount
			}
			if _, err := l.productBy(ctx, l.stmts.productBySKU, b.SKU); err != nil {
				return nil, fmt.Errorf("blind return line %d: %s: %w", i+1, b.SKU, err)
			}
			lines = append(lines, wire.SaleLine{Line: i + 1, SKU: b.SKU, Qty: b.Qty, Total: b.Amount})
			total += b.Amount
		}
		if req.Channel == "store" {
			req.Channel = "blind"
		}
	default:
		return nil, errors.New("return: give a receipt with lines, or blind lines")
	}
	var refund int64
	for _, t := range req.Refunds {
		if t.Amount <= 0 {
			return nil, fmt.Errorf("refund: %w (got %d)", ErrBadAmount, t.Amount)
		}
		switch t.Kind {
		case TenderCash, TenderCard, TenderWallet, TenderOnline:
		default:
			return nil, fmt.Errorf("refund: kind %q is not cash, card, wallet or online", t.Kind)
		}
		refund += t.Amount
	}
	if req.Channel == "online" && len(req.Refunds) == 0 {
		// Paid online: the online channel owes the refund.
		req.Refunds = []Tender{{Kind: TenderOnline, Amount: total, Ref: "owed by online channel"}}
		refund = total
	}
	if refund != total {
		if refund > total {
			return nil, fmt.Errorf("%w: refunds %d for goods worth %d", ErrRefundTooLarge, refund, total)
		}
		return nil, fmt.Errorf("refunds add up to %d, the goods returned are worth %d", refund, total)
	}
	if orig != nil {
		// Points are not money: what they paid is not refunded in cash.
		_, byPoints := pointsSpent(orig.Tenders)
		if paid := orig.Paid - orig.ChangeDue - byPoints; orig.Refunded+refund > paid {
			return nil, fmt.Errorf("%w: paid %d (besides points), refunded %d before, asked %d", ErrRefundTooLarge, paid, orig.Refunded, refund)
		}
	}
	return l.recordReturn(ctx, returnRecord{orig: orig, channel: req.Channel, lines: lines, total: total, refunds: req.Refunds,
		cashier: req.Cashier, manager: req.Manager})
}

// returnRecord is a checked return to write.
type returnRecord struct {
	orig             *Sale // nil for a blind or online return
	orderID          string
	channel          string
	lines            []wire.SaleLine
	total            int64
	refunds          []Tender
	cashier, manager string
}

// recordReturn writes a checked return: its rows, the stock back into the
// store, the original sale's returned quantities, the return.completed
// event and the return slip's print job, in one transaction.
func (l *Ledger) recordReturn(ctx context.Context, r returnRecord) (*Return, error) {
	orig, lines, total := r.orig, r.lines, r.total
	req := struct {
		Channel, Cashier, Manager string
		Refunds                   []Tender
	}{r.channel, r.cashier, r.manager, r.refunds}
	var refund int64
	for _, t := range r.refunds {
		refund += t.Amount
	}
	now := l.now()
	day, err := l.dayFor(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("return: %w", err)
	}
	ret := &Return{ID: uuid.Must(uuid.NewV7()).String(), Channel: req.Channel, OrderID: r.orderID, Total: total, Refunds: req.Refunds}
	if ret.Refunds == nil {
		ret.Refunds = []Tender{}
	}
	if orig != nil {
		ret.Orig = orig.Receipt
	}
	err = l.write(ctx, func(tx *sql.Tx) error {
		var n int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO counters(name, value) VALUES('return', 1) ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&n); err != nil {
			return err
		}
		ret.Receipt = fmt.Sprintf("%s-R%05d", l.cfg.Terminal, n)
		var origID any
		if orig != nil {
			origID = orig.ID
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO returns(id, receipt, orig_sale_id, channel, cashier, manager, business_day, total, created_at, order_id) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			ret.ID, ret.Receipt, origID, req.Channel, req.Cashier, nullStr(req.Manager), day, total, now, nullStr(r.orderID)); err != nil {
			return err
		}
		for i := range lines {
			ln := &lines[i]
			var origLine any
			if orig != nil {
				origLine = ln.Line
				res, err := tx.ExecContext(ctx, "UPDATE sale_lines SET returned_qty = returned_qty + ? WHERE sale_id = ? AND line = ? AND returned_qty + ? <= qty",
					ln.Qty, orig.ID, ln.Line, ln.Qty)
				if err != nil {
					return err
				}
				if k, _ := res.RowsAffected(); k != 1 {
					return ErrReturnTooMany // another terminal session got there first
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO return_lines(return_id, line, orig_line, sku, qty, amount) VALUES(?, ?, ?, ?, ?, ?)",
				ret.ID, i+1, origLine, ln.SKU, ln.Qty, ln.Total); err != nil {
				return err
			}
			var onHand int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO inventory(sku, on_hand) VALUES(?, ?) ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand RETURNING on_hand`,
				ln.SKU, ln.Qty).Scan(&onHand); err != nil {
				return err
			}
			ln.OnHand = &onHand
			ret.Lines = append(ret.Lines, BlindLine{SKU: ln.SKU, Qty: ln.Qty, Amount: ln.Total})
		}
		ev := wire.ReturnCompleted{ReturnID: ret.ID, Receipt: ret.Receipt, Channel: req.Channel, OrderID: r.orderID, BusinessDay: day, ReturnedAt: now,
			Cashier: req.Cashier, Manager: req.Manager, Total: total, Lines: lines}
		if orig != nil {
			ev.OrigSaleID, ev.OrigReceipt = orig.ID, orig.Receipt
			if _, err := tx.ExecContext(ctx, "UPDATE sales SET refunded = refunded + ? WHERE id = ?", refund, orig.ID); err != nil {
				return err
			}
		}
		for i, t := range req.Refunds {
			if _, err := tx.ExecContext(ctx, "INSERT INTO return_refunds(return_id, seq, kind, amount, ref) VALUES(?, ?, ?, ?, ?)", ret.ID, i+1, t.Kind, t.Amount, t.Ref); err != nil {
				return err
			}
			ev.Refunds = append(ev.Refunds, wire.Tender{Kind: t.Kind, Amount: t.Amount, Ref: t.Ref})
		}
		if _, err := l.db.AppendEvent(ctx, tx, wire.EventReturnCompleted, ev, now); err != nil {
			return err
		}
		// The slip is queued with the return, as a receipt with its sale:
		// a return the cashier saw recorded always gets its paper.
		if _, err := l.enqueueAs(ctx, tx, ret.ID, PrintReturn, "", ret.Receipt); err != nil {
			return err
		}
		if req.Manager != "" {
			return l.auditTx(ctx, tx, "refund", req.Cashier, req.Manager, "", fmt.Sprintf("return %s (%s) %d", ret.Receipt, req.Channel, total))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("return: %w", err)
	}
	ret.PrintState = "queued"
	return ret, nil
}

// OnlineReturnLine is an item of an online order brought back to the
// store, with the refund the online channel owes for it.
type OnlineReturnLine struct {
	SKU    string `json:"sku"`
	Qty    int64  `json:"qty"`    // thousandths
	Amount int64  `json:"amount"` // minor units the customer paid online for it
}

// OnlineReturnRequest returns goods bought online in this store.
type OnlineReturnRequest struct {
	// Order is the online order's id, or the pickup code or QR of an order
	// picked up here.
	Order   string             `json:"order"`
	Lines   []OnlineReturnLine `json:"lines"`
	Cashier string             `json:"cashier"`
	Manager string             `json:"manager,omitempty"`
}

// ReturnOnlineOrder records a purchase made online and returned in this
// store: the goods go back into this store's stock, and the refund is
// recorded as owed by HQ's online channel (an "online" refund tender; no
// money leaves the drawer). For an order picked up here the quantities are
// checked against what was handed over and not yet returned, and the
// refunds against what the order paid. An order this store never saw
// (delivered to the customer's home) needs a manager; HQ checks it against
// the orders it knows and flags what it cannot verify.
func (l *Ledger) ReturnOnlineOrder(ctx context.Context, req OnlineReturnRequest) (*Return, error) {
	q := strings.TrimSpace(req.Order)
	if store, code, ok := wire.ParsePickupQR(q); ok {
		if store != l.cfg.Store {
			return nil, fmt.Errorf("online return %s: %w (%s): enter the online order number instead", code, ErrPickupOtherStore, store)
		}
		q = code
	}
	if len(req.Lines) == 0 || len(req.Lines) > wire.MaxPickupLines {
		return nil, fmt.Errorf("online return: give 1 to %d lines", wire.MaxPickupLines)
	}
	o, err := l.pickupBy(ctx, l.db.Read, q)
	known := err == nil
	switch {
	case errors.Is(err, ErrPickupUnknown):
		if !wire.ValidID(q) {
			return nil, fmt.Errorf("online return: order %q is not an order id HQ could know", printableID(q))
		}
		if req.Manager == "" {
			return nil, fmt.Errorf("online return of order %s, unknown here: %w", q, ErrNeedsManager)
		}
	case err != nil:
		return nil, err
	}
	orderID := q
	if known {
		orderID = o.ID
	}
	var lines []wire.SaleLine
	var total int64
	seen := map[string]bool{}
	for i, rl := range req.Lines {
		if rl.Qty <= 0 {
			return nil, fmt.Errorf("online return line %d: %w", i+1, ErrBadQuantity)
		}
		if rl.Amount < 0 {
			return nil, fmt.Errorf("online return line %d: %w", i+1, ErrBadAmount)
		}
		if seen[rl.SKU] {
			return nil, fmt.Errorf("online return: %s is listed twice", rl.SKU)
		}
		seen[rl.SKU] = true
		p, err := l.productBy(ctx, l.stmts.productBySKU, rl.SKU)
		if err != nil {
			return nil, fmt.Errorf("online return line %d: %s: %w", i+1, rl.SKU, err)
		}
		if p.Unit == "each" && rl.Qty%1000 != 0 {
			return nil, fmt.Errorf("online return line %d: %w: whole pieces only", i+1, ErrBadQuantity)
		}
		if known {
			handed, err := l.handedOf(ctx, o, rl.SKU)
			if err != nil {
				return nil, err
			}
			var before int64
			if err := l.db.Read.QueryRowContext(ctx, `SELECT COALESCE(SUM(rl.qty), 0) FROM return_lines rl JOIN returns r ON r.id = rl.return_id
				WHERE r.order_id = ? AND rl.sku = ?`, o.ID, rl.SKU).Scan(&before); err != nil {
				return nil, err
			}
			if rl.Qty > handed-before {
				return nil, fmt.Errorf("%w: order %s handed over %d of %s, returned %d, asked %d", ErrReturnTooMany, o.Code, handed, rl.SKU, before, rl.Qty)
			}
		}
		lines = append(lines, wire.SaleLine{Line: i + 1, SKU: rl.SKU, Name: p.Name, Qty: rl.Qty, Total: rl.Amount})
		total += rl.Amount
	}
	if known {
		var before int64
		if err := l.db.Read.QueryRowContext(ctx, "SELECT COALESCE(SUM(total), 0) FROM returns WHERE order_id = ?", o.ID).Scan(&before); err != nil {
			return nil, err
		}
		if before+total > o.Paid {
			return nil, fmt.Errorf("%w: order %s paid %d online, refunded %d before, asked %d", ErrRefundTooLarge, o.Code, o.Paid, before, total)
		}
	}
	var refunds []Tender
	if total > 0 {
		refunds = []Tender{{Kind: TenderOnline, Amount: total, Ref: "order:" + orderID}}
	}
	ret, err := l.recordReturn(ctx, returnRecord{orderID: orderID, channel: "online", lines: lines, total: total, refunds: refunds,
		cashier: req.Cashier, manager: req.Manager})
	if err != nil {
		return nil, fmt.Errorf("online return: %w", err)
	}
	return ret, nil
}

// handedOf is how much of sku (ordered, or handed as a substitute) the
// order's hand-overs gave the customer.
func (l *Ledger) handedOf(ctx context.Context, o PickupOrder, sku string) (int64, error) {
	var n int64
	for _, ol := range o.Lines {
		if ol.SKU == sku {
			n += ol.Handed // substitutes included: taken off below
		}
	}
	// Substitutes are recorded per hand-over at this terminal; a
	// substitute handed at another terminal is known only as part of the
	// line's total.
	rows, err := l.db.Read.QueryContext(ctx, "SELECT lines FROM pickup_handovers WHERE order_id = ?", o.ID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var subs int64
	var origSubs = map[string]int64{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return 0, err
		}
		var ls []wire.PickupLine
		if err := json.Unmarshal([]byte(raw), &ls); err != nil {
			return 0, err
		}
		for _, hl := range ls {
			if hl.Substitute == sku {
				subs += hl.Handed
			}
			if hl.SKU == sku && hl.Substitute != "" {
				origSubs[sku] += hl.Handed
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return n - origSubs[sku] + subs, nil
}

// printableID shortens an id for a message.
func printableID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
