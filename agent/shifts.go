package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/sync/wire"
)

// Shift is a cashier's drawer session.
type Shift struct {
	ID          string    `json:"id"`
	Cashier     string    `json:"cashier"`
	BusinessDay string    `json:"business_day"`
	OpenedAt    time.Time `json:"opened_at"`
	Float       int64     `json:"float"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	Expected    int64     `json:"expected"`
	Counted     int64     `json:"counted"`
	OverShort   int64     `json:"over_short"`
}

// openShiftID returns the open shift's id, read from the database once and
// then kept in memory (this terminal's agent is the only writer).
func (l *Ledger) openShiftID(ctx context.Context) (string, error) {
	l.shiftMu.Lock()
	defer l.shiftMu.Unlock()
	if !l.shiftKnown {
		var id string
		err := l.db.Read.QueryRowContext(ctx, "SELECT id FROM shifts WHERE closed_at IS NULL").Scan(&id)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
		l.shiftID, l.shiftKnown = id, true
	}
	if l.shiftID == "" {
		return "", ErrNoShift
	}
	return l.shiftID, nil
}

func (l *Ledger) setShift(id string) {
	l.shiftMu.Lock()
	l.shiftID, l.shiftKnown = id, true
	l.shiftMu.Unlock()
}

// CurrentShift returns the open shift, or ErrNoShift.
func (l *Ledger) CurrentShift(ctx context.Context) (Shift, error) {
	id, err := l.openShiftID(ctx)
	if err != nil {
		return Shift{}, err
	}
	return l.shift(ctx, id)
}

func (l *Ledger) shift(ctx context.Context, id string) (Shift, error) {
	var s Shift
	var closed sql.NullTime
	var exp, cnt, os sql.NullInt64
	err := l.db.Read.QueryRowContext(ctx, "SELECT id, cashier, business_day, opened_at, float_amount, closed_at, expected, counted, over_short FROM shifts WHERE id = ?", id).
		Scan(&s.ID, &s.Cashier, &s.BusinessDay, &s.OpenedAt, &s.Float, &closed, &exp, &cnt, &os)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("shift %s: %w", id, ErrNotFound)
	}
	s.OpenedAt = s.OpenedAt.UTC()
	if closed.Valid {
		s.ClosedAt = closed.Time.UTC()
	}
	s.Expected, s.Counted, s.OverShort = exp.Int64, cnt.Int64, os.Int64
	return s, err
}

// OpenShift opens the drawer with a float.
func (l *Ledger) OpenShift(ctx context.Context, cashier string, float int64) (Shift, error) {
	if float < 0 {
		return Shift{}, fmt.Errorf("open shift: %w", ErrBadAmount)
	}
	if _, err := l.openShiftID(ctx); err == nil {
		return Shift{}, ErrShiftOpen
	}
	now := l.now()
	day, err := l.dayFor(ctx, now)
	if err != nil {
		return Shift{}, fmt.Errorf("open shift: %w", err)
	}
	s := Shift{ID: uuid.Must(uuid.NewV7()).String(), Cashier: cashier, BusinessDay: day, OpenedAt: now, Float: float}
	err = l.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO shifts(id, cashier, business_day, opened_at, float_amount) VALUES(?, ?, ?, ?, ?)",
			s.ID, cashier, s.BusinessDay, now, float); err != nil {
			return err
		}
		_, err := l.db.AppendEvent(ctx, tx, wire.EventShiftOpened, wire.ShiftEvent{ShiftID: s.ID, Cashier: cashier, BusinessDay: s.BusinessDay, At: now, Float: float}, now)
		return err
	})
	if err != nil {
		return Shift{}, fmt.Errorf("open shift: %w", err)
	}
	l.setShift(s.ID)
	return s, nil
}

// CashMovement records paid-in, paid-out or a no-sale drawer open. Paid-out
// and no-sale need a manager.
func (l *Ledger) CashMovement(ctx context.Context, kind string, amount int64, reason, user, manager string) error {
	switch kind {
	case "paid_in":
		if amount <= 0 {
			return ErrBadAmount
		}
	case "paid_out":
		if amount <= 0 {
			return ErrBadAmount
		}
		if manager == "" {
			return ErrNeedsManager
		}
	case "no_sale":
		amount = 0
		if manager == "" {
			return ErrNeedsManager
		}
	default:
		return fmt.Errorf("cash movement %q is not paid_in, paid_out or no_sale", kind)
	}
	shift, err := l.openShiftID(ctx)
	if err != nil {
		return err
	}
	now := l.now()
	return l.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO cash_movements(id, shift_id, kind, amount, reason, user_id, manager, at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			uuid.Must(uuid.NewV7()).String(), shift, kind, amount, reason, user, nullStr(manager), now); err != nil {
			return err
		}
		if _, err := l.db.AppendEvent(ctx, tx, wire.EventCashMovement, wire.CashMovement{ShiftID: shift, Kind: kind, Amount: amount, Reason: reason, User: user, At: now}, now); err != nil {
			return err
		}
		if manager != "" {
			return l.auditTx(ctx, tx, kind, user, manager, "", fmt.Sprintf("%d %s", amount, reason))
		}
		return nil
	})
}

// expectedCash is the cash that should be in the drawer for a shift.
func expectedCash(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, shiftID string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT float_amount FROM shifts WHERE id = ?1)
		+ COALESCE((SELECT SUM(t.amount) FROM sale_tenders t JOIN sales s ON s.id = t.sale_id WHERE s.shift_id = ?1 AND s.state IN ('completed', 'voided') AND t.kind = 'cash'), 0)
		- COALESCE((SELECT SUM(change_due) FROM sales WHERE shift_id = ?1 AND state IN ('completed', 'voided')), 0)
		- COALESCE((SELECT SUM(s.total) FROM sales s WHERE s.shift_id = ?1 AND s.state = 'voided' AND EXISTS (SELECT 1 FROM sale_tenders t WHERE t.sale_id = s.id AND t.kind = 'cash')), 0)
		+ COALESCE((SELECT SUM(CASE kind WHEN 'paid_in' THEN amount WHEN 'paid_out' THEN -amount ELSE 0 END) FROM cash_movements WHERE shift_id = ?1), 0)
		- COALESCE((SELECT SUM(f.amount) FROM return_refunds f JOIN returns r ON r.id = f.return_id
			WHERE f.kind = 'cash' AND r.created_at >= (SELECT opened_at FROM shifts WHERE id = ?1)
			AND (SELECT closed_at FROM shifts WHERE id = ?1) IS NULL), 0)`, shiftID).Scan(&v)
	return v, err
}

// CloseShift closes the open shift with the counted cash and records over
// or short.
func (l *Ledger) CloseShift(ctx context.Context, counted int64) (Shift, error) {
	if counted < 0 {
		return Shift{}, ErrBadAmount
	}
	id, err := l.openShiftID(ctx)
	if err != nil {
		return Shift{}, err
	}
	now := l.now()
	err = l.write(ctx, func(tx *sql.Tx) error {
		exp, err := expectedCash(ctx, tx, id)
		if err != nil {
			return err
		}
		var sales int64
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sales WHERE shift_id = ? AND state = 'completed'", id).Scan(&sales); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE shifts SET closed_at = ?, expected = ?, counted = ?, over_short = ? WHERE id = ?", now, exp, counted, counted-exp, id); err != nil {
			return err
		}
		var cashier, day string
		var float int64
		if err := tx.QueryRowContext(ctx, "SELECT cashier, business_day, float_amount FROM shifts WHERE id = ?", id).Scan(&cashier, &day, &float); err != nil {
			return err
		}
		_, err = l.db.AppendEvent(ctx, tx, wire.EventShiftClosed, wire.ShiftEvent{ShiftID: id, Cashier: cashier, BusinessDay: day, At: now,
			Float: float, Expected: exp, Counted: counted, OverShort: counted - exp, Sales: sales}, now)
		return err
	})
	if err != nil {
		return Shift{}, fmt.Errorf("close shift: %w", err)
	}
	l.setShift("")
	return l.shift(ctx, id)
}

// Report is an X (mid-shift) or Z (end of day) report.
type Report struct {
	Kind         string           `json:"kind"` // X or Z
	BusinessDay  string           `json:"business_day"`
	At           time.Time        `json:"at"`
	Currency     string           `json:"currency"`
	Sales        int64            `json:"sales"`
	Gross        int64            `json:"gross"`
	Discounts    int64            `json:"discounts"`
	Coupons      int64            `json:"coupons"`
	Tax          int64            `json:"tax"`
	Net          int64            `json:"net"`
	Voids        int64            `json:"voids"`
	VoidTotal    int64            `json:"void_total"`
	Returns      int64            `json:"returns"`
	ReturnTotal  int64            `json:"return_total"`
	Tenders      map[string]int64 `json:"tenders"`
	Change       int64            `json:"change"`
	CashExpected int64            `json:"cash_expected,omitempty"`
	// ZNumber and ClosedBy are set on the Z report CloseDay recorded.
	ZNumber  int64  `json:"z_number,omitempty"`
	ClosedBy string `json:"closed_by,omitempty"`
}

// XReport summarises the current business day so far; it closes nothing.
func (l *Ledger) XReport(ctx context.Context) (Report, error) {
	day, err := l.dayFor(ctx, l.now())
	if err != nil {
		return Report{}, fmt.Errorf("x report: %w", err)
	}
	return l.report(ctx, "X", day)
}

// ZReport returns the Z report of day ("" = the current business day): the
// report recorded when CloseDay closed it, or, for a day still open, what
// it would say now (Kind "X").
func (l *Ledger) ZReport(ctx context.Context, day string) (Report, error) {
	if day == "" {
		var err error
		if day, err = l.dayFor(ctx, l.now()); err != nil {
			return Report{}, fmt.Errorf("z report: %w", err)
		}
	}
	var js string
	err := l.db.Read.QueryRowContext(ctx, "SELECT report FROM day_closes WHERE business_day = ?", day).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return l.report(ctx, "X", day)
	}
	if err != nil {
		return Report{}, fmt.Errorf("z report %s: %w", day, err)
	}
	var r Report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		return Report{}, fmt.Errorf("z report %s: %w", day, err)
	}
	return r, nil
}

// CloseDay runs the end of day: it records the Z report of the current
// business day, queues it for printing (a "report" print job whose Receipt
// is the day) and audits it; sales after it count towards the next
// business day. Every shift must be closed first (ErrShiftOpen).
func (l *Ledger) CloseDay(ctx context.Context, manager string) (Report, error) {
	if manager == "" {
		return Report{}, fmt.Errorf("close day: %w", ErrNeedsManager)
	}
	if _, err := l.openShiftID(ctx); err == nil {
		return Report{}, fmt.Errorf("close day: %w: close it first", ErrShiftOpen)
	} else if !errors.Is(err, ErrNoShift) {
		return Report{}, fmt.Errorf("close day: %w", err)
	}
	// No sale completes and no day is stamped while the day's report is
	// taken (lock order everywhere: l.mu, then dayMu, then shiftMu).
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dayMu.Lock()
	defer l.dayMu.Unlock()
	now := l.now()
	day, err := l.dayForLocked(ctx, now)
	if err != nil {
		return Report{}, fmt.Errorf("close day: %w", err)
	}
	r, err := l.report(ctx, "Z", day)
	if err != nil {
		return Report{}, fmt.Errorf("close day %s: %w", day, err)
	}
	r.ClosedBy = manager
	err = l.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(z_number), 0) + 1 FROM day_closes").Scan(&r.ZNumber); err != nil {
			return err
		}
		js, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO day_closes(business_day, z_number, report, closed_by, closed_at) VALUES(?, ?, ?, ?, ?)",
			day, r.ZNumber, string(js), manager, now); err != nil {
			return err
		}
		if _, err := l.enqueue(ctx, tx, "report", "", day); err != nil {
			return err
		}
		return l.auditTx(ctx, tx, "z_report", manager, manager, "", fmt.Sprintf("Z%04d %s net %d", r.ZNumber, day, r.Net))
	})
	if err != nil {
		return Report{}, fmt.Errorf("close day %s: %w", day, err)
	}
	l.closedDay = day
	return r, nil
}

// dayFor is the business day a business event at t belongs to: the
// store-local date of t, or the day after the last closed one if that
// date was already closed by a Z report.
func (l *Ledger) dayFor(ctx context.Context, t time.Time) (string, error) {
	l.dayMu.Lock()
	defer l.dayMu.Unlock()
	return l.dayForLocked(ctx, t)
}

func (l *Ledger) dayForLocked(ctx context.Context, t time.Time) (string, error) {
	if !l.dayKnown {
		var d sql.NullString
		if err := l.db.Read.QueryRowContext(ctx, "SELECT MAX(business_day) FROM day_closes").Scan(&d); err != nil {
			return "", fmt.Errorf("business day: %w", err)
		}
		l.closedDay, l.dayKnown = d.String, true
	}
	day := l.businessDay(t)
	if l.closedDay != "" && day <= l.closedDay {
		c, err := time.Parse(time.DateOnly, l.closedDay)
		if err != nil {
			return "", fmt.Errorf("business day: closed day %q: %w", l.closedDay, err)
		}
		day = c.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	return day, nil
}

func (l *Ledger) report(ctx context.Context, kind, day string) (Report, error) {
	r := Report{Kind: kind, BusinessDay: day, At: l.now(), Currency: l.cfg.Currency, Tenders: map[string]int64{}}
	q := l.db.Read
	err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(subtotal), 0), COALESCE(SUM(discount), 0), COALESCE(SUM(tax), 0), COALESCE(SUM(total), 0), COALESCE(SUM(change_due), 0)
		FROM sales WHERE business_day = ? AND state IN ('completed', 'voided')`, day).Scan(&r.Sales, &r.Gross, &r.Discounts, &r.Tax, &r.Net, &r.Change)
	if err != nil {
		return r, err
	}
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(total), 0) FROM sales WHERE business_day = ? AND state = 'voided'", day).Scan(&r.Voids, &r.VoidTotal); err != nil {
		return r, err
	}
	if err := q.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(total), 0) FROM returns WHERE business_day = ?", day).Scan(&r.Returns, &r.ReturnTotal); err != nil {
		return r, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(r.amount), 0) FROM coupon_redemptions r JOIN sales s ON s.id = r.sale_id WHERE s.business_day = ?`, day).Scan(&r.Coupons); err != nil {
		return r, err
	}
	rows, err := q.QueryContext(ctx, `SELECT t.kind, SUM(t.amount) FROM sale_tenders t JOIN sales s ON s.id = t.sale_id
		WHERE s.business_day = ? AND s.state IN ('completed', 'voided') GROUP BY t.kind`, day)
	if err != nil {
		return r, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return r, err
		}
		r.Tenders[k] = v
	}
	r.Net -= r.VoidTotal + r.ReturnTotal
	if id, err := l.openShiftID(ctx); err == nil {
		r.CashExpected, _ = expectedCash(ctx, q, id)
	}
	return r, rows.Err()
}
