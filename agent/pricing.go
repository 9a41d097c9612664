package agent

import "fmt"

// The rounding rule, written down once:
//
//   - A line's gross is unit price × quantity, quantity in thousandths,
//     rounded half up to the minor unit per line (a price-embedded scale
//     code fixes the gross instead).
//   - Discounts (item, then sale, then coupons) are taken off lines; a
//     sale-wide amount is spread over lines in proportion to what they
//     still cost, rounding down, and the cents left over go to the lines
//     with the largest remainders, so the parts add up exactly.
//   - Tax is computed per line on what the line finally costs, rounded half
//     up: tax-inclusive stores extract it (total × r / (10000 + r)),
//     tax-exclusive stores add it (net × r / 10000).
//   - The sale's figures are the sums of its lines'.

// mulDivHalfUp returns a×b/c rounded half up, for a, b ≥ 0 and c > 0.
func mulDivHalfUp(a, b, c int64) int64 {
	return (a*b + c/2) / c
}

// DiscountKind says how a discount's Value reads.
type DiscountKind string

// Discount kinds.
const (
	DiscountAmount  DiscountKind = "amount"  // Value is minor units off
	DiscountPercent DiscountKind = "percent" // Value is basis points off (1000 = 10 %)
)

// Discount is an item or sale discount.
type Discount struct {
	Kind  DiscountKind `json:"kind"`
	Value int64        `json:"value"`
}

func (d Discount) validate() error {
	switch d.Kind {
	case DiscountAmount:
		if d.Value < 0 {
			return fmt.Errorf("%w: discount %d", ErrBadAmount, d.Value)
		}
	case DiscountPercent:
		if d.Value < 0 || d.Value > 10000 {
			return fmt.Errorf("%w: percent discount must be 0..10000 basis points", ErrBadAmount)
		}
	case "":
	default:
		return fmt.Errorf("%w: discount kind %q", ErrBadAmount, d.Kind)
	}
	return nil
}

// of returns the discount off base, never more than base.
func (d Discount) of(base int64) int64 {
	var off int64
	switch d.Kind {
	case DiscountAmount:
		off = d.Value
	case DiscountPercent:
		off = mulDivHalfUp(base, d.Value, 10000)
	}
	return min(max(off, 0), base)
}

// spread takes amount off the lines' current costs (cost[i]) in proportion
// to them, and returns each line's share; the shares sum to
// min(amount, Σcost). Lines with eligible[i] false get nothing.
func spread(amount int64, cost []int64, eligible []bool) []int64 {
	share := make([]int64, len(cost))
	var base int64
	for i, c := range cost {
		if eligible == nil || eligible[i] {
			base += c
		}
	}
	if amount <= 0 || base <= 0 {
		return share
	}
	amount = min(amount, base)
	rems := make([]int64, len(cost))
	var given int64
	for i, c := range cost {
		if eligible != nil && !eligible[i] {
			continue
		}
		share[i] = amount * c / base
		rems[i] = amount * c % base
		given += share[i]
	}
	for left := amount - given; left > 0; left-- {
		best := -1
		for i := range cost {
			if (eligible == nil || eligible[i]) && share[i] < cost[i] && (best < 0 || rems[i] > rems[best]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		share[best]++
		rems[best] = -1
	}
	return share
}

// lineTax is the tax in a line costing net (after discounts).
func lineTax(net, rateBP int64, inclusive bool) (tax, total int64) {
	if rateBP <= 0 || net <= 0 {
		return 0, net
	}
	if inclusive {
		return mulDivHalfUp(net, rateBP, 10000+rateBP), net
	}
	t := mulDivHalfUp(net, rateBP, 10000)
	return t, net + t
}
