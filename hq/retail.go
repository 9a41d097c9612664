package hq

import (
	"context"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// RetailStore is the part of Store behind the new-retail flows: members and
// HQ's points ledger, pickup orders and their hand-overs, the coupon
// ledger and daily reconciliation report, and refunds the online channel
// owes. Events feed it through IngestBatch; these methods are the API's.
type RetailStore interface {
	// PutMembers creates or updates members' profiles and offline caps for
	// target (a store id or AllStores) and appends each member's feed entry
	// with its balance, in one transaction. A new member's Points is its
	// opening balance, and ledger entries stores recorded under its id or
	// phone before HQ knew it are attached to it. An existing member's
	// Points must be 0 (points move only through the ledger): ErrConflict.
	PutMembers(ctx context.Context, target string, ms []wire.MemberChange, at time.Time) ([]FeedEntry, error)
	// Member returns a member with its balance, its newest ledger entries
	// (at most ledgerLimit) and its conflicts; ErrNotFound if HQ does not
	// know it.
	Member(ctx context.Context, id string, ledgerLimit int) (MemberInfo, error)
	// AdjustPoints moves a member's balance by delta for the online
	// channel (an online purchase earning, an online redemption spending)
	// and appends the member's feed entry. ref makes it idempotent: the
	// same ref again returns the first entry and no feed entry. A delta
	// that would take the balance below zero is ErrConflict (HQ is online:
	// unlike a store offline it can refuse). ErrNotFound for an unknown
	// member.
	AdjustPoints(ctx context.Context, id string, delta int64, ref, reason string, at time.Time) (PointsEntry, []FeedEntry, error)
	// PointsConflicts lists spending HQ recorded beyond a member's balance
	// and movements for members HQ does not know, oldest first.
	PointsConflicts(ctx context.Context) ([]PointsConflict, error)

	// CreatePickupOrder records a pickup order for store and appends its
	// feed entry in one transaction. ErrConflict if its id or code is taken.
	CreatePickupOrder(ctx context.Context, store string, o wire.PickupOrderChange, at time.Time) (FeedEntry, error)
	// CancelPickupOrder cancels an open order and appends the cancellation
	// to store's feed. ErrNotFound if store has no such order, ErrConflict
	// if it is not open (handed over, in part or in full, or cancelled).
	CancelPickupOrder(ctx context.Context, store, id string, at time.Time) (FeedEntry, error)
	// PickupOrder returns one of store's orders with its hand-overs
	// (ErrNotFound if none).
	PickupOrder(ctx context.Context, store, id string) (PickupInfo, error)
	// PickupOrders lists store's orders, newest first; status "" is all.
	PickupOrders(ctx context.Context, store, status string, limit int) ([]PickupInfo, error)
	// PickupConflicts lists hand-overs HQ could not accept: of an order
	// cancelled at HQ, unknown, of another store, or beyond what was
	// ordered.
	PickupConflicts(ctx context.Context) ([]PickupHandover, error)

	// CouponReport is the reconciliation of store's coupon redemptions on
	// one business day: every redemption with its outcome and the coupon's
	// state in HQ's ledger.
	CouponReport(ctx context.Context, store, day string, now time.Time) (CouponReport, error)
	// CouponLedger lists issued coupons, newest first, with their state at
	// now; state "" is all (see CouponIssued…CouponConflicted).
	CouponLedger(ctx context.Context, state string, now time.Time, limit int) ([]CouponState, error)

	// OnlineRefunds lists refunds owed by the online channel for online
	// purchases returned in a store; empty store or day means all.
	OnlineRefunds(ctx context.Context, store, day string) ([]OnlineRefund, error)
}

// Points ledger entry kinds.
const (
	PointsOpening = "opening" // a new member's balance
	PointsEarn    = "earn"    // a store sale earned it
	PointsSpend   = "spend"   // a store sale paid with it
	PointsVoid    = "void"    // a voided sale gave back what it moved
	PointsAdjust  = "adjust"  // the online channel (AdjustPoints)
	// PointsReturnEarn: a return against a store sale took back its share
	// (by value returned) of the points the sale earned.
	PointsReturnEarn = "return-earn"
	// PointsReturnSpend: a return against a store sale gave back its share
	// of the points the sale spent (the points part is refunded as points).
	PointsReturnSpend = "return-spend"
)

// Points conflict reasons.
const (
	// ConflictOverdraft: a store spent points the member's balance at HQ
	// did not cover (two stores offline spent the same points, each
	// within its offline cap), or a return took back earned points the
	// member had already spent. HQ keeps the movement: the balance goes
	// negative and is visible here.
	ConflictOverdraft = "overdraft"
	// ConflictUnknownMember: a store recorded points for a member code HQ
	// does not know; they wait, unattached, until the member is created.
	ConflictUnknownMember = "unknown member"
)

// MemberInfo is a member as HQ holds it. Balance is the truth; stores hold
// the balance last sent down the feed.
type MemberInfo struct {
	ID         string           `json:"id"`
	Phone      string           `json:"phone,omitempty"`
	Name       string           `json:"name,omitempty"`
	Tier       string           `json:"tier,omitempty"`
	OfflineCap int64            `json:"offline_cap"`
	Target     string           `json:"target"`
	Balance    int64            `json:"balance"`
	QR         string           `json:"qr"`
	CreatedAt  time.Time        `json:"created_at"`
	UpdatedAt  time.Time        `json:"updated_at"`
	Ledger     []PointsEntry    `json:"ledger"`
	Conflicts  []PointsConflict `json:"conflicts"`
}

// PointsEntry is one movement of a member's points.
type PointsEntry struct {
	ID       int64     `json:"id"`
	Key      string    `json:"key"`
	Member   string    `json:"member"`
	Attached bool      `json:"attached"`
	Kind     string    `json:"kind"`
	Points   int64     `json:"points"`  // signed
	Balance  int64     `json:"balance"` // after it
	Store    string    `json:"store,omitempty"`
	Terminal string    `json:"terminal,omitempty"`
	SaleID   string    `json:"sale_id,omitempty"`
	Receipt  string    `json:"receipt,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// PointsConflict is spending beyond the balance, or points waiting for a
// member HQ does not know.
type PointsConflict struct {
	Key        string    `json:"key"`
	Member     string    `json:"member"`
	Reason     string    `json:"reason"`
	Points     int64     `json:"points"`
	Balance    int64     `json:"balance"` // after the entry
	Store      string    `json:"store"`
	Terminal   string    `json:"terminal"`
	SaleID     string    `json:"sale_id"`
	Receipt    string    `json:"receipt"`
	At         time.Time `json:"at"`
	DetectedAt time.Time `json:"detected_at"`
}

// Pickup order statuses at HQ.
const (
	PickupOpen      = "open"
	PickupCancelled = "cancelled"
	PickupPartial   = "partially_handed_over"
	PickupFulfilled = "fulfilled"
)

// Hand-over statuses and conflict reasons.
const (
	HandoverOK            = "ok"
	HandoverConflict      = "conflict"
	ConflictCancelled     = "cancelled at HQ"
	ConflictUnknownOrder  = "unknown order"
	ConflictOtherStore    = "order of another store"
	ConflictOverHanded    = "more than ordered"
	ConflictAlreadyHanded = "already handed over"
)

// PickupInfo is a pickup order as HQ holds it. Order.Lines carry the
// quantities handed so far (accepted hand-overs only).
type PickupInfo struct {
	Store       string                 `json:"store"`
	Status      string                 `json:"status"`
	Order       wire.PickupOrderChange `json:"order"`
	QR          string                 `json:"qr"`
	CreatedAt   time.Time              `json:"created_at"`
	CancelledAt time.Time              `json:"cancelled_at,omitzero"`
	HandedAt    time.Time              `json:"handed_at,omitzero"`
	UpdatedAt   time.Time              `json:"updated_at"`
	Handovers   []PickupHandover       `json:"handovers"`
}

// PickupHandover is one pickup.fulfilled event as HQ projected it.
type PickupHandover struct {
	EventID    string            `json:"event_id"`
	OrderID    string            `json:"order_id"`
	Store      string            `json:"store"`
	Terminal   string            `json:"terminal"`
	Code       string            `json:"code"`
	HandoverID string            `json:"handover_id,omitempty"`
	Cashier    string            `json:"cashier"`
	HandedAt   time.Time         `json:"handed_at"`
	Final      bool              `json:"final"`
	Complete   bool              `json:"complete"`
	Lines      []wire.PickupLine `json:"lines"`
	Status     string            `json:"status"`
	Reason     string            `json:"reason,omitempty"`
	// CancelledAt is when HQ cancelled the order, for a conflict of that
	// kind: before HandedAt the store handed over what HQ had cancelled;
	// after, HQ cancelled what the store had already handed over.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
}

// Coupon states in HQ's ledger.
const (
	CouponIssued     = "issued"     // outstanding: valid, not redeemed
	CouponRedeemed   = "redeemed"   // one redemption won
	CouponRevoked    = "revoked"    // revoked, no redemption before it
	CouponExpired    = "expired"    // expired unredeemed
	CouponConflicted = "conflict"   // (filter only) has a redemption that lost
	CouponUnknown    = "not_issued" // redeemed but never issued by this HQ
)

// ConflictExpired is a redemption HQ received with a time at or after the
// coupon's expiry (a store clock off, say).
const ConflictExpired = "expired"

// CouponState is one issued coupon in the ledger.
type CouponState struct {
	ID        string      `json:"id"`
	Member    string      `json:"member,omitempty"`
	Kind      string      `json:"kind"`
	Value     int64       `json:"value"`
	Currency  string      `json:"currency"`
	IssuedAt  time.Time   `json:"issued_at"`
	Expires   time.Time   `json:"expires"`
	RevokedAt time.Time   `json:"revoked_at,omitzero"`
	State     string      `json:"state"`
	Winner    *Redemption `json:"redemption,omitempty"`
	Conflicts int         `json:"conflicts"`
}

// CouponReport reconciles one store's coupon redemptions on one business
// day. Money is minor units.
type CouponReport struct {
	Store          string            `json:"store"`
	BusinessDay    string            `json:"business_day"`
	Redeemed       int               `json:"redeemed"`        // redemptions that stand
	RedeemedAmount int64             `json:"redeemed_amount"` // their discount
	Conflicts      int               `json:"conflicts"`
	ConflictAmount int64             `json:"conflict_amount"` // discount given on redemptions that lost
	Rows           []CouponReportRow `json:"rows"`
}

// CouponReportRow is one redemption in a CouponReport. Winner* name the
// redemption that won when this one lost.
type CouponReportRow struct {
	BusinessDay    string    `json:"business_day"`
	Store          string    `json:"store"`
	Terminal       string    `json:"terminal"`
	CouponID       string    `json:"coupon_id"`
	Receipt        string    `json:"receipt"`
	SaleID         string    `json:"sale_id"`
	RedeemedAt     time.Time `json:"redeemed_at"`
	Amount         int64     `json:"amount"`
	Status         string    `json:"status"`
	Reason         string    `json:"reason,omitempty"`
	CouponState    string    `json:"coupon_state"`
	Member         string    `json:"member,omitempty"`
	IssuedAt       time.Time `json:"issued_at,omitzero"`
	Expires        time.Time `json:"expires,omitzero"`
	RevokedAt      time.Time `json:"revoked_at,omitzero"`
	WinnerStore    string    `json:"winner_store,omitempty"`
	WinnerTerminal string    `json:"winner_terminal,omitempty"`
	WinnerReceipt  string    `json:"winner_receipt,omitempty"`
	WinnerAt       time.Time `json:"winner_at,omitzero"`
}

// Online refund statuses.
const (
	RefundOwed       = "owed"         // the online channel owes it
	RefundUnverified = "unverified"   // the order is not one HQ knows: check it
	RefundExceeds    = "exceeds_paid" // refunds for the order pass what it paid
)

// OnlineRefund is a refund the online channel owes for an online purchase
// returned in a store (the goods went back into that store's stock).
type OnlineRefund struct {
	EventID     string          `json:"event_id"`
	Store       string          `json:"store"`
	Terminal    string          `json:"terminal"`
	ReturnID    string          `json:"return_id"`
	Receipt     string          `json:"receipt"`
	OrderID     string          `json:"order_id"`
	BusinessDay string          `json:"business_day"`
	Amount      int64           `json:"amount"`
	Lines       []wire.SaleLine `json:"lines"`
	ReturnedAt  time.Time       `json:"returned_at"`
	Status      string          `json:"status"`
	Reason      string          `json:"reason,omitempty"`
}
