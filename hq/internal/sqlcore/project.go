package sqlcore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

type dayKey struct{ store, day string }

type dayAgg struct {
	count, gross, tax, voidCount, voided, returnCount, returned int64
}

func linesTax(ls []wire.SaleLine) int64 {
	var t int64
	for _, l := range ls {
		t += l.Tax
	}
	return t
}

// project updates the projections for newly stored events, inside the
// ingest transaction, and returns the change-feed entries it appended
// (members' balances, pickup orders' state). Payloads were validated
// (wire.ValidatePayload) before they got here; a type HQ does not project
// is only stored.
//
// Sales per day and stock per SKU are summed over the batch in Go and
// written with one statement per day and per SKU: a batch of 500 two-line
// sales is a handful of upserts, not a thousand.
func (c *Core) project(ctx context.Context, tx Tx, store, terminal string, evs []*wire.Event, now time.Time) ([]hq.FeedEntry, error) {
	days := map[dayKey]*dayAgg{}
	agg := func(day string) *dayAgg {
		k := dayKey{store, day}
		if days[k] == nil {
			days[k] = &dayAgg{}
		}
		return days[k]
	}
	stock := stockAggs{res: c.d.TimeResolution}
	coupons := map[string]bool{}
	var retail []retailOp
	for _, e := range evs {
		switch e.Type {
		case wire.EventSaleCompleted:
			p, err := wire.Payload[wire.SaleCompleted](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			if p.Member != "" && (p.PointsEarned > 0 || p.PointsSpent > 0 || p.PointsPending) {
				retail = append(retail, retailOp{e: e, sale: &p})
			}
			a := agg(p.BusinessDay)
			a.count++
			a.gross += p.Total
			a.tax += p.Tax
			stock.lines(p.Lines, -1, p.CompletedAt, e.At)
		case wire.EventSaleVoided:
			p, err := wire.Payload[wire.SaleVoided](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			stock.lines(p.Lines, +1, p.VoidedAt, e.At)
			retail = append(retail, retailOp{e: e, void: &p})
			a := agg(p.BusinessDay)
			a.voidCount++
			a.voided += p.Total
			a.tax -= linesTax(p.Lines)
		case wire.EventReturnCompleted:
			p, err := wire.Payload[wire.ReturnCompleted](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			stock.lines(p.Lines, +1, p.ReturnedAt, e.At)
			if p.Channel == "online" {
				// Bought online: the online channel owes the refund and the
				// store's sales never counted it; only its stock moves.
				retail = append(retail, retailOp{e: e, refund: &p})
				continue
			}
			if p.OrigSaleID != "" {
				// Against a store sale: it may move the sale's points.
				retail = append(retail, retailOp{e: e, ret: &p})
			}
			a := agg(p.BusinessDay)
			a.returnCount++
			a.returned += p.Total
			a.tax -= linesTax(p.Lines)
		case wire.EventStockLevel:
			p, err := wire.Payload[wire.StockLevel](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			at := p.At
			if at.IsZero() {
				at = e.At
			}
			stock.add(p.SKU, p.Delta, &p.OnHand, at)
		case wire.EventCouponRedeemed:
			p, err := wire.Payload[wire.CouponRedeemed](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			at := p.RedeemedAt
			if at.IsZero() {
				at = e.At
			}
			day := p.BusinessDay
			if day == "" {
				day = at.UTC().Format(time.DateOnly) // an agent older than the field
			}
			_, err = tx.Exec(ctx, `INSERT INTO coupon_redemptions(event_id, coupon_id, store, terminal, receipt, sale_id, amount, redeemed_at, status, reason, business_day)
				VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?) ON CONFLICT DO NOTHING`,
				e.ID, p.CouponID, store, terminal, p.Receipt, p.SaleID, p.Amount, at.UTC(), hq.RedemptionWinner, day)
			if err != nil {
				return nil, fmt.Errorf("project redemption seq %d: %w", e.Seq, err)
			}
			coupons[p.CouponID] = true
		case wire.EventPickupFulfilled:
			p, err := wire.Payload[wire.PickupFulfilled](e)
			if err != nil {
				return nil, fmt.Errorf("project seq %d: %w", e.Seq, err)
			}
			retail = append(retail, retailOp{e: e, handover: &p})
		}
	}
	if err := stock.write(ctx, tx, store); err != nil {
		return nil, err
	}
	keys := make([]dayKey, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b dayKey) int { return cmp.Compare(a.day, b.day) })
	for _, k := range keys {
		a := days[k]
		_, err := tx.Exec(ctx, `INSERT INTO sales_daily(store, business_day, sales_count, gross, tax, void_count, voided, return_count, returned)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(store, business_day) DO UPDATE SET
			sales_count = sales_daily.sales_count + excluded.sales_count,
			gross = sales_daily.gross + excluded.gross,
			tax = sales_daily.tax + excluded.tax,
			void_count = sales_daily.void_count + excluded.void_count,
			voided = sales_daily.voided + excluded.voided,
			return_count = sales_daily.return_count + excluded.return_count,
			returned = sales_daily.returned + excluded.returned`,
			k.store, k.day, a.count, a.gross, a.tax, a.voidCount, a.voided, a.returnCount, a.returned)
		if err != nil {
			return nil, fmt.Errorf("project sales %s %s: %w", k.store, k.day, err)
		}
	}
	// Before the coupons: the feed lock comes before coupon locks, as in
	// RevokeCoupon.
	feed, err := c.projectRetail(ctx, tx, store, terminal, retail, now)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(coupons))
	for id := range coupons {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a fixed lock order: no deadlock between ingest processes
	for _, id := range ids {
		if err := c.settleCoupon(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	return feed, nil
}

// settleCoupon recomputes which redemption of coupon id wins: the earliest
// by redemption time (ties: store, terminal, event id) among those not at
// or after a revocation or the coupon's expiry. Recomputing on each change handles a later-arriving
// redemption with an earlier time: the winner flips.
func (c *Core) settleCoupon(ctx context.Context, tx Tx, id string) error {
	if err := c.lock(ctx, tx, "coupon:"+id); err != nil {
		return fmt.Errorf("lock coupon %s: %w", id, err)
	}
	var revoked, expires sql.NullTime
	err := tx.QueryRow(ctx, "SELECT revoked_at, expires FROM coupons WHERE id = ?", id).Scan(&revoked, &expires)
	if err != nil && !isNoRows(err) {
		return fmt.Errorf("read coupon %s: %w", id, err)
	}
	reds, err := redemptions(ctx, tx, id)
	if err != nil {
		return err
	}
	winner := ""
	for _, r := range reds {
		status, reason := hq.RedemptionConflict, hq.ConflictDouble
		switch {
		case revoked.Valid && !r.RedeemedAt.Before(revoked.Time):
			reason = hq.ConflictRevoked
		case expires.Valid && !r.RedeemedAt.Before(expires.Time):
			// The store's clock said it was still valid; HQ's ledger says
			// it had expired.
			reason = hq.ConflictExpired
		case winner == "":
			winner = r.EventID
			status, reason = hq.RedemptionWinner, ""
		}
		if r.Status == status && r.Reason == reason {
			continue
		}
		if _, err := tx.Exec(ctx, "UPDATE coupon_redemptions SET status = ?, reason = ? WHERE event_id = ?", status, reason, r.EventID); err != nil {
			return fmt.Errorf("settle coupon %s: %w", id, err)
		}
	}
	return nil
}

func redemptions(ctx context.Context, q Querier, couponID string) ([]hq.Redemption, error) {
	var out []hq.Redemption
	err := scanEach(ctx, q, func(r Rows) error {
		x, err := scanRedemption(r)
		if err != nil {
			return err
		}
		out = append(out, x)
		return nil
	}, "SELECT "+redemptionCols+" FROM coupon_redemptions WHERE coupon_id = ?", couponID)
	if err != nil {
		return nil, fmt.Errorf("read redemptions of %s: %w", couponID, err)
	}
	sortRedemptions(out)
	return out, nil
}

const redemptionCols = "event_id, coupon_id, store, terminal, receipt, sale_id, amount, redeemed_at, status, reason"

func scanRedemption(r Rows) (hq.Redemption, error) {
	var x hq.Redemption
	err := r.Scan(&x.EventID, &x.CouponID, &x.Store, &x.Terminal, &x.Receipt, &x.SaleID, &x.Amount, &x.RedeemedAt, &x.Status, &x.Reason)
	x.RedeemedAt = x.RedeemedAt.UTC()
	return x, err
}

// sortRedemptions orders by time in Go, not SQL, so both databases agree
// to the nanosecond.
func sortRedemptions(rs []hq.Redemption) {
	slices.SortFunc(rs, func(a, b hq.Redemption) int {
		return cmp.Or(a.RedeemedAt.Compare(b.RedeemedAt), cmp.Compare(a.Store, b.Store), cmp.Compare(a.Terminal, b.Terminal), cmp.Compare(a.EventID, b.EventID))
	})
}

// stockAgg is the net effect of one batch's movements on one SKU's
// inventory row. Applied one by one, each movement adds its delta, and one
// that reports a level replaces the stored level when its time is not
// before the stored one (so an out-of-order delivery does not roll the
// level back, and of equal times the later movement wins). Folding them
// keeps exactly that: the deltas sum, and the level that would be left is
// the last of the movements with the latest time, which then meets the
// stored row the same way.
type stockAgg struct {
	sku          string
	delta        int64
	levels       bool      // some movement reported a level
	firstIsLevel bool      // the first movement did
	onHand       int64     // the winning level …
	at, atKey    time.Time // … its time, and its time at the database's resolution
}

// stockAggs folds a batch's movements per SKU, in the order they apply.
type stockAggs struct {
	res   time.Duration // the database's time resolution (Dialect.TimeResolution)
	order []*stockAgg
	bySKU map[string]*stockAgg
}

func (s *stockAggs) key(t time.Time) time.Time {
	if s.res > 0 {
		return t.Truncate(s.res)
	}
	return t
}

// add folds one movement: delta, and the level it reports (nil: none) as
// of at.
func (s *stockAggs) add(sku string, delta int64, level *int64, at time.Time) {
	if s.bySKU == nil {
		s.bySKU = map[string]*stockAgg{}
	}
	a := s.bySKU[sku]
	if a == nil {
		a = &stockAgg{sku: sku, firstIsLevel: level != nil}
		s.bySKU[sku] = a
		s.order = append(s.order, a)
	}
	a.delta += delta
	if level == nil {
		return
	}
	at = at.UTC()
	if k := s.key(at); !a.levels || !k.Before(a.atKey) {
		a.levels, a.onHand, a.at, a.atKey = true, *level, at, k
	}
}

// lines folds the stock a sale, void or return reported with each line
// (SaleLine.OnHand) and the movement sign × qty; a line without OnHand
// moves only the deltas.
func (s *stockAggs) lines(lines []wire.SaleLine, sign int64, at, fallback time.Time) {
	if at.IsZero() {
		at = fallback
	}
	for _, l := range lines {
		if l.SKU == "" {
			continue
		}
		s.add(l.SKU, sign*l.Qty, l.OnHand, at)
	}
}

// write applies each SKU's net movement with one upsert, in SKU order (a
// fixed lock order between concurrent ingest transactions on PostgreSQL).
func (s *stockAggs) write(ctx context.Context, tx Tx, store string) error {
	slices.SortFunc(s.order, func(a, b *stockAgg) int { return cmp.Compare(a.sku, b.sku) })
	for _, a := range s.order {
		var err error
		if !a.levels {
			_, err = tx.Exec(ctx, `INSERT INTO inventory(store, sku, on_hand, deltas, reported_at) VALUES(?, ?, 0, ?, ?)
				ON CONFLICT(store, sku) DO UPDATE SET deltas = inventory.deltas + excluded.deltas`,
				store, a.sku, a.delta, time.Time{}.UTC())
		} else {
			// A new row takes the winning level, unless the first movement
			// reported none: one by one, that one creates the row at the
			// zero time and only a level not before it replaces it.
			insLevel, insAt := a.onHand, a.at
			if !a.firstIsLevel && a.atKey.Before(s.key(time.Time{})) {
				insLevel, insAt = 0, time.Time{}.UTC()
			}
			_, err = tx.Exec(ctx, `INSERT INTO inventory(store, sku, on_hand, deltas, reported_at) VALUES(?, ?, ?, ?, ?)
				ON CONFLICT(store, sku) DO UPDATE SET
				deltas = inventory.deltas + excluded.deltas,
				on_hand = CASE WHEN ? >= inventory.reported_at THEN ? ELSE inventory.on_hand END,
				reported_at = CASE WHEN ? >= inventory.reported_at THEN ? ELSE inventory.reported_at END`,
				store, a.sku, insLevel, a.delta, insAt, a.at, a.onHand, a.at, a.at)
		}
		if err != nil {
			return fmt.Errorf("project stock %s: %w", a.sku, err)
		}
	}
	return nil
}
