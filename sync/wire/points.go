package wire

import "math/bits"

// Loyalty points: the one rule both the store (provisionally) and HQ (for
// a sale whose member the store did not know) apply, so they agree.

// CurrencyDigits returns the minor-unit digits of an ISO 4217 currency:
// 0 for JPY, KRW and the like, 3 for BHD, KWD and the like, 2 otherwise.
func CurrencyDigits(code string) int {
	switch code {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// PointsFor returns the points a payment of amount minor units earns at
// perUnit points per whole currency unit, rounded down: 12.99 at one point
// per unit earns 12. The part of a sale paid with points earns nothing, so
// callers pass the total less the points tender.
func PointsFor(amount int64, digits int, perUnit int64) int64 {
	if amount <= 0 || perUnit <= 0 {
		return 0
	}
	unit := int64(1)
	for range digits {
		unit *= 10
	}
	return amount / unit * perUnit
}

// PointsReturned returns how much of the points a sale moved (moved: what
// it earned, or what it spent) all of its returns so far move back, when
// the goods returned so far are worth returned of the sale's value (both
// minor units): moved × returned / value, rounded down, and never more than
// moved. Both the store and HQ apply it cumulatively: a return moves
// PointsReturned over every return of the sale up to and including it,
// less what the earlier ones moved. Partial returns then never move more
// than the sale did, and returning everything (returned == value) moves
// exactly moved, however the returns were split.
func PointsReturned(moved, returned, value int64) int64 {
	if moved <= 0 || returned <= 0 || value <= 0 {
		return 0
	}
	if returned >= value {
		return moved
	}
	// 128-bit product: points × minor units can pass 2^63 on a large sale.
	hi, lo := bits.Mul64(uint64(moved), uint64(returned))
	q, _ := bits.Div64(hi, lo, uint64(value)) // hi < value: returned < value
	return int64(q)
}
