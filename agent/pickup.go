package agent

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/sync/wire"
)

// PickupOrder is an online order to hand over at this store, as HQ's change
// feed delivered it (the hand-over flow records HandedAt and HandedBy).
type PickupOrder struct {
	ID        string            `json:"id"`
	Code      string            `json:"code"`
	Status    string            `json:"status"` // open, cancelled, fulfilled, handed_over
	Customer  string            `json:"customer,omitempty"`
	Phone     string            `json:"phone,omitempty"`
	Member    string            `json:"member,omitempty"`
	Paid      int64             `json:"paid"`
	Lines     []wire.PickupLine `json:"lines"`
	HandedAt  time.Time         `json:"handed_at,omitzero"`
	HandedBy  string            `json:"handed_by,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

const pickupCols = "id, code, status, COALESCE(customer, ''), COALESCE(phone, ''), COALESCE(member, ''), paid, lines, handed_at, COALESCE(handed_by, ''), updated_at"

// PickupOrders lists pickup orders, newest first; status "" lists all.
func (l *Ledger) PickupOrders(ctx context.Context, status string, limit int) ([]PickupOrder, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE ? = '' OR status = ? ORDER BY updated_at DESC LIMIT ?", status, status, limit)
	if err != nil {
		return nil, fmt.Errorf("pickup orders: %w", err)
	}
	defer rows.Close()
	out := []PickupOrder{}
	for rows.Next() {
		o, err := scanPickup(rows)
		if err != nil {
			return nil, fmt.Errorf("pickup orders: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// FindPickupOrder looks an order up by its pickup code, its id or the
// customer's phone (the most recent order of that phone).
func (l *Ledger) FindPickupOrder(ctx context.Context, q string) (PickupOrder, error) {
	q = strings.TrimSpace(q)
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE code = ? OR id = ? OR phone = ? ORDER BY code = ? DESC, updated_at DESC LIMIT 1", q, q, q, q)
	if err != nil {
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
		}
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, ErrNotFound)
	}
	o, err := scanPickup(rows)
	if err != nil {
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
	}
	return o, nil
}

func scanPickup(rows *sql.Rows) (PickupOrder, error) {
	var o PickupOrder
	var lines string
	var handed sql.NullTime
	if err := rows.Scan(&o.ID, &o.Code, &o.Status, &o.Customer, &o.Phone, &o.Member, &o.Paid, &lines, &handed, &o.HandedBy, &o.UpdatedAt); err != nil {
		return o, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return o, errors.Join(errors.New("stored lines are not valid"), err)
	}
	if handed.Valid {
		o.HandedAt = handed.Time.UTC()
	}
	o.UpdatedAt = o.UpdatedAt.UTC()
	return o, nil
}

// Pickup order statuses at the store. HQ sends open and cancelled (and
// fulfilled or partially_handed_over after a hand-over at another of the
// store's terminals); the store records its own hand-overs.
const (
	PickupOpen       = "open"
	PickupCancelled  = "cancelled"
	PickupPartial    = "partially_handed_over"
	PickupHandedOver = "handed_over"
)

// Pickup errors.
var (
	ErrPickupUnknown     = errors.New("no pickup order with that code here")
	ErrPickupOtherStore  = errors.New("pickup code belongs to another store")
	ErrPickupHandedOver  = errors.New("pickup order was already handed over")
	ErrPickupCancelled   = errors.New("pickup order was cancelled by HQ")
	ErrPickupLines       = errors.New("hand-over does not match the order")
	errPickupNothingLeft = fmt.Errorf("%w: nothing is left to hand over", ErrPickupHandedOver)
)

// LookupPickup finds the orders a cashier's input names: a scanned pickup
// QR ("EPP1:<store>:<code>"), a typed code or order id (one order), or the
// customer's phone (every order of that phone still to hand over). A QR of
// another store, a code this store never heard of, and an order cancelled
// or already handed over are errors the cashier sees.
func (l *Ledger) LookupPickup(ctx context.Context, q string) ([]PickupOrder, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, fmt.Errorf("pickup: %w: empty code", ErrPickupUnknown)
	}
	if store, code, ok := wire.ParsePickupQR(q); ok {
		if store != l.cfg.Store {
			return nil, fmt.Errorf("pickup %s: %w (%s)", code, ErrPickupOtherStore, store)
		}
		q = code
	}
	o, err := l.pickupBy(ctx, l.db.Read, q)
	if err == nil {
		if err := pickupOpen(o); err != nil {
			return nil, err
		}
		return []PickupOrder{o}, nil
	}
	if !errors.Is(err, ErrPickupUnknown) {
		return nil, err
	}
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE phone = ? AND status IN (?, ?) ORDER BY updated_at", q, PickupOpen, PickupPartial)
	if err != nil {
		return nil, fmt.Errorf("pickup orders of %s: %w", q, err)
	}
	defer rows.Close()
	var out []PickupOrder
	for rows.Next() {
		o, err := scanPickup(rows)
		if err != nil {
			return nil, fmt.Errorf("pickup orders of %s: %w", q, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pickup %s: %w", q, ErrPickupUnknown)
	}
	for i := range out {
		if err := l.pickupProgress(ctx, l.db.Read, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func pickupOpen(o PickupOrder) error {
	switch o.Status {
	case PickupCancelled:
		return fmt.Errorf("pickup %s: %w", o.Code, ErrPickupCancelled)
	case PickupHandedOver:
		return fmt.Errorf("pickup %s: %w (%s by %s)", o.Code, ErrPickupHandedOver, o.HandedAt.Format(time.RFC3339), o.HandedBy)
	}
	return nil
}

// pickupBy reads one order by code or id, with its progress.
func (l *Ledger) pickupBy(ctx context.Context, q queryer, codeOrID string) (PickupOrder, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE code = ? OR id = ? LIMIT 1", codeOrID, codeOrID)
	if err != nil {
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", codeOrID, err)
	}
	var o PickupOrder
	found := rows.Next()
	if found {
		o, err = scanPickup(rows)
	}
	rows.Close()
	if err != nil {
		return o, fmt.Errorf("pickup order %s: %w", codeOrID, err)
	}
	if !found {
		return o, fmt.Errorf("pickup %s: %w", codeOrID, ErrPickupUnknown)
	}
	return o, l.pickupProgress(ctx, q, &o)
}

// pickupProgress sets each line's Handed and Missing: HQ's totals (from
// the feed) plus this terminal's hand-overs HQ has not acknowledged, and
// never less than this terminal's own hand-overs (HQ's totals can lag the
// ack that confirmed them).
func (l *Ledger) pickupProgress(ctx context.Context, q queryer, o *PickupOrder) error {
	st, err := l.db.OutboxState(ctx)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, "SELECT lines, outbox_seq FROM pickup_handovers WHERE order_id = ?", o.ID)
	if err != nil {
		return fmt.Errorf("hand-overs of %s: %w", o.Code, err)
	}
	defer rows.Close()
	own, unconfirmed, missing := map[string]int64{}, map[string]int64{}, map[string]bool{}
	for rows.Next() {
		var raw string
		var seq int64
		if err := rows.Scan(&raw, &seq); err != nil {
			return err
		}
		var ls []wire.PickupLine
		if err := json.Unmarshal([]byte(raw), &ls); err != nil {
			return fmt.Errorf("hand-over of %s: stored lines: %w", o.Code, err)
		}
		for _, hl := range ls {
			own[hl.SKU] += hl.Handed
			if seq > st.AckedSeq {
				unconfirmed[hl.SKU] += hl.Handed
			}
			missing[hl.SKU] = missing[hl.SKU] || hl.Missing
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range o.Lines {
		ln := &o.Lines[i]
		ln.Handed = max(ln.Handed+unconfirmed[ln.SKU], own[ln.SKU])
		ln.Missing = ln.Missing || missing[ln.SKU]
	}
	return nil
}

// HandoverLine is what the cashier hands over of one order line.
type HandoverLine struct {
	SKU        string `json:"sku"`                  // the ordered SKU
	Handed     int64  `json:"handed"`               // thousandths handed now (of Substitute when set)
	Substitute string `json:"substitute,omitempty"` // the SKU handed instead
	Missing    bool   `json:"missing,omitempty"`    // the rest of the line will not be handed over
}

// HandoverRequest hands over an online order: all of what is left (no
// Lines) or part of it.
type HandoverRequest struct {
	Order   string         `json:"order"` // order id, code or pickup QR
	Lines   []HandoverLine `json:"lines,omitempty"`
	Cashier string         `json:"cashier"`
}

// Handover is a recorded hand-over.
type Handover struct {
	ID       string            `json:"id"`
	OrderID  string            `json:"order_id"`
	Code     string            `json:"code"`
	Final    bool              `json:"final"`
	Complete bool              `json:"complete"`
	Lines    []wire.PickupLine `json:"lines"`
	HandedAt time.Time         `json:"handed_at"`
	Order    PickupOrder       `json:"order"`
	// PrintState is the hand-over slip's: its print job has the
	// hand-over's id.
	PrintState string `json:"print_state,omitempty"`
}

// HandOverPickup records a hand-over: its row, the order's new status, the
// stock that left the store, the pickup.fulfilled and stock.level events
// and the hand-over slip's print job, in ONE transaction (the transactional outbox rule). The order is
// read and checked inside that transaction, so two sessions cannot hand
// the same units over twice.
//
// A line's Handed may not pass what is left of it; a substitute must be a
// product the store sells; a line recorded missing takes nothing more.
// The order is final when every line is handed in full or missing, and
// complete when nothing is missing.
func (l *Ledger) HandOverPickup(ctx context.Context, req HandoverRequest) (*Handover, error) {
	if req.Cashier == "" {
		return nil, errors.New("hand over: cashier required")
	}
	if len(req.Lines) > wire.MaxPickupLines {
		return nil, fmt.Errorf("hand over: %w: %d lines", ErrPickupLines, len(req.Lines))
	}
	q := strings.TrimSpace(req.Order)
	if store, code, ok := wire.ParsePickupQR(q); ok {
		if store != l.cfg.Store {
			return nil, fmt.Errorf("hand over %s: %w (%s)", code, ErrPickupOtherStore, store)
		}
		q = code
	}
	if q == "" {
		return nil, fmt.Errorf("hand over: %w: no order given", ErrPickupUnknown)
	}
	now := l.now()
	h := &Handover{ID: uuid.Must(uuid.NewV7()).String(), HandedAt: now}
	err := l.write(ctx, func(tx *sql.Tx) error {
		o, err := l.pickupBy(ctx, tx, q)
		if err != nil {
			return err
		}
		if err := pickupOpen(o); err != nil {
			return err
		}
		lines, err := l.handoverLines(ctx, tx, o, req.Lines)
		if err != nil {
			return err
		}
		h.OrderID, h.Code, h.Lines = o.ID, o.Code, lines
		// What the order looks like after it.
		h.Final, h.Complete = true, true
		for i := range o.Lines {
			ol := &o.Lines[i]
			for _, hl := range lines {
				if hl.SKU == ol.SKU {
					ol.Handed += hl.Handed
					ol.Missing = ol.Missing || hl.Missing
					if hl.Substitute != "" {
						ol.Substitute = hl.Substitute
					}
				}
			}
			if ol.Handed < ol.Qty && !ol.Missing {
				h.Final = false
			}
			if ol.Missing {
				h.Complete = false
			}
		}
		h.Complete = h.Complete && h.Final
		status := PickupPartial
		if h.Final {
			status = PickupHandedOver
		}
		for _, hl := range lines {
			if hl.Handed == 0 {
				continue
			}
			sku := hl.SKU
			if hl.Substitute != "" {
				sku = hl.Substitute
			}
			if _, err := l.moveStockTx(ctx, tx, sku, -hl.Handed, "pickup", now); err != nil {
				return fmt.Errorf("stock %s: %w", sku, err)
			}
		}
		ev, err := l.db.AppendEvent(ctx, tx, wire.EventPickupFulfilled, wire.PickupFulfilled{OrderID: o.ID, Code: o.Code, Lines: lines,
			Complete: h.Complete, Final: h.Final, HandoverID: h.ID, Cashier: req.Cashier, HandedAt: now}, now)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(lines)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO pickup_handovers(id, order_id, cashier, handed_at, final, complete, lines, outbox_seq) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			h.ID, o.ID, req.Cashier, now, h.Final, h.Complete, string(raw), ev.Seq); err != nil {
			return fmt.Errorf("record hand-over: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE pickup_orders SET status = ?, handed_at = COALESCE(handed_at, ?), handed_by = ?, updated_at = ? WHERE id = ?",
			status, now, req.Cashier, now, o.ID); err != nil {
			return fmt.Errorf("update pickup order: %w", err)
		}
		if _, err := l.enqueueAs(ctx, tx, h.ID, PrintPickup, "", o.Code); err != nil {
			return err
		}
		o.Status, o.HandedBy, o.UpdatedAt = status, req.Cashier, now
		if o.HandedAt.IsZero() {
			o.HandedAt = now
		}
		h.Order = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hand over: %w", err)
	}
	h.PrintState = "queued"
	return h, nil
}

// handoverLines checks a hand-over's lines against what is left of the
// order o (with its progress) and returns the event's lines: per order
// line touched, Qty ordered, Handed now, Substitute and Missing.
func (l *Ledger) handoverLines(ctx context.Context, tx *sql.Tx, o PickupOrder, req []HandoverLine) ([]wire.PickupLine, error) {
	left := func(ol wire.PickupLine) int64 {
		if ol.Missing {
			return 0
		}
		return max(ol.Qty-ol.Handed, 0)
	}
	var out []wire.PickupLine
	if len(req) == 0 {
		for _, ol := range o.Lines {
			if n := left(ol); n > 0 {
				out = append(out, wire.PickupLine{SKU: ol.SKU, Qty: ol.Qty, Handed: n})
			}
		}
		if len(out) == 0 {
			return nil, errPickupNothingLeft
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, hl := range req {
		i := slices.IndexFunc(o.Lines, func(ol wire.PickupLine) bool { return ol.SKU == hl.SKU })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s is not on order %s", ErrPickupLines, hl.SKU, o.Code)
		}
		if seen[hl.SKU] {
			return nil, fmt.Errorf("%w: %s is listed twice", ErrPickupLines, hl.SKU)
		}
		seen[hl.SKU] = true
		ol := o.Lines[i]
		if hl.Handed < 0 {
			return nil, fmt.Errorf("%s: %w", hl.SKU, ErrBadQuantity)
		}
		if hl.Handed > left(ol) {
			return nil, fmt.Errorf("%w: %s ordered %d, handed %d before, %d left, asked %d", ErrPickupLines, hl.SKU, ol.Qty, ol.Handed, left(ol), hl.Handed)
		}
		if hl.Missing && ol.Missing {
			return nil, fmt.Errorf("%w: %s is already recorded missing", ErrPickupLines, hl.SKU)
		}
		if hl.Handed == 0 && !hl.Missing {
			continue // nothing of this line now
		}
		if hl.Substitute != "" {
			if hl.Substitute == hl.SKU {
				return nil, fmt.Errorf("%w: %s substituted by itself", ErrPickupLines, hl.SKU)
			}
			if hl.Handed == 0 {
				return nil, fmt.Errorf("%w: substitute %s for %s, but nothing handed", ErrPickupLines, hl.Substitute, hl.SKU)
			}
		}
		// Whole pieces for goods sold by the piece (the one handed over).
		sku := cmp.Or(hl.Substitute, hl.SKU)
		var unit string
		err := tx.QueryRowContext(ctx, "SELECT unit FROM products WHERE sku = ?", sku).Scan(&unit)
		switch {
		case errors.Is(err, sql.ErrNoRows) && hl.Substitute != "":
			return nil, fmt.Errorf("%w: substitute %s is not a product of this store", ErrPickupLines, hl.Substitute)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return nil, err
		case unit == "each" && hl.Handed%1000 != 0:
			return nil, fmt.Errorf("%s: %w: whole pieces only", sku, ErrBadQuantity)
		}
		out = append(out, wire.PickupLine{SKU: hl.SKU, Qty: ol.Qty, Handed: hl.Handed, Substitute: hl.Substitute, Missing: hl.Missing})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: nothing handed over and nothing recorded missing", ErrPickupLines)
	}
	return out, nil
}
