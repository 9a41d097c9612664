package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
)

// Event is one outbox row on the wire. Seq is per terminal, gapless and
// increasing; ID is the event's UUIDv7. HQ stores events idempotently by
// (store, terminal, seq) and by ID.
type Event struct {
	Seq     int64           `json:"seq"`
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	At      time.Time       `json:"at"`
	Payload json.RawMessage `json:"payload"`

	// parsed is the payload ValidatePayload decoded, so HQ's projections
	// do not decode it a second time. Not part of the wire format.
	parsed any
}

// Parsed returns the payload struct ValidatePayload decoded (a pointer such
// as *SaleCompleted), or nil if it has not run or the type is unknown.
func (e *Event) Parsed() any { return e.parsed }

// Batch is a run of a terminal's events in seq order, published on the
// events topic at QoS 1.
type Batch struct {
	V        int       `json:"v"`
	Store    string    `json:"store"`
	Terminal string    `json:"terminal"`
	DBID     string    `json:"db_id"`
	SentAt   time.Time `json:"sent_at"`
	Events   []Event   `json:"events"`
}

// Hello is sent on every connect. It reconciles cursors both ways: HQ learns
// what the terminal holds (and whether its database is new), the terminal
// learns from the answering Ack where HQ stands.
type Hello struct {
	V            int       `json:"v"`
	Store        string    `json:"store"`
	Terminal     string    `json:"terminal"`
	AgentVersion string    `json:"agent_version"`
	DBID         string    `json:"db_id"`
	LastAckedSeq int64     `json:"last_acked_seq"`
	FirstSeq     int64     `json:"first_seq"` // lowest seq still unacked, 0 when none
	LastSeq      int64     `json:"last_seq"`  // highest seq written, 0 when none
	FeedVersion  int64     `json:"feed_version"`
	Backlog      int64     `json:"backlog"`
	OldestUnsync time.Time `json:"oldest_unsynced,omitzero"`
	Clock        time.Time `json:"clock"`
}

// Rejection names an event HQ refused for good, and why. The terminal moves
// it out of its queue (dead letter) and goes on.
type Rejection struct {
	Seq    int64  `json:"seq"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Ack is HQ's answer to a hello or a batch: everything through Through is
// durably stored for this terminal's database.
//
// When a terminal's database is new (its DBID is unknown to HQ) but HQ holds
// events up to some seq for this terminal already, HQ sets Rebase to the seq
// the terminal must continue after; the terminal renumbers its unacked
// events above it before sending anything, so a reinstalled terminal never
// collides with its earlier uploads.
type Ack struct {
	V        int         `json:"v"`
	Store    string      `json:"store"`
	Terminal string      `json:"terminal"`
	DBID     string      `json:"db_id"`
	Through  int64       `json:"through"`
	Rebase   int64       `json:"rebase,omitempty"`
	Rejected []Rejection `json:"rejected,omitempty"`
	// FeedVersion is HQ's latest change-feed version for the store; a terminal
	// behind it asks for a resend by saying its own version in its next hello.
	FeedVersion int64     `json:"feed_version"`
	At          time.Time `json:"at"`
}

// Change is one change-feed entry. Versions are per HQ and increase; a
// terminal applies entries in version order and skips any it has applied.
type Change struct {
	Version int64           `json:"version"`
	Kind    string          `json:"kind"`
	Key     string          `json:"key"`
	Op      string          `json:"op"` // "upsert" or "delete"
	Data    json.RawMessage `json:"data,omitempty"`
	At      time.Time       `json:"at"`
}

// Change ops.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// Change kinds.
const (
	ChangeProduct     = "product"           // Data: ProductChange, Key: sku
	ChangeTaxClass    = "tax_class"         // Data: TaxClassChange, Key: class code
	ChangeCouponKey   = "coupon_key"        // Data: CouponKeyChange, Key: key id
	ChangeRevocation  = "coupon_revocation" // Key: coupon id, Data: RevocationChange
	ChangeMember      = "member"            // Data: MemberChange, Key: member id
	ChangePickupOrder = "pickup_order"      // Data: PickupOrderChange, Key: order id
	ChangeStoreConfig = "store_config"      // Data: StoreConfigChange, Key: "store"
	ChangeCoupon      = "coupon"            // Data: CouponChange (a coupon issued to a member), Key: coupon id
)

// Changes carries change-feed entries for one store, in version order.
//
// Versions are global to HQ, so a store sees gaps between its own entries;
// After closes them: it is the version of the store's previous entry (0 if
// none), so a terminal whose cursor is below After knows it missed something
// and asks for a resend (by its next hello) instead of leapfrogging it.
type Changes struct {
	V       int       `json:"v"`
	Store   string    `json:"store"`
	After   int64     `json:"after"`
	Latest  int64     `json:"latest"`
	Changes []Change  `json:"changes"`
	At      time.Time `json:"at"`
}

// Status is a terminal's retained presence message; its Last Will says
// offline.
type Status struct {
	V        int       `json:"v"`
	Store    string    `json:"store"`
	Terminal string    `json:"terminal"`
	State    string    `json:"state"` // "online" or "offline"
	At       time.Time `json:"at,omitzero"`
}

// Encode marshals msg as JSON and gzips it when larger than
// CompressThreshold. It refuses a result over MaxMessageBytes.
func Encode(msg any) ([]byte, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if len(b) > CompressThreshold {
		if b, err = gzipBytes(b); err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
	}
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("encode: %w: %d bytes > %d", ErrTooLarge, len(b), MaxMessageBytes)
	}
	return b, nil
}

// Gzip writers and readers are kept for reuse: a new flate writer
// allocates about a megabyte of tables, a reader tens of kilobytes, once per
// message. Writers are kept in a small free list rather than a sync.Pool,
// which the garbage collector empties, and a catch-up collects often.
var (
	gzipWriters = make(chan *gzip.Writer, 4)
	gzipReaders sync.Pool // *gzip.Reader
)

// gzipBytes returns b compressed at BestSpeed.
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	var zw *gzip.Writer
	select {
	case zw = <-gzipWriters:
		zw.Reset(&buf)
	default:
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	}
	defer func() {
		select {
		case gzipWriters <- zw:
		default:
		}
	}()
	if _, err := zw.Write(b); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// unwrap returns the JSON inside data, decompressing a gzip payload with a
// bound on the result. When it decompressed, release hands the buffer back
// for reuse: call it once done with the bytes.
func unwrap(data []byte) (out []byte, release func(), err error) {
	if len(data) > MaxMessageBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), MaxMessageBytes)
	}
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, func() {}, nil
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = zr.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
	}
	defer gzipReaders.Put(zr)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	release = func() {
		if buf.Cap() <= MaxDecodedBytes+bytes.MinRead {
			bufPool.Put(buf)
		}
	}
	if _, err := buf.ReadFrom(io.LimitReader(zr, MaxDecodedBytes+1)); err != nil {
		release()
		return nil, nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
	}
	if buf.Len() > MaxDecodedBytes {
		release()
		return nil, nil, fmt.Errorf("%w: more than %d bytes decompressed", ErrTooLarge, MaxDecodedBytes)
	}
	return buf.Bytes(), release, nil
}

// strict are the decoding rules for everything HQ and terminals receive:
// unknown members are refused, as are (by default in encoding/json v2's
// rules) duplicate member names, invalid UTF-8 and names that differ from
// the schema's only in case, which v1 matched. Our encoders never produce
// any of those; a message that has one is malformed.
var strict = jsonv2.RejectUnknownMembers(true)

// decode unmarshals a (possibly gzipped) payload into v, refusing unknown
// fields, trailing data and a wrong schema version.
//
// It uses github.com/go-json-experiment/json, the implementation of Go's
// encoding/json/v2 (behind GOEXPERIMENT=jsonv2 in Go 1.25+): it checks and
// decodes in one pass, where v1's Decoder scans a value in full before it
// decodes it, and v1 has no Unmarshal that refuses unknown fields. On a
// 500-event batch that is about a third of v1's CPU (BenchmarkDecodeBatch),
// and HQ decodes every upload.
func decode(data []byte, v any, version func() int) error {
	b, release, err := unwrap(data)
	if err != nil {
		return err
	}
	// Unmarshal copies what it keeps (strings, raw payloads), so the
	// buffer may be reused once it returns.
	err = jsonv2.Unmarshal(b, v, strict)
	release()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if got := version(); got != SchemaVersion {
		return fmt.Errorf("%w: v=%d, this build speaks v=%d", ErrVersion, got, SchemaVersion)
	}
	return nil
}

// DecodeBatch decodes and validates an events upload.
func DecodeBatch(data []byte) (*Batch, error) {
	var b Batch
	if err := decode(data, &b, func() int { return b.V }); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	// The decoder has checked that every payload is well-formed JSON.
	if err := b.validate(false); err != nil {
		return nil, fmt.Errorf("decode batch: %w", err)
	}
	return &b, nil
}

// DecodeHello decodes and validates a hello.
func DecodeHello(data []byte) (*Hello, error) {
	var h Hello
	if err := decode(data, &h, func() int { return h.V }); err != nil {
		return nil, fmt.Errorf("decode hello: %w", err)
	}
	if err := h.Validate(); err != nil {
		return nil, fmt.Errorf("decode hello: %w", err)
	}
	return &h, nil
}

// DecodeAck decodes and validates an ack.
func DecodeAck(data []byte) (*Ack, error) {
	var a Ack
	if err := decode(data, &a, func() int { return a.V }); err != nil {
		return nil, fmt.Errorf("decode ack: %w", err)
	}
	if err := CheckID("store", a.Store); err != nil {
		return nil, fmt.Errorf("decode ack: %w", err)
	}
	if err := CheckID("terminal", a.Terminal); err != nil {
		return nil, fmt.Errorf("decode ack: %w", err)
	}
	if a.Through < 0 || a.Rebase < 0 {
		return nil, fmt.Errorf("decode ack: %w", invalid("through", "negative"))
	}
	return &a, nil
}

// DecodeChanges decodes and validates a change-feed message.
func DecodeChanges(data []byte) (*Changes, error) {
	var c Changes
	if err := decode(data, &c, func() int { return c.V }); err != nil {
		return nil, fmt.Errorf("decode changes: %w", err)
	}
	if err := CheckID("store", c.Store); err != nil {
		return nil, fmt.Errorf("decode changes: %w", err)
	}
	if len(c.Changes) > MaxChangesPerMessage {
		return nil, fmt.Errorf("decode changes: %w", invalid("changes", "%d entries > %d", len(c.Changes), MaxChangesPerMessage))
	}
	var prev int64
	for i, ch := range c.Changes {
		if ch.Version <= prev {
			return nil, fmt.Errorf("decode changes: %w", invalid(fmt.Sprintf("changes[%d].version", i), "%d not above %d", ch.Version, prev))
		}
		prev = ch.Version
		if ch.Kind == "" || ch.Key == "" || (ch.Op != OpUpsert && ch.Op != OpDelete) {
			return nil, fmt.Errorf("decode changes: %w", invalid(fmt.Sprintf("changes[%d]", i), "needs kind, key and op upsert|delete"))
		}
	}
	return &c, nil
}

// DecodeStatus decodes a status message. A bare "online" / "offline" text is
// accepted too, since some tools set the will by hand.
func DecodeStatus(data []byte) (*Status, error) {
	switch string(data) {
	case "online", "offline":
		return &Status{V: SchemaVersion, State: string(data)}, nil
	}
	var s Status
	if err := decode(data, &s, func() int { return s.V }); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	if s.State != "online" && s.State != "offline" {
		return nil, fmt.Errorf("decode status: %w", invalid("state", "%q is not online|offline", truncate(s.State, 40)))
	}
	return &s, nil
}

// Validate checks a batch the way HQ must before storing any of it.
func (b *Batch) Validate() error { return b.validate(true) }

// validate is Validate; checkJSON false skips checking that payloads are
// well-formed JSON, for a batch the decoder has just checked.
func (b *Batch) validate(checkJSON bool) error {
	if err := CheckID("store", b.Store); err != nil {
		return err
	}
	if err := CheckID("terminal", b.Terminal); err != nil {
		return err
	}
	if _, err := uuid.Parse(b.DBID); err != nil {
		return invalid("db_id", "not a UUID")
	}
	if len(b.Events) == 0 {
		return invalid("events", "empty batch")
	}
	if len(b.Events) > MaxBatchEvents {
		return invalid("events", "%d events > %d", len(b.Events), MaxBatchEvents)
	}
	var prev int64
	for i := range b.Events {
		if err := b.Events[i].validate(checkJSON); err != nil {
			var ve *ValidationError
			if ok := asValidation(err, &ve); ok {
				ve.Field = fmt.Sprintf("events[%d].%s", i, ve.Field)
			}
			return err
		}
		if b.Events[i].Seq <= prev {
			return invalid(fmt.Sprintf("events[%d].seq", i), "%d not above %d: a batch is in strictly increasing seq order", b.Events[i].Seq, prev)
		}
		prev = b.Events[i].Seq
	}
	return nil
}

func asValidation(err error, ve **ValidationError) bool {
	v, ok := err.(*ValidationError)
	if ok {
		*ve = v
	}
	return ok
}

// Validate checks one event's fields; it does not check the payload against
// its type's schema (see ValidatePayload).
func (e *Event) Validate() error { return e.validate(true) }

func (e *Event) validate(checkJSON bool) error {
	if e.Seq <= 0 {
		return invalid("seq", "%d is not positive", e.Seq)
	}
	if _, err := uuid.Parse(e.ID); err != nil {
		return invalid("id", "not a UUID")
	}
	if !typePattern.MatchString(e.Type) {
		return invalid("type", "%q is not an event type", truncate(e.Type, 60))
	}
	if err := checkTime("at", e.At); err != nil {
		return err
	}
	if len(e.Payload) > MaxEventPayloadBytes {
		return invalid("payload", "%d bytes > %d", len(e.Payload), MaxEventPayloadBytes)
	}
	if len(e.Payload) == 0 || e.Payload[0] != '{' || (checkJSON && !json.Valid(e.Payload)) {
		return invalid("payload", "not a JSON object")
	}
	return nil
}

// Validate checks a hello.
func (h *Hello) Validate() error {
	if err := CheckID("store", h.Store); err != nil {
		return err
	}
	if err := CheckID("terminal", h.Terminal); err != nil {
		return err
	}
	if _, err := uuid.Parse(h.DBID); err != nil {
		return invalid("db_id", "not a UUID")
	}
	if h.LastAckedSeq < 0 || h.FirstSeq < 0 || h.LastSeq < 0 || h.FeedVersion < 0 || h.Backlog < 0 {
		return invalid("cursor", "negative")
	}
	if len(h.AgentVersion) > 64 {
		return invalid("agent_version", "too long")
	}
	return nil
}
