package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgepos/edgepos/sync/wire"
)

// Loyalty points at the store.
//
// HQ's points ledger is the truth. A member's row here holds the balance
// HQ last sent down the change feed (members.points) and the offline cap
// HQ set; it is replaced whenever HQ sends the member again, which HQ does
// after every sale event that moved the member's points. What this
// terminal spent or earned that HQ has not yet acknowledged is read from
// the sales whose sale.completed event is above the outbox's acked seq,
// and what its returns moved back from the returns whose return.completed
// event is: earned points a return took back count at once, as spending
// does; spent points it gave back are not spendable until HQ has
// confirmed them, as earnings are.
//
// What the cap prevents, and what it does not:
//   - On one terminal, points spent and not yet confirmed by HQ never
//     pass the member's offline cap (checked when the points are tendered
//     and again, under the ledger's lock, when the sale completes), and
//     never pass HQ's last balance less those unconfirmed spends.
//   - Earned points are not spendable until HQ has confirmed them.
//   - Two terminals or stores offline at once can each spend up to the cap
//     from the same balance: the cap bounds the loss per terminal, it does
//     not stop it. HQ applies every spend it receives (the goods left the
//     store) and records one that takes the balance below zero as an
//     "overdraft" conflict (GET /api/points/conflicts at HQ).
//   - Between HQ storing a sale and this terminal hearing both the ack and
//     the new balance, the terminal may count that spend twice (it holds
//     back more than needed, never less), or, if the new balance arrives
//     later than the ack, once too few for a moment.
//   - A cap of 0 means HQ set none: spending is bounded by the balance only.

// Points errors.
var (
	ErrPointsMember  = errors.New("points need a member this store knows")
	ErrPointsBalance = errors.New("member does not have that many points")
	ErrPointsCap     = errors.New("points spent before HQ confirms would pass the member's offline cap")
	ErrMemberCode    = errors.New("member code must be 1 to 64 characters without spaces")
)

// pointsRefPrefix marks a points tender's reference: "points:<n>" names
// the points behind the tender's amount.
const pointsRefPrefix = "points:"

// PointsRule is how a store's sales earn points and what a point pays; HQ
// sets it through the store_config change.
type PointsRule struct {
	PerUnit int64 `json:"points_per_unit"` // points per whole currency unit spent
	Value   int64 `json:"point_value"`     // minor units one point pays
}

// PointsRule returns the store's rule: one point per currency unit, a point
// paying one minor unit, where HQ has set nothing (HQ assumes the same).
func (l *Ledger) PointsRule(ctx context.Context) (PointsRule, error) {
	return pointsRule(ctx, l.db.Read)
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func pointsRule(ctx context.Context, q queryer) (PointsRule, error) {
	r := PointsRule{PerUnit: 1, Value: 1}
	rows, err := q.QueryContext(ctx, "SELECT key, value FROM store_settings WHERE key IN (?, ?)", settingPointsPerUnit, settingPointValue)
	if err != nil {
		return r, fmt.Errorf("points rule: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return r, fmt.Errorf("points rule: %w", err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return r, fmt.Errorf("points rule: stored %s %q is not a positive integer", k, v)
		}
		if k == settingPointsPerUnit {
			r.PerUnit = n
		} else {
			r.Value = n
		}
	}
	return r, rows.Err()
}

// pointsSpent reads the points a sale's tenders spend, and what they pay.
func pointsSpent(ts []Tender) (points, value int64) {
	for _, t := range ts {
		if t.Kind == TenderPoints {
			v, _ := strconv.ParseInt(strings.TrimPrefix(t.Ref, pointsRefPrefix), 10, 64)
			points += v
			value += t.Amount
		}
	}
	return points, value
}

// pendingPoints is what this terminal moved of a member's points that HQ
// has not acknowledged yet.
type pendingPoints struct {
	spent, earned int64 // by sales
	taken, given  int64 // by returns: earned points taken back, spent points given back
}

// unconfirmed sums what this terminal's sales to member spent and earned,
// and its returns took and gave back, that HQ has not acknowledged yet
// (their event is above the acked seq).
func (l *Ledger) unconfirmed(ctx context.Context, member string) (pendingPoints, error) {
	var p pendingPoints
	st, err := l.db.OutboxState(ctx)
	if err != nil {
		return p, fmt.Errorf("unconfirmed points: %w", err)
	}
	err = l.db.Read.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(SUM(points_spent), 0) FROM sales WHERE member = ?1 AND outbox_seq > ?2),
		(SELECT COALESCE(SUM(points_earned), 0) FROM sales WHERE member = ?1 AND outbox_seq > ?2),
		(SELECT COALESCE(SUM(points_taken), 0) FROM returns WHERE member = ?1 AND outbox_seq > ?2),
		(SELECT COALESCE(SUM(points_given), 0) FROM returns WHERE member = ?1 AND outbox_seq > ?2)`,
		member, st.AckedSeq).Scan(&p.spent, &p.earned, &p.taken, &p.given)
	if err != nil {
		return p, fmt.Errorf("unconfirmed points: %w", err)
	}
	return p, nil
}

// MemberPoints is a member's points as this terminal sees them.
type MemberPoints struct {
	Member
	// Balance is HQ's, as last sent (Member.Points).
	Balance int64 `json:"balance"`
	// UnconfirmedSpent and UnconfirmedEarned are this terminal's, not yet
	// acknowledged by HQ.
	UnconfirmedSpent  int64 `json:"unconfirmed_spent"`
	UnconfirmedEarned int64 `json:"unconfirmed_earned"`
	// UnconfirmedTakenBack and UnconfirmedGivenBack are what this
	// terminal's returns moved back, not yet acknowledged by HQ: earned
	// points taken back and spent points given back.
	UnconfirmedTakenBack int64 `json:"unconfirmed_taken_back"`
	UnconfirmedGivenBack int64 `json:"unconfirmed_given_back"`
	// Provisional is Balance − UnconfirmedSpent + UnconfirmedEarned −
	// UnconfirmedTakenBack + UnconfirmedGivenBack: what the receipt shows
	// until HQ sends the member again.
	Provisional int64 `json:"provisional"`
	// Spendable is what may be tendered now: the balance less unconfirmed
	// spending and taking back, within what the offline cap leaves.
	Spendable int64 `json:"spendable"`
	// CapLeft is what the offline cap leaves (-1 when HQ set no cap).
	CapLeft int64 `json:"cap_left"`
	// PointValue is what one point pays, in minor units.
	PointValue int64 `json:"point_value"`
}

// MemberPoints looks a member up (id, member QR or phone) with its points.
func (l *Ledger) MemberPoints(ctx context.Context, q string) (MemberPoints, error) {
	m, err := l.FindMember(ctx, q)
	if err != nil {
		return MemberPoints{}, err
	}
	rule, err := l.PointsRule(ctx)
	if err != nil {
		return MemberPoints{}, err
	}
	p, err := l.unconfirmed(ctx, m.ID)
	if err != nil {
		return MemberPoints{}, err
	}
	return memberPoints(m, p, rule), nil
}

func memberPoints(m Member, p pendingPoints, rule PointsRule) MemberPoints {
	mp := MemberPoints{Member: m, Balance: m.Points, UnconfirmedSpent: p.spent, UnconfirmedEarned: p.earned,
		UnconfirmedTakenBack: p.taken, UnconfirmedGivenBack: p.given,
		Provisional: m.Points - p.spent + p.earned - p.taken + p.given, CapLeft: -1, PointValue: rule.Value}
	mp.Spendable = max(m.Points-p.spent-p.taken, 0)
	if m.OfflineCap > 0 {
		// The cap bounds spending: a take-back is not spent here.
		mp.CapLeft = max(m.OfflineCap-p.spent, 0)
		mp.Spendable = min(mp.Spendable, mp.CapLeft)
	}
	return mp
}

// checkPoints is the points rule a cart must keep: spending needs a member
// the store knows, HQ's balance less this terminal's unconfirmed spending
// and taking back must cover it, and unconfirmed spending must stay within
// the offline cap.
func (l *Ledger) checkPoints(ctx context.Context, member string, points int64) error {
	if points == 0 {
		return nil
	}
	if member == "" {
		return fmt.Errorf("%w: attach the member first", ErrPointsMember)
	}
	m, err := l.FindMember(ctx, member)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s is not known here yet", ErrPointsMember, member)
	}
	if err != nil {
		return err
	}
	p, err := l.unconfirmed(ctx, m.ID)
	if err != nil {
		return err
	}
	spent := p.spent
	if spent+p.taken+points > m.Points {
		return fmt.Errorf("%w: HQ's balance %d, %d spent and %d taken back by returns here not yet confirmed, asked %d",
			ErrPointsBalance, m.Points, spent, p.taken, points)
	}
	if m.OfflineCap > 0 && spent+points > m.OfflineCap {
		return fmt.Errorf("%w: %d of %d already spent here before HQ confirmed, asked %d", ErrPointsCap, spent, m.OfflineCap, points)
	}
	return nil
}

// PayWithPoints pays part of a cart with the attached member's points (see
// the rules above). Points pay at the store's point value and never more
// than is due.
func (l *Ledger) PayWithPoints(ctx context.Context, saleID string, points int64) (*Sale, error) {
	if points <= 0 {
		return nil, fmt.Errorf("pay with points: %w", ErrBadAmount)
	}
	cur, err := l.GetSale(ctx, saleID)
	if err != nil {
		return nil, err
	}
	if cur.State != StateOpen {
		return nil, fmt.Errorf("pay with points: %w", ErrSaleState)
	}
	already, _ := pointsSpent(cur.Tenders)
	if err := l.checkPoints(ctx, cur.Member, already+points); err != nil {
		return nil, fmt.Errorf("pay with points: %w", err)
	}
	rule, err := l.PointsRule(ctx)
	if err != nil {
		return nil, err
	}
	return l.edit(saleID, func(s *Sale) error {
		if s.Member != cur.Member {
			return fmt.Errorf("pay with points: %w: the member changed", ErrSaleState)
		}
		if p, _ := pointsSpent(s.Tenders); p != already {
			return fmt.Errorf("pay with points: %w: points were tendered meanwhile", ErrSaleState)
		}
		value := points * rule.Value
		if value > s.Due {
			return fmt.Errorf("pay with points: %w: %d points pay %d, only %d is due", ErrBadAmount, points, value, s.Due)
		}
		s.Tenders = append(s.Tenders, Tender{Kind: TenderPoints, Amount: value, Ref: pointsRefPrefix + strconv.FormatInt(points, 10)})
		return nil
	})
}

// salePoints works out a completing sale's points inside its transaction:
// a member the store knows earns by the store's rule on what was not paid
// with points; one it does not know earns nothing here and the event says
// so (points_pending), for HQ to attach the points by its own rule.
func (l *Ledger) salePoints(ctx context.Context, tx *sql.Tx, s *Sale) (earned, spent int64, pending bool, err error) {
	if s.Member == "" {
		return 0, 0, false, nil
	}
	spent, byPoints := pointsSpent(s.Tenders)
	var known int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM members WHERE id = ?", s.Member).Scan(&known); err != nil {
		return 0, 0, false, err
	}
	if known == 0 {
		return 0, spent, true, nil
	}
	rule, err := pointsRule(ctx, tx)
	if err != nil {
		return 0, 0, false, err
	}
	return wire.PointsFor(s.Total-byPoints, wire.CurrencyDigits(l.cfg.Currency), rule.PerUnit), spent, false, nil
}

// normalizeMember turns what the cashier scanned or typed into a member
// code: a member QR gives its id; anything else is kept as typed (an id or
// a phone). The code must fit HQ's limit, or the sale event would be
// refused there.
func normalizeMember(q string) (string, error) {
	q = strings.TrimSpace(q)
	if id, ok := wire.ParseMemberQR(q); ok {
		return id, nil
	}
	if len(q) > wire.MaxMemberIDBytes || strings.ContainsAny(q, " \t\r\n") {
		return "", ErrMemberCode
	}
	return q, nil
}
