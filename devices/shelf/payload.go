package shelf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Limits of the MQTT payload.
const (
	// DefaultMaxPayload is the largest message accepted by default; a
	// multi-slot message of 64 readings is about 2.5 KiB.
	DefaultMaxPayload = 4096
	// MaxReadingsPerMessage bounds a multi-slot message.
	MaxReadingsPerMessage = 64
	// MaxSlot is the highest slot number a payload may name.
	MaxSlot = 1023
	// maxAbsGrams bounds weight_g before rounding; larger numbers are not
	// weights at all (the counter rejects smaller absurd ones with a reason).
	maxAbsGrams = 1e12
)

// ErrPayload is wrapped by every payload decoding error.
var ErrPayload = errors.New("bad shelf payload")

// Reading is one gross weight of one slot as a sensor sent it.
type Reading struct {
	Slot  int
	Grams int64
	// At is the sensor's own timestamp (UTC), zero when it sent none. The
	// shelf times everything by its own clock: a sensor's clock on a store
	// LAN is often unsynchronised.
	At time.Time
}

// wireReading is one reading on the wire. Numbers are kept raw so that
// absent (empty) is told from 0, and a number in a string ("1234", which
// json.Number would take) is refused.
type wireReading struct {
	Slot    json.RawMessage `json:"slot"`
	WeightG json.RawMessage `json:"weight_g"`
	At      *string         `json:"at"`
}

// wireMessage is either one reading (slot, weight_g, at) or several
// (readings, at).
type wireMessage struct {
	wireReading
	Readings []wireReading `json:"readings"`
}

// DecodeReadings decodes one MQTT shelf message (the payload documented in
// docs/shelves.md):
//
//	{"slot":0,"weight_g":1234,"at":"2026-03-01T09:00:00Z"}
//	{"at":"2026-03-01T09:00:00Z","readings":[{"slot":0,"weight_g":1234},{"slot":1,"weight_g":87.5}]}
//
// weight_g is the slot's gross weight in grams (a decimal is rounded half
// away from zero); slot is 0..MaxSlot; at is optional RFC 3339. Decoding
// is strict: unknown fields, a second JSON value, a message over maxBytes
// (DefaultMaxPayload when ≤ 0), both or neither form, an empty or too long
// list, or a slot listed twice are errors wrapping ErrPayload. Range
// checks (negative, absurd) are the counter's, with their own reasons.
func DecodeReadings(b []byte, maxBytes int) ([]Reading, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxPayload
	}
	if len(b) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayload, len(b), maxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m *wireMessage
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrPayload)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: null", ErrPayload)
	}
	single := len(m.Slot) > 0 || len(m.WeightG) > 0
	switch {
	case single && m.Readings != nil:
		return nil, fmt.Errorf("%w: either slot and weight_g, or readings, not both", ErrPayload)
	case !single && m.Readings == nil:
		return nil, fmt.Errorf("%w: want slot and weight_g, or readings", ErrPayload)
	case !single && len(m.Readings) == 0:
		return nil, fmt.Errorf("%w: readings is empty", ErrPayload)
	case len(m.Readings) > MaxReadingsPerMessage:
		return nil, fmt.Errorf("%w: %d readings, limit %d", ErrPayload, len(m.Readings), MaxReadingsPerMessage)
	}
	var at time.Time
	if m.At != nil {
		t, err := parseAt("at", *m.At)
		if err != nil {
			return nil, err
		}
		at = t
	}
	if single {
		r, err := m.wireReading.decode("", at)
		if err != nil {
			return nil, err
		}
		return []Reading{r}, nil
	}
	out := make([]Reading, 0, len(m.Readings))
	seen := make(map[int]bool, len(m.Readings))
	for i, w := range m.Readings {
		r, err := w.decode(fmt.Sprintf("readings[%d].", i), at)
		if err != nil {
			return nil, err
		}
		if seen[r.Slot] {
			return nil, fmt.Errorf("%w: readings[%d].slot: slot %d listed twice", ErrPayload, i, r.Slot)
		}
		seen[r.Slot] = true
		out = append(out, r)
	}
	return out, nil
}

func (w wireReading) decode(field string, at time.Time) (Reading, error) {
	if len(w.Slot) == 0 {
		return Reading{}, fmt.Errorf("%w: %sslot: required", ErrPayload, field)
	}
	if len(w.WeightG) == 0 {
		return Reading{}, fmt.Errorf("%w: %sweight_g: required", ErrPayload, field)
	}
	slot, err := strconv.ParseInt(string(w.Slot), 10, 64)
	if err != nil || slot < 0 || slot > MaxSlot {
		return Reading{}, fmt.Errorf("%w: %sslot: %.20q is not an integer 0..%d", ErrPayload, field, w.Slot, MaxSlot)
	}
	g, err := grams(w.WeightG)
	if err != nil {
		return Reading{}, fmt.Errorf("%w: %sweight_g: %v", ErrPayload, field, err)
	}
	r := Reading{Slot: int(slot), Grams: g, At: at}
	if w.At != nil {
		t, err := parseAt(field+"at", *w.At)
		if err != nil {
			return Reading{}, err
		}
		r.At = t
	}
	return r, nil
}

// grams turns a raw JSON number into whole grams. Integers are exact; a
// decimal is rounded half away from zero.
func grams(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return 0, fmt.Errorf("%.20q is not a number", s)
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if math.Abs(float64(i)) > maxAbsGrams {
			return 0, fmt.Errorf("%s is out of range", s)
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > maxAbsGrams {
		return 0, fmt.Errorf("%.20q is out of range", s)
	}
	return int64(math.Round(f)), nil
}

func parseAt(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s: %q is not RFC 3339", ErrPayload, field, s)
	}
	return t.UTC(), nil
}
