package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/edgepos/edgepos/sync/wire"
)

// ApplyCoupon verifies an HQ-signed coupon offline (signature by key id,
// validity window, currency, store) and applies it to a cart; minimum spend
// and eligible items are checked against the basket. Single use on this
// terminal is enforced when the sale completes. manager, if not empty, is
// a manager who approved going past the offline coupon budget.
func (l *Ledger) ApplyCoupon(ctx context.Context, saleID, token, manager string) (*Sale, error) {
	token = strings.TrimSpace(token)
	keys, err := l.couponKeys(ctx)
	if err != nil {
		return nil, err
	}
	c, err := wire.VerifyCoupon(token, keys, l.now())
	switch {
	case errors.Is(err, wire.ErrUnknownKey):
		return nil, fmt.Errorf("%w: %v", ErrCouponUnknownKey, err)
	case errors.Is(err, wire.ErrExpired), errors.Is(err, wire.ErrNotYet):
		return nil, fmt.Errorf("%w: %v", ErrCouponExpired, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrCouponSignature, err)
	}
	if !strings.EqualFold(c.Currency, l.cfg.Currency) {
		return nil, fmt.Errorf("%w: %s, store sells in %s", ErrCouponCurrency, c.Currency, l.cfg.Currency)
	}
	if len(c.Stores) > 0 && !contains(c.Stores, l.cfg.Store) {
		return nil, ErrCouponStore
	}
	if err := l.checkCouponState(ctx, c.ID); err != nil {
		return nil, err
	}
	capV, err := l.CouponOfflineCap(ctx)
	if err != nil {
		return nil, err
	}
	var cashier string
	s, err := l.edit(saleID, func(s *Sale) error {
		for _, ac := range s.Coupons {
			if ac.CouponID == c.ID {
				return fmt.Errorf("%w: already on this sale", ErrCouponUsed)
			}
		}
		s.Coupons = append(s.Coupons, AppliedCoupon{CouponID: c.ID, KeyID: c.KeyID, Token: token, Coupon: c, Manager: manager})
		l.recompute(s)
		ac := s.Coupons[len(s.Coupons)-1]
		if ac.Problem != "" {
			if strings.HasPrefix(ac.Problem, ErrCouponMinSpend.Error()) {
				return fmt.Errorf("%w (%s)", ErrCouponMinSpend, ac.Problem)
			}
			return ErrCouponNotEligible
		}
		if capV > 0 && manager == "" {
			pending, err := l.unconfirmedCouponValue(ctx)
			if err != nil {
				return err
			}
			if pending+ac.Amount > capV {
				return fmt.Errorf("%w: coupons worth %d are not yet confirmed by HQ; this one (%d) would pass the offline budget of %d",
					ErrNeedsManager, pending, ac.Amount, capV)
			}
		}
		cashier = s.Cashier
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply coupon: %w", err)
	}
	if manager != "" {
		if err := l.Audit(ctx, "coupon_budget", cashier, manager, saleID, "coupon "+c.ID); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RemoveCoupon takes a coupon off a cart.
func (l *Ledger) RemoveCoupon(saleID, couponID string) (*Sale, error) {
	return l.edit(saleID, func(s *Sale) error {
		for i, ac := range s.Coupons {
			if ac.CouponID == couponID {
				s.Coupons = append(s.Coupons[:i], s.Coupons[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("coupon %s: %w", couponID, ErrNotFound)
	})
}

// checkCouponState refuses a coupon redeemed here or revoked by HQ.
func (l *Ledger) checkCouponState(ctx context.Context, id string) error {
	var what string
	err := l.db.Read.QueryRowContext(ctx, `SELECT 'used' FROM coupon_redemptions WHERE coupon_id = ?
		UNION ALL SELECT 'revoked' FROM coupon_revocations WHERE coupon_id = ? LIMIT 1`, id, id).Scan(&what)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	case what == "used":
		return ErrCouponUsed
	default:
		return ErrCouponRevoked
	}
}

// unconfirmedCouponValue is the value of coupons redeemed here whose events
// HQ has not acknowledged yet: the store's offline coupon risk.
func (l *Ledger) unconfirmedCouponValue(ctx context.Context) (int64, error) {
	var v int64
	err := l.db.Read.QueryRowContext(ctx, `SELECT COALESCE(SUM(r.amount), 0) FROM coupon_redemptions r
		JOIN outbox o ON o.seq = r.outbox_seq WHERE o.acked = 0`).Scan(&v)
	return v, err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
