// Package wire is the protocol that store terminals and HQ speak over MQTT:
// topics, message envelopes (hello, event batches, acks, change feed,
// status), the event payloads HQ projects, size limits, compression and
// validation, and the HQ-signed coupon token format.
//
// It does no I/O and imports nothing of ours, so both sides and the fuzz
// tests can use it freely. Every decoder here runs on untrusted input at HQ:
// it bounds sizes before it allocates and returns a *ValidationError naming
// the field that is wrong.
package wire

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// SchemaVersion is the version of every envelope this package writes. A
// decoder refuses any other version with ErrVersion.
const SchemaVersion = 1

// Hard limits. HQ enforces them on every upload; the link keeps its batches
// well inside them. Mosquitto's default max_packet_size is 2,000,000 bytes
// and it disconnects a 3.1.1 client that exceeds it without a reason, so
// MaxMessageBytes stays below it.
const (
	// MaxMessageBytes is the largest MQTT payload either side accepts, as sent
	// (possibly compressed).
	MaxMessageBytes = 1 << 20
	// MaxDecodedBytes bounds a payload after decompression (zip-bomb guard).
	MaxDecodedBytes = 8 << 20
	// MaxBatchEvents is the most events one batch may carry.
	MaxBatchEvents = 2000
	// MaxEventPayloadBytes bounds one event's JSON payload.
	MaxEventPayloadBytes = 64 << 10
	// MaxChangesPerMessage is the most change-feed entries in one message.
	MaxChangesPerMessage = 2000
	// CompressThreshold is the encoded size above which Encode gzips.
	CompressThreshold = 8 << 10
)

// Errors returned (wrapped) by decoders and validators.
var (
	ErrTooLarge   = errors.New("message too large")
	ErrVersion    = errors.New("unsupported schema version")
	ErrMalformed  = errors.New("malformed message")
	ErrInvalid    = errors.New("invalid message")
	ErrTopic      = errors.New("bad topic")
	ErrBadToken   = errors.New("bad coupon token")
	ErrUnknownKey = errors.New("unknown coupon key id")
	ErrSignature  = errors.New("coupon signature does not verify")
	ErrNotYet     = errors.New("coupon not yet valid")
	ErrExpired    = errors.New("coupon expired")
)

// ValidationError says which field of a message is wrong and why. It
// unwraps to ErrInvalid.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// idPattern is what a store or terminal id may look like. It must fill one
// MQTT topic level and be safe in a Mosquitto ACL pattern (%u): no '/', '+',
// '#', and not empty.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidID reports whether s can be a store or terminal id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// CheckID returns a *ValidationError for field when s is not a valid id.
func CheckID(field, s string) error {
	if !ValidID(s) {
		return invalid(field, "%q is not a valid id (1-64 of A-Z a-z 0-9 _ . -)", truncate(s, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return invalid(field, "missing")
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return invalid(field, "year %d out of range", t.Year())
	}
	return nil
}
