package wire

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){1,3}$`)

// Event types a terminal writes to its outbox. HQ projects the ones it knows
// and stores every valid event, known or not, so a newer agent's events are
// kept for a newer HQ.
const (
	EventSaleCompleted   = "sale.completed"   // SaleCompleted
	EventSaleVoided      = "sale.voided"      // SaleVoided
	EventReturnCompleted = "return.completed" // ReturnCompleted
	EventCouponRedeemed  = "coupon.redeemed"  // CouponRedeemed
	EventShiftOpened     = "shift.opened"     // ShiftEvent
	EventShiftClosed     = "shift.closed"     // ShiftEvent
	EventCashMovement    = "cash.movement"    // CashMovement (paid in / out, no-sale)
	EventStockLevel      = "stock.level"      // StockLevel
	EventShelfAlert      = "shelf.alert"      // ShelfAlert
	EventDeviceStatus    = "device.status"    // DeviceStatus
	EventAuditOverride   = "audit.override"   // AuditOverride
	EventPickupFulfilled = "pickup.fulfilled" // PickupFulfilled
	EventPointsRedeemed  = "points.redeemed"  // PointsRedeemed
)

// SaleLine is one line of a completed sale. Qty is thousandths (1000 = one
// each, 532 = 0.532 kg); money is minor units.
type SaleLine struct {
	Line      int    `json:"line"`
	SKU       string `json:"sku"`
	Name      string `json:"name,omitempty"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unit_price"`
	Discount  int64  `json:"discount"`
	Tax       int64  `json:"tax"`
	Total     int64  `json:"total"`
	// OnHand is the store's stock of SKU right after this sale, return or
	// void (thousandths), so HQ's inventory needs no stock.level per line.
	OnHand *int64 `json:"on_hand,omitempty"`
}

// Tender is one payment of a sale or refund of a return.
type Tender struct {
	Kind   string `json:"kind"` // cash, card, wallet, points, online
	Amount int64  `json:"amount"`
	Ref    string `json:"ref,omitempty"`
}

// CouponUse is a coupon applied to a sale.
type CouponUse struct {
	CouponID string `json:"coupon_id"`
	Amount   int64  `json:"amount"`
}

// SaleCompleted is the payload of sale.completed.
type SaleCompleted struct {
	SaleID       string      `json:"sale_id"`
	Receipt      string      `json:"receipt"`
	BusinessDay  string      `json:"business_day"` // YYYY-MM-DD in the store's zone
	CompletedAt  time.Time   `json:"completed_at"`
	Cashier      string      `json:"cashier,omitempty"`
	Member       string      `json:"member,omitempty"`
	Currency     string      `json:"currency"`
	Subtotal     int64       `json:"subtotal"`
	Discount     int64       `json:"discount"`
	Tax          int64       `json:"tax"`
	Total        int64       `json:"total"`
	Lines        []SaleLine  `json:"lines"`
	Tenders      []Tender    `json:"tenders"`
	Coupons      []CouponUse `json:"coupons,omitempty"`
	PointsEarned int64       `json:"points_earned,omitempty"`
	PointsSpent  int64       `json:"points_spent,omitempty"`
	// PointsPending says the store did not know Member when it sold (it
	// earned nothing there): HQ works the points out by its own rule and
	// attaches them to the member.
	PointsPending bool `json:"points_pending,omitempty"`
}

// SaleVoided is the payload of sale.voided.
type SaleVoided struct {
	SaleID      string     `json:"sale_id"`
	Receipt     string     `json:"receipt"`
	BusinessDay string     `json:"business_day"`
	VoidedAt    time.Time  `json:"voided_at"`
	Manager     string     `json:"manager"`
	Reason      string     `json:"reason,omitempty"`
	Total       int64      `json:"total"`
	Lines       []SaleLine `json:"lines"`
}

// ReturnCompleted is the payload of return.completed. OrigReceipt is empty for
// a blind return; Channel is "store" or "online" (a purchase made online
// returned in the store, refund owed by the online channel; OrderID names
// the online order).
type ReturnCompleted struct {
	ReturnID    string     `json:"return_id"`
	Receipt     string     `json:"receipt"`
	OrigSaleID  string     `json:"orig_sale_id,omitempty"`
	OrigReceipt string     `json:"orig_receipt,omitempty"`
	Channel     string     `json:"channel"`
	OrderID     string     `json:"order_id,omitempty"`
	BusinessDay string     `json:"business_day"`
	ReturnedAt  time.Time  `json:"returned_at"`
	Cashier     string     `json:"cashier,omitempty"`
	Manager     string     `json:"manager,omitempty"`
	Total       int64      `json:"total"`
	Lines       []SaleLine `json:"lines"`
	Refunds     []Tender   `json:"refunds"`
}

// CouponRedeemed is the payload of coupon.redeemed.
type CouponRedeemed struct {
	CouponID   string    `json:"coupon_id"`
	KeyID      string    `json:"key_id"`
	SaleID     string    `json:"sale_id"`
	Receipt    string    `json:"receipt"`
	Amount     int64     `json:"amount"`
	Member     string    `json:"member,omitempty"`
	RedeemedAt time.Time `json:"redeemed_at"`
	// BusinessDay is the sale's business day in the store's zone (HQ's
	// daily coupon report); older agents leave it out and HQ falls back
	// to the UTC date of RedeemedAt.
	BusinessDay string `json:"business_day,omitempty"`
}

// ShiftEvent is the payload of shift.opened and shift.closed.
type ShiftEvent struct {
	ShiftID     string    `json:"shift_id"`
	Cashier     string    `json:"cashier"`
	BusinessDay string    `json:"business_day"`
	At          time.Time `json:"at"`
	Float       int64     `json:"float"`
	Expected    int64     `json:"expected,omitempty"`
	Counted     int64     `json:"counted,omitempty"`
	OverShort   int64     `json:"over_short,omitempty"`
	Sales       int64     `json:"sales,omitempty"`
}

// CashMovement is the payload of cash.movement.
type CashMovement struct {
	ShiftID string    `json:"shift_id"`
	Kind    string    `json:"kind"` // paid_in, paid_out, no_sale
	Amount  int64     `json:"amount"`
	Reason  string    `json:"reason,omitempty"`
	User    string    `json:"user"`
	At      time.Time `json:"at"`
}

// StockLevel is the payload of stock.level: on-hand after a movement.
type StockLevel struct {
	SKU    string    `json:"sku"`
	OnHand int64     `json:"on_hand"` // thousandths
	Delta  int64     `json:"delta"`
	Reason string    `json:"reason"` // sale, return, void, pickup, shelf, seed; delivery, transfer_in, count, damage, transfer_out, correction (agent.ChangeStock)
	At     time.Time `json:"at"`
}

// ShelfAlert is the payload of shelf.alert.
type ShelfAlert struct {
	Kind   string    `json:"kind"` // low_stock, low_stock_cleared, shrink, ambiguous, sensor_offline, sensor_online
	Shelf  string    `json:"shelf"`
	Slot   string    `json:"slot,omitempty"`
	SKU    string    `json:"sku,omitempty"`
	Count  int64     `json:"count,omitempty"`
	Grams  int64     `json:"grams,omitempty"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// DeviceStatus is the payload of device.status.
type DeviceStatus struct {
	Device string    `json:"device"`
	Kind   string    `json:"kind"` // scanner, printer, shelf
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// AuditOverride is the payload of audit.override: every manager override.
type AuditOverride struct {
	Action  string    `json:"action"` // price_override, void_line, void_sale, refund, blind_return, no_sale, coupon_budget, points_cap
	User    string    `json:"user"`
	Manager string    `json:"manager"`
	SaleID  string    `json:"sale_id,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	At      time.Time `json:"at"`
}

// PickupFulfilled is the payload of pickup.fulfilled: one hand-over of an
// online order at the store. An order may be handed over in parts; each
// part is one event with the quantities handed in it.
//
// Final says nothing is left to hand over (every line handed in full or
// recorded missing); Complete says every ordered quantity was handed
// (substitutes count) and nothing is missing, over all the order's
// hand-overs.
type PickupFulfilled struct {
	OrderID    string       `json:"order_id"`
	Code       string       `json:"code"`
	Lines      []PickupLine `json:"lines"`
	Complete   bool         `json:"complete"`
	Final      bool         `json:"final,omitempty"`
	HandoverID string       `json:"handover_id,omitempty"`
	Cashier    string       `json:"cashier"`
	HandedAt   time.Time    `json:"handed_at"`
}

// PickupLine is one line of a pickup order (Qty ordered, thousandths) or
// of a hand-over (Handed now, of SKU or of Substitute when set). Missing
// marks the rest of the line as not going to be handed over.
type PickupLine struct {
	SKU        string `json:"sku"`
	Qty        int64  `json:"qty"`
	Handed     int64  `json:"handed"`
	Substitute string `json:"substitute,omitempty"`
	Missing    bool   `json:"missing,omitempty"`
}

// PointsRedeemed is the payload of points.redeemed.
type PointsRedeemed struct {
	Member  string    `json:"member"`
	SaleID  string    `json:"sale_id"`
	Points  int64     `json:"points"`
	Value   int64     `json:"value"`
	Offline bool      `json:"offline"`
	At      time.Time `json:"at"`
}

// DecodePayload strictly decodes an event payload into v (unknown fields
// refused, by the rules of the envelopes: see decode), for HQ's
// projections.
func DecodePayload(raw json.RawMessage, v any) error {
	if err := jsonv2.Unmarshal(raw, v, strict); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return nil
}

// ValidatePayload checks the payload of a known event type against its
// schema: it decodes strictly and checks the fields HQ's projections rely
// on, and keeps the decoded struct (see Event.Parsed). Unknown types pass
// (forward compatibility).
func ValidatePayload(e *Event) error {
	switch e.Type {
	case EventSaleCompleted:
		p := new(SaleCompleted)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if p.SaleID == "" || p.Receipt == "" || len(p.Lines) == 0 {
			return invalid("payload", "sale needs sale_id, receipt and lines")
		}
		if _, err := time.Parse(time.DateOnly, p.BusinessDay); err != nil {
			return invalid("payload.business_day", "not YYYY-MM-DD")
		}
		if p.PointsEarned < 0 || p.PointsSpent < 0 {
			return invalid("payload.points", "negative points")
		}
		if (p.PointsSpent > 0 || p.PointsEarned > 0 || p.PointsPending) && p.Member == "" {
			return invalid("payload.member", "points without a member")
		}
		if len(p.Member) > MaxMemberIDBytes {
			return invalid("payload.member", "longer than %d bytes", MaxMemberIDBytes)
		}
		e.parsed = p
	case EventCouponRedeemed:
		p := new(CouponRedeemed)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if p.CouponID == "" || p.SaleID == "" {
			return invalid("payload", "coupon redemption needs coupon_id and sale_id")
		}
		if p.BusinessDay != "" {
			if _, err := time.Parse(time.DateOnly, p.BusinessDay); err != nil {
				return invalid("payload.business_day", "not YYYY-MM-DD")
			}
		}
		e.parsed = p
	case EventSaleVoided:
		p := new(SaleVoided)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		e.parsed = p
	case EventReturnCompleted:
		p := new(ReturnCompleted)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if len(p.OrderID) > 64 {
			return invalid("payload.order_id", "longer than 64 bytes")
		}
		e.parsed = p
	case EventStockLevel:
		p := new(StockLevel)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if p.SKU == "" {
			return invalid("payload.sku", "missing")
		}
		e.parsed = p
	case EventPickupFulfilled:
		p := new(PickupFulfilled)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if err := p.validate(); err != nil {
			return err
		}
		e.parsed = p
	case EventPointsRedeemed:
		p := new(PointsRedeemed)
		if err := DecodePayload(e.Payload, p); err != nil {
			return err
		}
		if p.Member == "" || p.Points <= 0 || p.Value < 0 {
			return invalid("payload", "points redemption needs a member and positive points")
		}
		e.parsed = p
	}
	return nil
}

// MaxMemberIDBytes bounds a member id (or the phone a cashier typed).
const MaxMemberIDBytes = 64

// MaxPickupLines bounds the lines of a pickup order or hand-over.
const MaxPickupLines = 200

func (p *PickupFulfilled) validate() error {
	if p.OrderID == "" || len(p.OrderID) > 64 {
		return invalid("payload.order_id", "missing or longer than 64 bytes")
	}
	if len(p.Lines) == 0 || len(p.Lines) > MaxPickupLines {
		return invalid("payload.lines", "a hand-over has 1..%d lines", MaxPickupLines)
	}
	for i, l := range p.Lines {
		if l.SKU == "" || l.Qty < 0 || l.Handed < 0 {
			return invalid(fmt.Sprintf("payload.lines[%d]", i), "needs a sku and non-negative qty and handed")
		}
	}
	if err := checkTime("payload.handed_at", p.HandedAt); err != nil {
		return err
	}
	if p.Complete && !p.Final {
		return invalid("payload.final", "a complete hand-over is final")
	}
	return nil
}

// Payload returns e's payload as T, reusing what ValidatePayload decoded
// and decoding strictly otherwise.
func Payload[T any](e *Event) (T, error) {
	if p, ok := e.parsed.(*T); ok {
		return *p, nil
	}
	var v T
	err := DecodePayload(e.Payload, &v)
	return v, err
}
