package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// Print job kinds (print_queue.kind). A job that prints one record has that
// record's id, so the record finds its paper's state by key: a receipt job
// has its sale's id, a return slip its return's, a pickup slip its
// hand-over's. Copies and reports get ids of their own.
const (
	PrintReceipt = "receipt" // CompleteSale: the customer's receipt; Receipt is the receipt number
	PrintCopy    = "copy"    // Reprint: a copy of a receipt, marked as such
	PrintReturn  = "return"  // a return's slip; Receipt is the return number, SaleID empty
	PrintReport  = "report"  // CloseDay: the Z report; Receipt is the business day
	PrintPickup  = "pickup"  // a pickup hand-over's slip; Receipt is the order's pickup code
)

// ReturnReceipt is a recorded return as its slip prints it: what came
// back, what was refunded and how, and who did and approved it. Money is
// the ledger's, already rounded; the layout only formats it.
type ReturnReceipt struct {
	ReturnID string `json:"return_id"`
	// Receipt is the return's own number, T1-R00003.
	Receipt  string `json:"receipt"`
	Store    string `json:"store"`
	Terminal string `json:"terminal"`
	// Channel is store (against a receipt), blind (no receipt) or online
	// (bought online; the online channel owes the refund).
	Channel     string    `json:"channel"`
	Cashier     string    `json:"cashier"`
	Manager     string    `json:"manager,omitempty"` // who approved
	BusinessDay string    `json:"business_day"`
	ReturnedAt  time.Time `json:"returned_at"` // UTC
	LocalTime   string    `json:"local_time"`  // in the store's zone
	// OrigReceipt and OrigSaleID name the sale returned against.
	OrigReceipt string `json:"orig_receipt,omitempty"`
	OrigSaleID  string `json:"orig_sale_id,omitempty"`
	// OrderID is the online order of an online return; OrderCode its
	// pickup code when this store knows the order.
	OrderID      string              `json:"order_id,omitempty"`
	OrderCode    string              `json:"order_code,omitempty"`
	Currency     string              `json:"currency"`
	MinorDigits  int                 `json:"minor_digits"`
	TaxInclusive bool                `json:"tax_inclusive"`
	Lines        []ReturnReceiptLine `json:"lines"`
	Total        int64               `json:"total"`
	// Refunds are how it was refunded; a "points" refund is the part the
	// sale paid with points, which comes back as points.
	Refunds []Tender `json:"refunds"`
	// Points are the member's points the return moved back, for a return
	// against a member's sale (the sale's receipt showed its points).
	Points *ReturnReceiptPoints `json:"points,omitempty"`
}

// ReturnReceiptPoints are a member's points on a return slip.
type ReturnReceiptPoints struct {
	Member string `json:"member"`
	// TakenBack are the earned points the return took back; GivenBack the
	// spent points it gave back, GivenBackValue what they had paid (the
	// points refund, minor units).
	TakenBack      int64 `json:"taken_back"`
	GivenBack      int64 `json:"given_back"`
	GivenBackValue int64 `json:"given_back_value"`
	// Balance is the member's as this terminal sees it when the slip is
	// read (MemberPoints.Provisional), as on a receipt.
	Balance int64 `json:"balance"`
	// Pending: the store does not know the member; HQ works the points
	// out and Balance is unknown.
	Pending bool `json:"pending,omitempty"`
}

// ReturnReceiptLine is one returned item.
type ReturnReceiptLine struct {
	Line     int    `json:"line"`
	OrigLine int    `json:"orig_line,omitempty"` // the sale's line, for a return against a receipt
	SKU      string `json:"sku"`
	Name     string `json:"name"` // the sale line's name, else the catalog's
	Unit     string `json:"unit"` // each or kg
	Qty      int64  `json:"qty"`  // thousandths
	// UnitPrice is what the sale charged per unit (0 when there is no sale).
	UnitPrice int64 `json:"unit_price,omitempty"`
	Amount    int64 `json:"amount"` // refunded for this line
}

// ReturnReceipt reads return id as its slip prints it. ErrNotFound if no
// return has that id.
func (l *Ledger) ReturnReceipt(ctx context.Context, id string) (ReturnReceipt, error) {
	r := ReturnReceipt{ReturnID: id, Store: l.cfg.Store, Terminal: l.cfg.Terminal, Currency: l.cfg.Currency, MinorDigits: l.cfg.MinorDigits,
		TaxInclusive: l.cfg.TaxInclusive, Lines: []ReturnReceiptLine{}, Refunds: []Tender{}}
	tx, err := l.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // one snapshot of the return's rows
	if err != nil {
		return r, fmt.Errorf("return slip %s: %w", id, err)
	}
	defer tx.Rollback()
	var member string
	var taken, given int64
	err = tx.QueryRowContext(ctx, `SELECT r.receipt, r.channel, r.cashier, COALESCE(r.manager, ''), r.business_day, r.total, r.created_at,
		COALESCE(r.order_id, ''), COALESCE(r.orig_sale_id, ''), COALESCE(s.receipt, ''), COALESCE(po.code, ''),
		COALESCE(r.member, ''), r.points_taken, r.points_given
		FROM returns r LEFT JOIN sales s ON s.id = r.orig_sale_id LEFT JOIN pickup_orders po ON po.id = r.order_id
		WHERE r.id = ?`, id).Scan(&r.Receipt, &r.Channel, &r.Cashier, &r.Manager, &r.BusinessDay, &r.Total, &r.ReturnedAt,
		&r.OrderID, &r.OrigSaleID, &r.OrigReceipt, &r.OrderCode, &member, &taken, &given)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("return slip %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("return slip %s: %w", id, err)
	}
	r.ReturnedAt = r.ReturnedAt.UTC()
	r.LocalTime = r.ReturnedAt.In(l.location()).Format(time.DateTime)
	rows, err := tx.QueryContext(ctx, `SELECT rl.line, COALESCE(rl.orig_line, 0), rl.sku, COALESCE(sl.name, p.name, ''), COALESCE(sl.unit, p.unit, 'each'),
		COALESCE(sl.unit_price, 0), rl.qty, rl.amount
		FROM return_lines rl JOIN returns r ON r.id = rl.return_id
		LEFT JOIN sale_lines sl ON sl.sale_id = r.orig_sale_id AND sl.line = rl.orig_line
		LEFT JOIN products p ON p.sku = rl.sku
		WHERE rl.return_id = ? ORDER BY rl.line`, id)
	if err != nil {
		return r, fmt.Errorf("return slip %s: lines: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ln ReturnReceiptLine
		if err := rows.Scan(&ln.Line, &ln.OrigLine, &ln.SKU, &ln.Name, &ln.Unit, &ln.UnitPrice, &ln.Qty, &ln.Amount); err != nil {
			return r, fmt.Errorf("return slip %s: lines: %w", id, err)
		}
		r.Lines = append(r.Lines, ln)
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("return slip %s: lines: %w", id, err)
	}
	trows, err := tx.QueryContext(ctx, "SELECT kind, amount, ref FROM return_refunds WHERE return_id = ? ORDER BY seq", id)
	if err != nil {
		return r, fmt.Errorf("return slip %s: refunds: %w", id, err)
	}
	defer trows.Close()
	for trows.Next() {
		var t Tender
		if err := trows.Scan(&t.Kind, &t.Amount, &t.Ref); err != nil {
			return r, fmt.Errorf("return slip %s: refunds: %w", id, err)
		}
		r.Refunds = append(r.Refunds, t)
	}
	if err := trows.Err(); err != nil {
		return r, fmt.Errorf("return slip %s: refunds: %w", id, err)
	}
	// The slip's own rows are read; the balance is read on its own, as a
	// receipt's is (the read pool may have one connection).
	if err := tx.Rollback(); err != nil {
		return r, fmt.Errorf("return slip %s: %w", id, err)
	}
	if member != "" {
		p := &ReturnReceiptPoints{Member: member, TakenBack: taken, GivenBack: given}
		for _, t := range r.Refunds {
			if t.Kind == TenderPoints {
				p.GivenBackValue += t.Amount
			}
		}
		var known int
		if err := l.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM members WHERE id = ?", member).Scan(&known); err != nil {
			return r, fmt.Errorf("return slip %s: points: %w", id, err)
		}
		if known == 0 {
			p.Pending = true
		} else {
			mp, err := l.MemberPoints(ctx, member)
			if err != nil {
				return r, fmt.Errorf("return slip %s: points: %w", id, err)
			}
			p.Balance = mp.Provisional
		}
		r.Points = p
	}
	return r, nil
}

// HandoverReceipt is a pickup hand-over as its slip prints it: the order,
// the customer, and per order line what was handed now, the substitute
// handed instead, or that the rest is missing.
type HandoverReceipt struct {
	HandoverID string    `json:"handover_id"`
	OrderID    string    `json:"order_id"`
	Code       string    `json:"code"` // the pickup code
	Store      string    `json:"store"`
	Terminal   string    `json:"terminal"`
	Cashier    string    `json:"cashier"`
	Customer   string    `json:"customer,omitempty"`
	Phone      string    `json:"phone,omitempty"`
	HandedAt   time.Time `json:"handed_at"`  // UTC
	LocalTime  string    `json:"local_time"` // in the store's zone
	// Final: nothing more will be handed over (all handed, or the rest
	// missing). Complete: final with nothing missing.
	Final    bool                  `json:"final"`
	Complete bool                  `json:"complete"`
	Lines    []HandoverReceiptLine `json:"lines"`
}

// HandoverReceiptLine is one order line of a hand-over.
type HandoverReceiptLine struct {
	SKU     string `json:"sku"`
	Name    string `json:"name"` // the catalog's; empty for a SKU the store does not sell
	Unit    string `json:"unit"`
	Ordered int64  `json:"ordered"` // thousandths
	Handed  int64  `json:"handed"`  // handed now, of Substitute when set
	// Substitute is the SKU handed instead, with its catalog name and unit.
	Substitute     string `json:"substitute,omitempty"`
	SubstituteName string `json:"substitute_name,omitempty"`
	SubstituteUnit string `json:"substitute_unit,omitempty"`
	Missing        bool   `json:"missing,omitempty"` // the rest of the line will not be handed over
}

// HandoverReceipt reads hand-over id as its slip prints it. ErrNotFound if
// no hand-over of this terminal has that id.
func (l *Ledger) HandoverReceipt(ctx context.Context, id string) (HandoverReceipt, error) {
	h := HandoverReceipt{HandoverID: id, Store: l.cfg.Store, Terminal: l.cfg.Terminal, Lines: []HandoverReceiptLine{}}
	var raw string
	err := l.db.Read.QueryRowContext(ctx, `SELECT h.order_id, o.code, h.cashier, COALESCE(o.customer, ''), COALESCE(o.phone, ''), h.handed_at, h.final, h.complete, h.lines
		FROM pickup_handovers h JOIN pickup_orders o ON o.id = h.order_id WHERE h.id = ?`, id).
		Scan(&h.OrderID, &h.Code, &h.Cashier, &h.Customer, &h.Phone, &h.HandedAt, &h.Final, &h.Complete, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("pickup slip %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return h, fmt.Errorf("pickup slip %s: %w", id, err)
	}
	h.HandedAt = h.HandedAt.UTC()
	h.LocalTime = h.HandedAt.In(l.location()).Format(time.DateTime)
	var ls []wire.PickupLine
	if err := json.Unmarshal([]byte(raw), &ls); err != nil {
		return h, fmt.Errorf("pickup slip %s: stored lines: %w", id, err)
	}
	for _, pl := range ls {
		hl := HandoverReceiptLine{SKU: pl.SKU, Ordered: pl.Qty, Handed: pl.Handed, Substitute: pl.Substitute, Missing: pl.Missing}
		if hl.Name, hl.Unit, err = l.productName(ctx, pl.SKU, pl.Qty); err != nil {
			return h, fmt.Errorf("pickup slip %s: %w", id, err)
		}
		if pl.Substitute != "" {
			if hl.SubstituteName, hl.SubstituteUnit, err = l.productName(ctx, pl.Substitute, pl.Handed); err != nil {
				return h, fmt.Errorf("pickup slip %s: %w", id, err)
			}
		}
		h.Lines = append(h.Lines, hl)
	}
	return h, nil
}

// productName is a SKU's catalog name and unit. A SKU the store does not
// sell (an online-only item) has no name; its unit is guessed from the
// quantity (whole pieces are "each").
func (l *Ledger) productName(ctx context.Context, sku string, qty int64) (name, unit string, err error) {
	err = l.db.Read.QueryRowContext(ctx, "SELECT name, unit FROM products WHERE sku = ?", sku).Scan(&name, &unit)
	if errors.Is(err, sql.ErrNoRows) {
		if qty%1000 == 0 {
			return "", "each", nil
		}
		return "", "kg", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("product %s: %w", sku, err)
	}
	return name, unit, nil
}

func (l *Ledger) location() *time.Location {
	if l.cfg.Location == nil {
		return time.UTC
	}
	return l.cfg.Location
}

// ReceiptPoints are a member's points on a receipt.
type ReceiptPoints struct {
	Earned int64 `json:"earned"`
	Spent  int64 `json:"spent"`
	// SpentValue is what the spent points paid, minor units.
	SpentValue int64 `json:"spent_value"`
	// Balance is the member's balance as this terminal sees it when the
	// receipt is read (MemberPoints.Provisional: HQ's last balance less
	// this terminal's unconfirmed spending plus its unconfirmed earning),
	// so a copy printed later shows the later balance.
	Balance int64 `json:"balance"`
	// Pending: the store does not know the member (a phone typed while
	// offline): the sale earned nothing here and HQ attaches its points by
	// its own rule. Balance is unknown then.
	Pending bool `json:"pending,omitempty"`
}

// receiptPoints reads a member sale's points for its receipt. It runs when
// the receipt is read (printed or previewed), never in the sale's commit.
func (l *Ledger) receiptPoints(ctx context.Context, s *Sale) (*ReceiptPoints, error) {
	if s.Member == "" {
		return nil, nil
	}
	_, value := pointsSpent(s.Tenders)
	p := &ReceiptPoints{Earned: s.PointsEarned, Spent: s.PointsSpent, SpentValue: value}
	var known int
	if err := l.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM members WHERE id = ?", s.Member).Scan(&known); err != nil {
		return nil, fmt.Errorf("points of %s: %w", s.Receipt, err)
	}
	if known == 0 {
		p.Pending = true
		return p, nil
	}
	mp, err := l.MemberPoints(ctx, s.Member)
	if err != nil {
		return nil, fmt.Errorf("points of %s: %w", s.Receipt, err)
	}
	p.Balance = mp.Provisional
	return p, nil
}
