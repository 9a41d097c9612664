package hq

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// Sentinel errors of the hq package and its stores.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDBMismatch means a batch names a database id other than the one HQ
	// recorded for its terminal, while HQ holds events for it: the terminal
	// must say hello (and be rebased) before it uploads.
	ErrDBMismatch = errors.New("db_id differs from the terminal's recorded database: send hello first")
	// ErrConflict means the request contradicts what HQ holds (a pickup
	// code in use, an order no longer open, points the balance lacks).
	ErrConflict = errors.New("conflict")
)

// Rejection reasons HQ puts in Ack.Rejected besides payload validation errors.
const (
	ReasonDuplicateID  = "duplicate id"
	ReasonDuplicateSeq = "duplicate seq"
)

// AllStores is the target of a change-feed entry meant for every store.
const AllStores = "*"

// Store is HQ's durable state: events, the projections derived from them,
// the fleet, the quarantine, issued coupons and the change feed. Every method
// is safe for concurrent use. Implementations: hq/sqlitestore, hq/pgstore;
// hq/storetest holds the behaviour suite both pass.
type Store interface {
	// IngestBatch stores b's events for b.Store/b.Terminal in one
	// transaction, together with the projections they update. Events whose
	// seq is in invalid (seq → reason) are not stored as events: they are
	// recorded as rejected (handled for contiguity) and quarantined. An event
	// already stored under the same (store, terminal, seq) and id is a no-op;
	// one whose id is stored under another key is rejected with
	// ReasonDuplicateID; one whose seq is stored with another id is rejected
	// with ReasonDuplicateSeq. The result's Rejected lists every event of b
	// that is rejected, including ones rejected by an earlier delivery.
	// Returns ErrDBMismatch (nothing stored) when b.DBID is not the database
	// recorded for the terminal and HQ holds events for it.
	IngestBatch(ctx context.Context, b *wire.Batch, invalid map[int64]string, now time.Time) (IngestResult, error)
	// Hello records a terminal's hello in the fleet and reconciles cursors:
	// a new DBID for a terminal HQ holds events for yields Rebase = the
	// highest seq handled, and the contiguous cursor moves to it.
	Hello(ctx context.Context, h *wire.Hello, now time.Time) (HelloResult, error)
	// SetStatus records a terminal's online/offline state as of at.
	SetStatus(ctx context.Context, store, terminal string, online bool, at time.Time) error
	// Quarantine records a message (or event) HQ refused.
	Quarantine(ctx context.Context, q QuarantineEntry) error
	// ListQuarantine returns the newest quarantine entries first, at most limit.
	ListQuarantine(ctx context.Context, limit int) ([]QuarantineEntry, error)

	// Fleet returns every known terminal, ordered by store and terminal.
	Fleet(ctx context.Context) ([]TerminalStatus, error)
	// Sales returns sales per store and business day; empty store or day
	// means all.
	Sales(ctx context.Context, store, day string) ([]SalesDay, error)
	// Inventory returns the stock projection of store (all stores when empty).
	Inventory(ctx context.Context, store string) ([]InventoryItem, error)

	// IssueCoupons records coupons as issued and appends changes (e.g. a
	// "coupon" entry for a member's coupon) in the same transaction.
	IssueCoupons(ctx context.Context, cs []IssuedCoupon, changes []ChangeInput) ([]FeedEntry, error)
	// RevokeCoupon marks coupon id revoked and appends its revocation to the
	// feed. Returns ErrNotFound if HQ never issued it. Redemptions at or
	// after at become conflicts with reason "revoked".
	RevokeCoupon(ctx context.Context, id, reason string, at time.Time) (FeedEntry, error)
	// Coupon returns an issued or redeemed coupon with its redemptions;
	// ErrNotFound if HQ knows neither.
	Coupon(ctx context.Context, id string) (CouponInfo, error)
	// CouponConflicts lists every redemption that lost: a second redemption
	// of a coupon (first by redemption time wins) or one after revocation.
	CouponConflicts(ctx context.Context) ([]CouponConflict, error)

	// AppendChanges gives each change the next feed version, in order, in
	// one transaction, and returns them as stored.
	AppendChanges(ctx context.Context, changes []ChangeInput) ([]FeedEntry, error)
	// FeedSince returns up to limit entries for store (its own and those for
	// AllStores) with version above after, in version order.
	FeedSince(ctx context.Context, store string, after int64, limit int) ([]wire.Change, error)
	// FeedLatest returns the highest version of store's feed (0 if empty).
	FeedLatest(ctx context.Context, store string) (int64, error)
	// FeedBefore returns the highest version of store's feed below version
	// (0 if none): the After of a message starting at version.
	FeedBefore(ctx context.Context, store string, version int64) (int64, error)
	// LatestChange returns the newest entry of kind and key for store (its
	// own or AllStores); ErrNotFound if none.
	LatestChange(ctx context.Context, store, kind, key string) (FeedEntry, error)
	// Events calls fn for every stored event of store (all terminals) whose
	// type is typ ("" for all), in (terminal, seq) order. Reconciliation
	// tools and the demo read HQ's ledger through it.
	Events(ctx context.Context, store, typ string, fn func(terminal string, e wire.Event) error) error
	// Stores returns every store id HQ has heard from, sorted.
	Stores(ctx context.Context) ([]string, error)

	// RetailStore: members and points, pickup orders, coupon reports and
	// online refunds (hq/retail.go).
	RetailStore

	// Close releases the database.
	Close(ctx context.Context) error
}

// IngestResult is what IngestBatch did.
type IngestResult struct {
	Through    int64            // highest contiguous seq handled for the terminal
	High       int64            // highest seq handled
	Stored     int              // events newly stored
	Duplicates int              // events already stored (same seq and id)
	Rejected   []wire.Rejection // events of the batch rejected (now or before)
	// Feed lists the change-feed entries the batch appended in its
	// transaction (members' new points balances, pickup orders' hand-over
	// state), for the caller to publish after commit.
	Feed []FeedEntry
}

// HelloResult is what Hello decided.
type HelloResult struct {
	Through     int64 // contiguous cursor after the hello
	Rebase      int64 // > 0: the terminal must continue its seq above it
	FeedVersion int64 // latest change-feed version for the store
	NewDB       bool  // the hello brought a database id HQ had not recorded
}

// QuarantineEntry is a refused message or event.
type QuarantineEntry struct {
	ID         int64     `json:"id"`
	ReceivedAt time.Time `json:"received_at"`
	Topic      string    `json:"topic"`
	Store      string    `json:"store,omitempty"`
	Terminal   string    `json:"terminal,omitempty"`
	Seq        int64     `json:"seq,omitempty"`
	EventID    string    `json:"event_id,omitempty"`
	Reason     string    `json:"reason"`
	Size       int       `json:"size"`          // bytes received
	Raw        []byte    `json:"raw,omitempty"` // capped at MaxQuarantineRaw
}

// MaxQuarantineRaw caps the bytes of a refused message HQ keeps.
const MaxQuarantineRaw = 64 << 10

// TerminalStatus is the fleet projection of one terminal.
type TerminalStatus struct {
	Store          string    `json:"store"`
	Terminal       string    `json:"terminal"`
	Online         bool      `json:"online"`
	StatusAt       time.Time `json:"status_at,omitzero"`
	LastSeen       time.Time `json:"last_seen,omitzero"`
	AgentVersion   string    `json:"agent_version,omitempty"`
	DBID           string    `json:"db_id,omitempty"`
	AckedSeq       int64     `json:"acked_seq"`
	HighSeq        int64     `json:"high_seq"`
	Backlog        int64     `json:"backlog"`
	OldestUnsynced time.Time `json:"oldest_unsynced,omitzero"`
	ClockSkewMS    int64     `json:"clock_skew_ms"` // terminal clock minus HQ clock at hello
	LastUpload     time.Time `json:"last_upload,omitzero"`
	FeedVersion    int64     `json:"feed_version"` // as the terminal last reported
}

// SalesDay is the sales projection of one store and business day. Money is
// minor units; Net = Gross - Voided - Returned.
type SalesDay struct {
	Store       string `json:"store"`
	BusinessDay string `json:"business_day"`
	Count       int64  `json:"count"`
	Gross       int64  `json:"gross"`
	Tax         int64  `json:"tax"` // net of voided and returned lines' tax
	VoidCount   int64  `json:"void_count"`
	Voided      int64  `json:"voided"`
	ReturnCount int64  `json:"return_count"`
	Returned    int64  `json:"returned"`
	Net         int64  `json:"net"`
}

// InventoryItem is the stock projection of one SKU in one store. OnHand is
// the level last reported (by report time), Deltas the sum of movements;
// quantities are thousandths.
type InventoryItem struct {
	Store      string    `json:"store"`
	SKU        string    `json:"sku"`
	OnHand     int64     `json:"on_hand"`
	Deltas     int64     `json:"deltas"`
	ReportedAt time.Time `json:"reported_at"`
}

// IssuedCoupon is a coupon HQ signed.
type IssuedCoupon struct {
	Coupon   wire.Coupon
	Token    string
	IssuedAt time.Time
}

// Redemption is one coupon.redeemed event as HQ projected it.
type Redemption struct {
	EventID    string    `json:"event_id"`
	CouponID   string    `json:"coupon_id"`
	Store      string    `json:"store"`
	Terminal   string    `json:"terminal"`
	Receipt    string    `json:"receipt"`
	SaleID     string    `json:"sale_id"`
	Amount     int64     `json:"amount"`
	RedeemedAt time.Time `json:"redeemed_at"`
	Status     string    `json:"status"`           // "redeemed" (the winner) or "conflict"
	Reason     string    `json:"reason,omitempty"` // for a conflict: "already redeemed" or "revoked"
}

// Redemption statuses and conflict reasons.
const (
	RedemptionWinner   = "redeemed"
	RedemptionConflict = "conflict"
	ConflictDouble     = "already redeemed"
	ConflictRevoked    = "revoked"
)

// CouponInfo is what HQ knows of one coupon.
type CouponInfo struct {
	ID           string       `json:"id"`
	Issued       bool         `json:"issued"`
	Coupon       *wire.Coupon `json:"coupon,omitempty"`
	IssuedAt     time.Time    `json:"issued_at,omitzero"`
	RevokedAt    time.Time    `json:"revoked_at,omitzero"`
	RevokeReason string       `json:"revoke_reason,omitempty"`
	Redemptions  []Redemption `json:"redemptions"`
}

// CouponConflict is a redemption that lost, with the winning one (nil when
// the coupon was revoked and no redemption won).
type CouponConflict struct {
	CouponID string      `json:"coupon_id"`
	Reason   string      `json:"reason"`
	Loser    Redemption  `json:"redemption"`
	Winner   *Redemption `json:"winner,omitempty"`
}

// ChangeInput is a change-feed entry before it has a version.
type ChangeInput struct {
	Store string // a store id or AllStores
	Kind  string
	Key   string
	Op    string
	Data  json.RawMessage
	At    time.Time
}

// FeedEntry is a stored change-feed entry and the store it targets.
type FeedEntry struct {
	Store string
	wire.Change
}
