package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// Refunds are how it was refunded; a return against a sale paid
	// partly with points has a "points" refund for the points part.
	Refunds []Tender `json:"refunds"`
	// ReturnPoints are the member's points it moved back.
	ReturnPoints
	// PrintState is the return slip's: its print job has the return's id
	// (GET /api/print-jobs/{id}).
	PrintState string `json:"print_state,omitempty"`
}

// ReturnQuote is what a return would refund: the goods' value, the part
// refunded as points and the rest, which the refund tenders must add up to.
type ReturnQuote struct {
	Total int64 `json:"total"` // the goods' value, minor units
	// Refund is what the refund tenders must add up to: Total less
	// PointsValue.
	Refund int64 `json:"refund"`
	ReturnPoints
}

// ReturnPoints are the points a return against a member's sale moves back
// (docs/new-retail.md, "Returns and points"): its share, by value returned,
// of what the sale earned and spent, worked out cumulatively over the
// sale's returns (wire.PointsReturned), as HQ does.
type ReturnPoints struct {
	// TakenBack are earned points the return takes back.
	TakenBack int64 `json:"points_taken_back,omitempty"`
	// GivenBack are spent points it gives back.
	GivenBack int64 `json:"points_given_back,omitempty"`
	// PointsValue is the part of the goods' value the sale paid with
	// points (its share of the points tender, rounded down like the
	// points), refunded as GivenBack points and never in money. With a
	// point worth more than one minor unit a partial return may give back
	// points worth less than this; the sale's last return makes it up.
	PointsValue int64 `json:"points_value,omitempty"`
}

// QuoteReturn works out what req would refund, and how, without recording
// it: the POS asks before it fills in the refund tenders.
func (l *Ledger) QuoteReturn(ctx context.Context, req ReturnRequest) (ReturnQuote, error) {
	pr, err := l.prepareReturn(ctx, &req)
	if err != nil {
		return ReturnQuote{}, err
	}
	return ReturnQuote{Total: pr.total, Refund: pr.total - pr.points.PointsValue, ReturnPoints: pr.points}, nil
}

// preparedReturn is a return's goods, checked against the sale, and its
// points.
type preparedReturn struct {
	orig   *Sale
	lines  []wire.SaleLine
	total  int64
	points ReturnPoints
}

// ReturnItems records a return: against a receipt (partial quantities, at
// most what was sold and not yet returned, refunded at what was paid per
// unit) or blind (manager only). The refund tenders must add up to the
// goods' value less the part the sale paid with points, which comes back
// as points (ReturnPoints); what they refund never exceeds what was paid
// besides points.
func (l *Ledger) ReturnItems(ctx context.Context, req ReturnRequest) (*Return, error) {
	pr, err := l.prepareReturn(ctx, &req)
	if err != nil {
		return nil, err
	}
	orig, lines, total := pr.orig, pr.lines, pr.total
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
	if due := total - pr.points.PointsValue; refund != due {
		asPoints := ""
		if pr.points.PointsValue > 0 {
			asPoints = fmt.Sprintf(" (%d of it comes back as %d points)", pr.points.PointsValue, pr.points.GivenBack)
		}
		if refund > due {
			return nil, fmt.Errorf("%w: refunds %d for goods worth %d%s", ErrRefundTooLarge, refund, total, asPoints)
		}
		return nil, fmt.Errorf("refunds add up to %d, the goods returned are worth %d%s: refund %d", refund, total, asPoints, due)
	}
	if orig != nil {
		// Points are not money: what they paid is not refunded in cash.
		_, byPoints := pointsSpent(orig.Tenders)
		if paid := orig.Paid - orig.ChangeDue - byPoints; orig.Refunded+refund > paid {
			return nil, fmt.Errorf("%w: paid %d (besides points), refunded %d before, asked %d", ErrRefundTooLarge, paid, orig.Refunded, refund)
		}
	}
	return l.recordReturn(ctx, returnRecord{orig: orig, channel: req.Channel, lines: lines, total: total, refunds: req.Refunds,
		cashier: req.Cashier, manager: req.Manager, points: pr.points})
}

// prepareReturn checks req's goods against the sale (or the blind lines)
// and works out their value and the points they move back.
func (l *Ledger) prepareReturn(ctx context.Context, req *ReturnRequest) (preparedReturn, error) {
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
			return preparedReturn{}, err
		}
		if orig.State != StateCompleted {
			return preparedReturn{}, fmt.Errorf("return against %s: %w: sale is %s", req.Receipt, ErrSaleState, orig.State)
		}
		if len(req.Lines) == 0 {
			return preparedReturn{}, fmt.Errorf("return against %s: no lines", req.Receipt)
		}
		seen := map[int]bool{}
		for _, rl := range req.Lines {
			if rl.Qty <= 0 {
				return preparedReturn{}, ErrBadQuantity
			}
			if rl.Line < 1 || rl.Line > len(orig.Lines) || seen[rl.Line] {
				return preparedReturn{}, fmt.Errorf("return line %d: %w", rl.Line, ErrNotFound)
			}
			seen[rl.Line] = true
			ol := orig.Lines[rl.Line-1]
			if rl.Qty > ol.Qty-ol.ReturnedQty {
				return preparedReturn{}, fmt.Errorf("%w: line %d sold %d, returned %d, asked %d", ErrReturnTooMany, rl.Line, ol.Qty, ol.ReturnedQty, rl.Qty)
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
			return preparedReturn{}, fmt.Errorf("blind return: %w", ErrNeedsManager)
		}
		for i, b := range req.Blind {
			if b.Qty <= 0 {
				return preparedReturn{}, ErrBadQuantity
			}
			if b.Amount < 0 {
				return preparedReturn{}, ErrBadAmount
			}
			if _, err := l.productBy(ctx, l.stmts.productBySKU, b.SKU); err != nil {
				return preparedReturn{}, fmt.Errorf("blind return line %d: %s: %w", i+1, b.SKU, err)
			}
			lines = append(lines, wire.SaleLine{Line: i + 1, SKU: b.SKU, Qty: b.Qty, Total: b.Amount})
			total += b.Amount
		}
		if req.Channel == "store" {
			req.Channel = "blind"
		}
	default:
		return preparedReturn{}, errors.New("return: give a receipt with lines, or blind lines")
	}
	pr := preparedReturn{orig: orig, lines: lines, total: total}
	if movesPoints(orig, req.Channel) {
		var err error
		if pr.points, err = saleReturnPoints(ctx, l.db.Read, orig, total); err != nil {
			return preparedReturn{}, fmt.Errorf("return against %s: %w", orig.Receipt, err)
		}
	}
	return pr, nil
}

// movesPoints says whether a return on channel against orig moves the
// sale's points, as HQ decides it: a return against a member's sale that
// moved points, unless it is an online purchase (the online channel moves
// an online order's points, through HQ's API).
func movesPoints(orig *Sale, channel string) bool {
	return orig != nil && channel != "online" && orig.Member != "" && (orig.PointsEarned > 0 || orig.PointsSpent > 0)
}

// saleReturnPoints works out what a return worth total against orig moves
// back: for the sale's returns so far with this one, the share
// (wire.PointsReturned) of what the sale earned, spent and paid with
// points, less what the earlier returns moved.
func saleReturnPoints(ctx context.Context, q queryer, orig *Sale, total int64) (ReturnPoints, error) {
	var before, taken, given, value int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(total), 0), COALESCE(SUM(points_taken), 0), COALESCE(SUM(points_given), 0),
		COALESCE((SELECT SUM(f.amount) FROM return_refunds f JOIN returns r ON r.id = f.return_id WHERE r.orig_sale_id = ?1 AND f.kind = 'points'), 0)
		FROM returns WHERE orig_sale_id = ?1`, orig.ID).Scan(&before, &taken, &given, &value)
	if err != nil {
		return ReturnPoints{}, fmt.Errorf("points returned before: %w", err)
	}
	_, byPoints := pointsSpent(orig.Tenders)
	returned := before + total
	return ReturnPoints{
		TakenBack:   wire.PointsReturned(orig.PointsEarned, returned, orig.Total) - taken,
		GivenBack:   wire.PointsReturned(orig.PointsSpent, returned, orig.Total) - given,
		PointsValue: wire.PointsReturned(byPoints, returned, orig.Total) - value,
	}, nil
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
	points           ReturnPoints // worked out before the write; checked again inside it
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
	ret := &Return{ID: uuid.Must(uuid.NewV7()).String(), Channel: req.Channel, OrderID: r.orderID, Total: total, ReturnPoints: r.points}
	if v := r.points.PointsValue; v > 0 {
		// The points part of the refund, so the refunds add up to the
		// goods' value (on the slip and in the event; HQ does not use it).
		req.Refunds = append(slices.Clip(req.Refunds), Tender{Kind: TenderPoints, Amount: v, Ref: pointsRefPrefix + strconv.FormatInt(r.points.GivenBack, 10)})
	}
	ret.Refunds = req.Refunds
	if ret.Refunds == nil {
		ret.Refunds = []Tender{}
	}
	var member any // the member whose points the return moves
	if orig != nil {
		ret.Orig = orig.Receipt
		if movesPoints(orig, r.channel) {
			member = orig.Member
		}
	}
	err = l.write(ctx, func(tx *sql.Tx) error {
		if member != nil {
			// Another return of the sale recorded meanwhile would change
			// this one's share.
			rp, err := saleReturnPoints(ctx, tx, orig, total)
			if err != nil {
				return err
			}
			if rp != r.points {
				return fmt.Errorf("%w: another return against %s was recorded meanwhile; try again", ErrSaleState, orig.Receipt)
			}
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO counters(name, value) VALUES('return', 1) ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&n); err != nil {
			return err
		}
		ret.Receipt = fmt.Sprintf("%s-R%05d", l.cfg.Terminal, n)
		var origID any
		if orig != nil {
			origID = orig.ID
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO returns(id, receipt, orig_sale_id, channel, cashier, manager, business_day, total, created_at, order_id,
			member, points_taken, points_given) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ret.ID, ret.Receipt, origID, req.Channel, req.Cashier, nullStr(req.Manager), day, total, now, nullStr(r.orderID),
			member, r.points.TakenBack, r.points.GivenBack); err != nil {
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
			// refunded is money only: the points part is not (the cash cap).
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
		rev, err := l.db.AppendEvent(ctx, tx, wire.EventReturnCompleted, ev, now)
		if err != nil {
			return err
		}
		if member != nil {
			// The event's seq tells whether HQ has confirmed the points it
			// moved (unconfirmed), as a sale's does.
			if _, err := tx.ExecContext(ctx, "UPDATE returns SET outbox_seq = ? WHERE id = ?", rev.Seq, ret.ID); err != nil {
				return err
			}
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
