package sqlcore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// Returns and points (docs/new-retail.md, "Returns and points").
//
// A return against a member's store sale takes back the share of the
// points the sale earned, and gives back the share of the points it spent,
// that the value returned is of the sale's total: wire.PointsReturned over
// every return of the sale HQ has settled so far, less what they already
// moved. HQ trusts no figure of the store's for it: what the sale earned
// and spent is read from HQ's own ledger, the sale's total from the sale's
// stored event, and the value of the returns from points_returns (each
// return's total, capped at the sale's total by PointsReturned). The one
// thing read from how the store refunded is whether it refunded part as
// points: a return refunded all in money gives no spent points back.
//
// A return HQ stores before its sale (batches of a terminal can arrive out
// of order) waits in points_returns unsettled; salePoints settles it when
// the sale's points are recorded. A sale that moved no points never gets
// there: its returns move nothing.

// returnPoints records a return against a store sale and settles the
// points of that sale's unsettled returns.
func (c *Core) returnPoints(ctx context.Context, tx Tx, st *retailState, e *wire.Event, p *wire.ReturnCompleted) error {
	at := p.ReturnedAt
	if at.IsZero() {
		at = e.At
	}
	// Only whether the store refunded part as points is read from the
	// upload, and only to give back less: an agent older than returns
	// moving points refunded all of it in money, so giving the spent
	// points back too would refund that part twice.
	asPoints := slices.ContainsFunc(p.Refunds, func(t wire.Tender) bool { return t.Kind == "points" })
	if _, err := tx.Exec(ctx, `INSERT INTO points_returns(event_id, store, terminal, sale_id, receipt, amount, returned_at, points_refund)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		e.ID, st.store, st.terminal, p.OrigSaleID, p.Receipt, max(p.Total, 0), at.UTC(), asPoints); err != nil {
		return fmt.Errorf("record return %s of sale %s: %w", p.Receipt, p.OrigSaleID, err)
	}
	return c.settleReturnPoints(ctx, tx, st, p.OrigSaleID)
}

// salePointSums is what one member's ledger holds for a sale.
type salePointSums struct {
	earned, spent int64 // both positive
	taken, given  int64 // what returns took back of earned and gave back of spent
	voided        bool
	saleKey       string // an earn or spend entry's key: "<sale event id>:earn"
}

// settleReturnPoints moves the points of the unsettled returns of sale
// saleID at st.store, oldest first, once HQ has the sale's points.
func (c *Core) settleReturnPoints(ctx context.Context, tx Tx, st *retailState, saleID string) error {
	type pending struct {
		eventID, terminal, receipt string
		amount                     int64
		at                         time.Time
		asPoints                   bool // the store refunded part as points
	}
	var todo []pending
	var settled int64 // the value of the returns already settled
	err := scanEach(ctx, tx, func(r Rows) error {
		var p pending
		var done bool
		if err := r.Scan(&p.eventID, &p.terminal, &p.receipt, &p.amount, &p.at, &p.asPoints, &done); err != nil {
			return err
		}
		if done {
			settled += p.amount
		} else {
			todo = append(todo, p)
		}
		return nil
	}, "SELECT event_id, terminal, receipt, amount, returned_at, points_refund, settled FROM points_returns WHERE store = ? AND sale_id = ? ORDER BY returned_at, event_id",
		st.store, saleID)
	if err != nil {
		return fmt.Errorf("read returns of sale %s: %w", saleID, err)
	}
	if len(todo) == 0 {
		return nil
	}
	sums := map[string]*salePointSums{}
	err = scanEach(ctx, tx, func(r Rows) error {
		var member, kind, key string
		var points int64
		if err := r.Scan(&member, &kind, &key, &points); err != nil {
			return err
		}
		s := sums[member]
		if s == nil {
			s = &salePointSums{}
			sums[member] = s
		}
		switch kind {
		case hq.PointsEarn:
			s.earned += points
			s.saleKey = key
		case hq.PointsSpend:
			s.spent -= points
			s.saleKey = key
		case hq.PointsReturnEarn:
			s.taken -= points
		case hq.PointsReturnSpend:
			s.given += points
		case hq.PointsVoid:
			s.voided = true
		}
		return nil
	}, "SELECT member, kind, key, points FROM points_ledger WHERE sale_id = ? AND store = ? AND kind IN (?, ?, ?, ?, ?)",
		saleID, st.store, hq.PointsEarn, hq.PointsSpend, hq.PointsReturnEarn, hq.PointsReturnSpend, hq.PointsVoid)
	if err != nil {
		return fmt.Errorf("read points of sale %s: %w", saleID, err)
	}
	members := make([]string, 0, len(sums))
	var saleKey string
	for m, s := range sums {
		if s.saleKey != "" {
			members = append(members, m)
			saleKey = s.saleKey
		}
	}
	if len(members) == 0 {
		return nil // the sale is not here yet, or it moved no points
	}
	slices.Sort(members)
	value, err := saleValue(ctx, tx, saleKey)
	if err != nil {
		return fmt.Errorf("sale %s: %w", saleID, err)
	}
	for _, r := range todo {
		settled += r.amount
		for _, m := range members {
			s := sums[m]
			if s.voided {
				continue // the void gave back what the sale moved
			}
			take := wire.PointsReturned(s.earned, settled, value) - s.taken
			give := wire.PointsReturned(s.spent, settled, value) - s.given
			if !r.asPoints {
				give = 0 // refunded in money (see returnPoints); a later return's share still counts it
			}
			if take <= 0 && give <= 0 {
				continue
			}
			if err := c.lock(ctx, tx, "member:"+m); err != nil {
				return err
			}
			// Giving back first: the balance the take-back is checked
			// against includes the points the return refunds.
			if give > 0 {
				if err := c.applyMove(ctx, tx, st, pointsMove{key: r.eventID + ":return-spend:" + m, code: m, kind: hq.PointsReturnSpend, saleID: saleID,
					receipt: r.receipt, points: give, reason: "returned: spent points given back", at: r.at, terminal: r.terminal}); err != nil {
					return err
				}
				s.given += give
			}
			if take > 0 {
				if err := c.applyMove(ctx, tx, st, pointsMove{key: r.eventID + ":return-earn:" + m, code: m, kind: hq.PointsReturnEarn, saleID: saleID,
					receipt: r.receipt, points: -take, reason: "returned: earned points taken back", at: r.at, terminal: r.terminal}); err != nil {
					return err
				}
				s.taken += take
			}
		}
		if _, err := tx.Exec(ctx, "UPDATE points_returns SET settled = TRUE WHERE event_id = ?", r.eventID); err != nil {
			return fmt.Errorf("settle return %s: %w", r.receipt, err)
		}
	}
	return nil
}

// saleValue is the total of the sale whose earn or spend ledger entry has
// key ("<event id>:earn"), read from its stored sale.completed event: the
// value its returns are a share of.
func saleValue(ctx context.Context, q Querier, key string) (int64, error) {
	id, _, _ := strings.Cut(key, ":")
	var payload []byte
	if err := q.QueryRow(ctx, "SELECT payload FROM events WHERE id = ?", id).Scan(&payload); err != nil {
		return 0, fmt.Errorf("read sale event %s: %w", id, err)
	}
	var p wire.SaleCompleted
	if err := wire.DecodePayload(payload, &p); err != nil {
		return 0, fmt.Errorf("read sale event %s: %w", id, err)
	}
	return p.Total, nil
}
