package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidatePayloadNewRetailEvents(t *testing.T) {
	enc := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	line := []SaleLine{{Line: 1, SKU: "A", Qty: 1000, UnitPrice: 100, Total: 100}}
	sale := SaleCompleted{SaleID: "s1", Receipt: "T1-000001", BusinessDay: "2026-11-23", CompletedAt: t0, Currency: "CNY", Total: 100, Lines: line}
	withPoints := sale
	withPoints.Member, withPoints.PointsEarned, withPoints.PointsSpent = "M1", 1, 50
	pending := sale
	pending.Member, pending.PointsPending = "13800000000", true
	hand := PickupFulfilled{OrderID: "o1", Code: "P-1234", Lines: []PickupLine{{SKU: "A", Qty: 2000, Handed: 1000, Missing: true}},
		Final: true, HandoverID: "h1", Cashier: "1001", HandedAt: t0}
	good := map[string]Event{
		"sale with points":       {Type: EventSaleCompleted, Payload: enc(withPoints)},
		"sale points pending":    {Type: EventSaleCompleted, Payload: enc(pending)},
		"redemption with day":    {Type: EventCouponRedeemed, Payload: enc(CouponRedeemed{CouponID: "c", SaleID: "s", BusinessDay: "2026-11-23", RedeemedAt: t0})},
		"redemption without day": {Type: EventCouponRedeemed, Payload: enc(CouponRedeemed{CouponID: "c", SaleID: "s", RedeemedAt: t0})},
		"pickup hand-over":       {Type: EventPickupFulfilled, Payload: enc(hand)},
		"online return":          {Type: EventReturnCompleted, Payload: enc(ReturnCompleted{ReturnID: "r", Receipt: "T1-R00001", Channel: "online", OrderID: "o1", BusinessDay: "2026-11-23", ReturnedAt: t0, Lines: line})},
		"points redeemed":        {Type: EventPointsRedeemed, Payload: enc(PointsRedeemed{Member: "M1", SaleID: "s", Points: 10, Value: 10, At: t0})},
	}
	for name, e := range good {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, ValidatePayload(&e))
			require.NotNil(t, e.Parsed())
		})
	}
	p, err := Payload[PickupFulfilled](&Event{Type: EventPickupFulfilled, Payload: enc(hand)})
	require.NoError(t, err)
	require.Equal(t, hand, p)

	noMember := sale
	noMember.PointsSpent = 10
	negative := withPoints
	negative.PointsEarned = -1
	longMember := sale
	longMember.Member = string(make([]byte, MaxMemberIDBytes+1))
	noLines := hand
	noLines.Lines = nil
	noOrder := hand
	noOrder.OrderID = ""
	negHanded := hand
	negHanded.Lines = []PickupLine{{SKU: "A", Qty: 1000, Handed: -1}}
	noTime := hand
	noTime.HandedAt = t0.AddDate(-100, 0, 0)
	completeNotFinal := hand
	completeNotFinal.Complete, completeNotFinal.Final = true, false
	bad := map[string]Event{
		"points without member":       {Type: EventSaleCompleted, Payload: enc(noMember)},
		"negative points":             {Type: EventSaleCompleted, Payload: enc(negative)},
		"member too long":             {Type: EventSaleCompleted, Payload: enc(longMember)},
		"redemption bad day":          {Type: EventCouponRedeemed, Payload: enc(CouponRedeemed{CouponID: "c", SaleID: "s", BusinessDay: "23.11.2026"})},
		"hand-over without lines":     {Type: EventPickupFulfilled, Payload: enc(noLines)},
		"hand-over without order":     {Type: EventPickupFulfilled, Payload: enc(noOrder)},
		"hand-over negative handed":   {Type: EventPickupFulfilled, Payload: enc(negHanded)},
		"hand-over time out of range": {Type: EventPickupFulfilled, Payload: enc(noTime)},
		"complete but not final":      {Type: EventPickupFulfilled, Payload: enc(completeNotFinal)},
		"points redeemed no member":   {Type: EventPointsRedeemed, Payload: enc(PointsRedeemed{Points: 1})},
		"points redeemed zero":        {Type: EventPointsRedeemed, Payload: enc(PointsRedeemed{Member: "M1"})},
		"return order id too long":    {Type: EventReturnCompleted, Payload: enc(ReturnCompleted{Channel: "online", OrderID: string(make([]byte, 65))})},
	}
	for name, e := range bad {
		t.Run(name, func(t *testing.T) {
			err := ValidatePayload(&e)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestQRTexts(t *testing.T) {
	id, ok := ParseMemberQR(MemberQR("M-0001"))
	require.True(t, ok)
	require.Equal(t, "M-0001", id)
	for _, s := range []string{"", "M-0001", "EPM1:", "EPM1:a b", "EP1.xyz"} {
		_, ok := ParseMemberQR(s)
		require.False(t, ok, s)
	}
	st, code, ok := ParsePickupQR(" " + PickupQR("S002", "P-1234") + "\r\n")
	require.True(t, ok)
	require.Equal(t, "S002", st)
	require.Equal(t, "P-1234", code)
	for _, s := range []string{"P-1234", "EPP1:S002", "EPP1:S/2:P-1234", "EPP1:S002:ab", "EPP1:S002:P 1234"} {
		_, _, ok := ParsePickupQR(s)
		require.False(t, ok, s)
	}
	require.True(t, ValidPickupCode("8841-2210"))
	require.False(t, ValidPickupCode("abc"))
	require.False(t, ValidPickupCode("取货码1234"))
}

func TestPointsFor(t *testing.T) {
	require.Equal(t, 2, CurrencyDigits("CNY"))
	require.Equal(t, 0, CurrencyDigits("JPY"))
	require.Equal(t, 3, CurrencyDigits("KWD"))
	require.EqualValues(t, 12, PointsFor(1299, 2, 1))
	require.EqualValues(t, 36, PointsFor(1299, 2, 3))
	require.EqualValues(t, 1299, PointsFor(1299, 0, 1))
	require.EqualValues(t, 0, PointsFor(99, 2, 1))
	require.EqualValues(t, 0, PointsFor(-500, 2, 1))
	require.EqualValues(t, 0, PointsFor(500, 2, 0))
}

func TestPointsReturned(t *testing.T) {
	require.EqualValues(t, 0, PointsReturned(12, 0, 1299))
	require.EqualValues(t, 12, PointsReturned(12, 1299, 1299), "everything back: exactly what it moved")
	require.EqualValues(t, 12, PointsReturned(12, 5000, 1299), "never more than it moved")
	require.EqualValues(t, 4, PointsReturned(12, 500, 1299), "12 × 500 / 1299 = 4.6, down")
	require.EqualValues(t, 0, PointsReturned(0, 500, 1299))
	require.EqualValues(t, 0, PointsReturned(12, 500, 0))
	require.EqualValues(t, int64(1)<<40-1, PointsReturned(1<<40, 1<<40-1, 1<<40), "no overflow: 2^80 inside")

	// Cumulative: three returns of a sale, each moving the target so far
	// less what the earlier ones moved, end exactly at the total.
	var moved int64
	returned := int64(0)
	for _, part := range []int64{433, 433, 433} {
		returned += part
		d := PointsReturned(12, returned, 1299) - moved
		require.GreaterOrEqual(t, d, int64(0))
		moved += d
		require.LessOrEqual(t, moved, int64(12))
	}
	require.EqualValues(t, 12, moved)
}
