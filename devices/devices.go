// Package devices holds what every edgepos device driver shares: the
// UnifiedPOS-style device state (closed, idle, busy, error), the Status
// record a driver reports, a status fan-out that never blocks a driver, a
// capped jittered backoff for reconnects, and a throttle for repeated-failure
// logs. It has no business rules and imports nothing of ours.
//
// Every driver under devices/ follows the same lifecycle: New only fills
// defaults, Open(ctx) validates and starts the driver's goroutines, and
// Close(ctx) stops them, waits for them and releases the device.
package devices

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// State is a device's state, modelled after the UnifiedPOS State property
// (Closed, Idle, Busy, Error).
type State string

// The device states.
const (
	// StateClosed means the driver is not open (before Open, after Close).
	StateClosed State = "closed"
	// StateIdle means the device is connected and ready.
	StateIdle State = "idle"
	// StateBusy means the device is working on a request (a print job).
	StateBusy State = "busy"
	// StateError means the device is open but unusable; Status.Reason says why.
	StateError State = "error"
)

// Device kinds used in Status.Kind.
const (
	// KindScanner is a barcode scanner.
	KindScanner = "scanner"
	// KindPrinter is a receipt printer.
	KindPrinter = "printer"
	// KindShelf is a weight shelf (one sensor or load-cell indicator).
	KindShelf = "shelf"
)

// Log attribute keys every driver uses with log/slog.
const (
	// LogDevice is the slog key of the device name.
	LogDevice = "device"
	// LogKind is the slog key of the device kind.
	LogKind = "kind"
	// LogPath is the slog key of a device path or address.
	LogPath = "path"
	// LogErr is the slog key of an error.
	LogErr = "err"
)

// Status is one state report of one device. At is UTC.
type Status struct {
	Device string    `json:"device"`
	Kind   string    `json:"kind"`
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Hub fans status reports out to subscribers without ever blocking the
// publishing driver. Each subscriber has a bounded buffer; when it is full
// the OLDEST report is dropped to make room (drop-oldest), so a slow
// subscriber always ends up seeing the newest state of every device. The
// zero Hub is not usable; call NewHub.
type Hub struct {
	mu      sync.Mutex
	subs    map[int]chan Status
	next    int
	last    map[string]Status
	dropped uint64
	closed  bool
}

// NewHub returns an empty status hub.
func NewHub() *Hub {
	return &Hub{subs: map[int]chan Status{}, last: map[string]Status{}}
}

// Subscribe returns a channel of status reports with room for buf reports
// (at least 1) and a cancel func that removes the subscription and closes
// the channel. The channel first receives the last known status of every
// device, so a late subscriber does not miss the current state.
func (h *Hub) Subscribe(buf int) (<-chan Status, func()) {
	if buf < 1 {
		buf = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Status, buf)
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	id := h.next
	h.next++
	h.subs[id] = ch
	for _, s := range h.last {
		h.sendLocked(ch, s)
	}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if c, ok := h.subs[id]; ok {
			delete(h.subs, id)
			close(c)
		}
	}
}

// Publish records s as the device's latest status and hands it to every
// subscriber. It never blocks.
func (h *Hub) Publish(s Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.last[s.Kind+"/"+s.Device] = s
	for _, ch := range h.subs {
		h.sendLocked(ch, s)
	}
}

// sendLocked delivers s to ch, dropping the oldest buffered report if ch is
// full. Only Publish/Subscribe send, under h.mu, so after one receive there
// is room.
func (h *Hub) sendLocked(ch chan Status, s Status) {
	select {
	case ch <- s:
		return
	default:
	}
	select {
	case <-ch:
		h.dropped++
	default:
	}
	select {
	case ch <- s:
	default:
		h.dropped++
	}
}

// Last returns the latest status of every device that has reported.
func (h *Hub) Last() []Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Status, 0, len(h.last))
	for _, s := range h.last {
		out = append(out, s)
	}
	return out
}

// Dropped returns how many reports were dropped for slow subscribers.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Close closes every subscriber channel; later Publish calls do nothing.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for id, ch := range h.subs {
		delete(h.subs, id)
		close(ch)
	}
}

// Reporter is what a driver uses to publish its own status: it stamps the
// device name, kind and time, and suppresses reports that repeat the
// current state and reason.
type Reporter struct {
	Device string
	Kind   string
	Hub    *Hub
	Now    func() time.Time

	mu  sync.Mutex
	cur Status
}

// Set publishes state and reason if they differ from the current ones and
// returns the status now current.
func (r *Reporter) Set(state State, reason string) Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.State == state && r.cur.Reason == reason && !r.cur.At.IsZero() {
		return r.cur
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	r.cur = Status{Device: r.Device, Kind: r.Kind, State: state, Reason: reason, At: now().UTC()}
	if r.Hub != nil {
		r.Hub.Publish(r.cur)
	}
	return r.cur
}

// Current returns the current status (State is closed before the first Set).
func (r *Reporter) Current() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur.State == "" {
		return Status{Device: r.Device, Kind: r.Kind, State: StateClosed}
	}
	return r.cur
}

// Backoff is a capped exponential backoff with jitter for reconnect loops.
// Delays start at Min, double up to Max, and each is drawn uniformly from
// [d/2, d] so many devices replugged together do not retry in lockstep.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	if b.Min <= 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur *= 2
		if b.cur > b.Max {
			b.cur = b.Max
		}
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

// Reset starts the sequence again at Min (call it after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits for d or until ctx is done, and returns ctx.Err() in the
// latter case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Throttle limits repeated-failure logs to one per Interval. The zero value
// allows every call.
type Throttle struct {
	Interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Allow reports whether a log line may be written at now and, if so, how
// many were suppressed since the last one.
func (t *Throttle) Allow(now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < t.Interval {
		t.suppressed++
		return false, 0
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	return true, n
}

// Reset forgets the last log time, so the next failure after a recovery is
// logged at once.
func (t *Throttle) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last, t.suppressed = time.Time{}, 0
}

// Wait waits for wg's goroutines, or until ctx ends, then returning ctx's
// error. A driver's Close cancels its goroutines first, so a timeout means
// one of them is stuck in I/O; it is left to end on its own.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
