package sqlcore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// IssueCoupons implements hq.Store.
func (c *Core) IssueCoupons(ctx context.Context, cs []hq.IssuedCoupon, changes []hq.ChangeInput) ([]hq.FeedEntry, error) {
	var out []hq.FeedEntry
	err := c.inTx(ctx, "issue coupons", func(tx Tx) error {
		for _, ic := range cs {
			raw, err := json.Marshal(ic.Coupon)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO coupons(id, key_id, kind, value, currency, member, expires, coupon, token, issued_at, revoke_reason)
				VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
				ic.Coupon.ID, ic.Coupon.KeyID, ic.Coupon.Kind, ic.Coupon.Value, ic.Coupon.Currency, ic.Coupon.Member,
				ic.Coupon.Expires.UTC(), raw, ic.Token, ic.IssuedAt.UTC())
			if err != nil {
				return fmt.Errorf("record coupon %s: %w", ic.Coupon.ID, err)
			}
		}
		var err error
		out, err = c.appendChanges(ctx, tx, changes)
		return err
	})
	return out, err
}

// RevokeCoupon implements hq.Store.
func (c *Core) RevokeCoupon(ctx context.Context, id, reason string, at time.Time) (hq.FeedEntry, error) {
	var out hq.FeedEntry
	at = at.UTC()
	err := c.inTx(ctx, "revoke coupon "+id, func(tx Tx) error {
		n, err := tx.Exec(ctx, "UPDATE coupons SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL", at, reason, id)
		if err != nil {
			return err
		}
		if n == 0 {
			var revoked sql.NullTime
			if err := tx.QueryRow(ctx, "SELECT revoked_at FROM coupons WHERE id = ?", id).Scan(&revoked); err != nil {
				if isNoRows(err) {
					return hq.ErrNotFound
				}
				return err
			}
			at = revoked.Time.UTC() // already revoked: publish the same revocation again
		}
		data, err := json.Marshal(wire.RevocationChange{CouponID: id, Reason: reason, RevokedAt: at})
		if err != nil {
			return err
		}
		es, err := c.appendChanges(ctx, tx, []hq.ChangeInput{{Store: hq.AllStores, Kind: wire.ChangeRevocation, Key: id, Op: wire.OpUpsert, Data: data, At: at}})
		if err != nil {
			return err
		}
		out = es[0]
		return c.settleCoupon(ctx, tx, id)
	})
	return out, err
}

// Coupon implements hq.Store.
func (c *Core) Coupon(ctx context.Context, id string) (hq.CouponInfo, error) {
	info := hq.CouponInfo{ID: id}
	var raw []byte
	var revoked sql.NullTime
	err := c.db.QueryRow(ctx, "SELECT coupon, issued_at, revoked_at, revoke_reason FROM coupons WHERE id = ?", id).
		Scan(&raw, &info.IssuedAt, &revoked, &info.RevokeReason)
	switch {
	case isNoRows(err):
	case err != nil:
		return info, fmt.Errorf("read coupon %s: %w", id, err)
	default:
		info.Issued = true
		info.IssuedAt = info.IssuedAt.UTC()
		info.RevokedAt = fromNull(revoked)
		var cp wire.Coupon
		if err := json.Unmarshal(raw, &cp); err != nil {
			return info, fmt.Errorf("read coupon %s: %w", id, err)
		}
		info.Coupon = &cp
	}
	reds, err := redemptions(ctx, c.db, id)
	if err != nil {
		return info, err
	}
	if !info.Issued && len(reds) == 0 {
		return info, fmt.Errorf("coupon %s: %w", id, hq.ErrNotFound)
	}
	info.Redemptions = reds
	if info.Redemptions == nil {
		info.Redemptions = []hq.Redemption{}
	}
	return info, nil
}

// CouponConflicts implements hq.Store.
func (c *Core) CouponConflicts(ctx context.Context) ([]hq.CouponConflict, error) {
	byCoupon := map[string][]hq.Redemption{}
	var order []string
	err := scanEach(ctx, c.db, func(r Rows) error {
		x, err := scanRedemption(r)
		if err != nil {
			return err
		}
		if byCoupon[x.CouponID] == nil {
			order = append(order, x.CouponID)
		}
		byCoupon[x.CouponID] = append(byCoupon[x.CouponID], x)
		return nil
	}, "SELECT "+redemptionCols+" FROM coupon_redemptions WHERE coupon_id IN (SELECT coupon_id FROM coupon_redemptions WHERE status = ?) ORDER BY coupon_id",
		hq.RedemptionConflict)
	if err != nil {
		return nil, fmt.Errorf("read coupon conflicts: %w", err)
	}
	out := []hq.CouponConflict{}
	for _, id := range order {
		rs := byCoupon[id]
		sortRedemptions(rs)
		var winner *hq.Redemption
		for i := range rs {
			if rs[i].Status == hq.RedemptionWinner {
				w := rs[i]
				winner = &w
			}
		}
		for _, r := range rs {
			if r.Status == hq.RedemptionConflict {
				out = append(out, hq.CouponConflict{CouponID: id, Reason: r.Reason, Loser: r, Winner: winner})
			}
		}
	}
	return out, nil
}
