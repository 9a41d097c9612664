package wire

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
