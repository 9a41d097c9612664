package shelf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reason says why a reading was rejected.
type Reason string

// Rejection reasons, counted in Stats.Rejected.
const (
	// ReasonNegative is a gross weight below zero: a load cell that lost
	// its zero, or a sign error in the indicator's word order.
	ReasonNegative Reason = "negative"
	// ReasonAbsurd is a gross weight above Config.MaxG: no shelf holds it.
	ReasonAbsurd Reason = "absurd"
	// ReasonBelowTare is a weight lighter than the empty tray by more than
	// the stable band: the tray was lifted or the cell drifted.
	ReasonBelowTare Reason = "below_tare"
	// ReasonUnknownSlot is a reading for a slot the shelf does not have.
	ReasonUnknownSlot Reason = "unknown_slot"
)

// ErrRejected is wrapped by the errors that reject a reading.
var ErrRejected = errors.New("shelf reading rejected")

// RejectError is one rejected reading, with its reason.
type RejectError struct {
	Slot   int
	Grams  int64
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("shelf reading rejected: slot %d: %d g: %s (%s)", e.Slot, e.Grams, e.Reason, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRejected) hold.
func (e *RejectError) Unwrap() error { return ErrRejected }

// rules are the counting settings shared by every slot of a shelf.
type rules struct {
	stableReadings int
	stableBandG    int64
	offlineAfter   time.Duration
	shrinkWindow   time.Duration
	saleLookback   time.Duration
	lowStockMargin int64
	maxG           int64
	alertRepeat    time.Duration
	salesTimeout   time.Duration
}

// slotState is everything the shelf knows about one slot. Only the
// shelf's engine goroutine touches it.
type slotState struct {
	cfg  Slot
	band int64

	window []int64 // the last stableReadings accepted readings, oldest first

	hasCount bool
	count    int64
	stableG  int64 // gross weight of the last accepted count

	ambiguous     bool
	lastAmbiguous time.Time
	low           bool

	lastSeen time.Time // last reading of any kind (zero: none yet)
	offline  bool

	drop         *drop
	lastDecision time.Time // sales at or before this were used for an earlier drop
}

// drop is a count drop waiting out the shrink window before it is judged.
type drop struct {
	from     int64     // the count before the first drop of this episode
	at       time.Time // when the first drop was seen
	since    time.Time // sales at or after this may explain it
	deadline time.Time
}

// counter turns readings into counts and alerts (DEVICE-PROTOCOLS.md §3:
// "Counting"). It is not safe for concurrent use: the shelf's engine
// goroutine owns it.
type counter struct {
	shelf  string
	r      rules
	slots  map[int]*slotState
	order  []int // slot numbers, sorted, for a stable event order on ticks
	sales  Sales
	opened time.Time
	emit   func(Event)
	// salesErr reports a failed Sales call (logged by the shelf, throttled).
	salesErr func(sku string, err error)
}

func newCounter(shelf string, r rules, slots []Slot, sales Sales, opened time.Time, emit func(Event), salesErr func(string, error)) *counter {
	c := &counter{shelf: shelf, r: r, slots: make(map[int]*slotState, len(slots)), sales: sales, opened: opened, emit: emit, salesErr: salesErr}
	for _, s := range slots {
		band := r.stableBandG
		if band <= 0 {
			// A load cell's own noise is a few grams; the slot's tolerance
			// is what its counting already forgives.
			band = max(s.ToleranceG, 2)
		}
		c.slots[s.Slot] = &slotState{cfg: s, band: band, window: make([]int64, 0, r.stableReadings)}
		c.order = append(c.order, s.Slot)
	}
	slices.Sort(c.order)
	return c
}

func (c *counter) event(st *slotState, kind string, now time.Time) Event {
	return Event{Kind: kind, Shelf: c.shelf, Slot: st.cfg.Slot, SKU: st.cfg.SKU, At: now.UTC()}
}

// observe takes one gross reading of slot at now. It returns a
// *RejectError for a reading it refuses; the slot still counts as heard
// from (the sensor is talking, its number is wrong).
func (c *counter) observe(now time.Time, slot int, grams int64) error {
	st, ok := c.slots[slot]
	if !ok {
		return &RejectError{Slot: slot, Grams: grams, Reason: ReasonUnknownSlot, Detail: "no such slot on this shelf"}
	}
	st.lastSeen = now
	if st.offline {
		st.offline = false
		e := c.event(st, KindSensorOnline, now)
		e.Count, e.Grams = st.count, grams
		c.emit(e)
	}
	var rej *RejectError
	switch net := grams - st.cfg.TareG; {
	case grams < 0:
		rej = &RejectError{Reason: ReasonNegative, Detail: "a gross weight cannot be negative"}
	case grams > c.r.maxG:
		rej = &RejectError{Reason: ReasonAbsurd, Detail: fmt.Sprintf("above the shelf's maximum of %d g", c.r.maxG)}
	case net < -max(st.cfg.ToleranceG, st.band):
		rej = &RejectError{Reason: ReasonBelowTare, Detail: fmt.Sprintf("%d g lighter than the empty tray (tare %d g)", -net, st.cfg.TareG)}
	}
	if rej != nil {
		rej.Slot, rej.Grams = slot, grams
		// A spike breaks stability: the readings around it are suspect too.
		st.window = st.window[:0]
		return rej
	}
	if len(st.window) == c.r.stableReadings {
		copy(st.window, st.window[1:])
		st.window = st.window[:len(st.window)-1]
	}
	st.window = append(st.window, grams)
	if len(st.window) < c.r.stableReadings {
		return nil
	}
	lo, hi := slices.Min(st.window), slices.Max(st.window)
	if hi-lo > st.band {
		return nil // still settling: an item being placed or taken
	}
	c.evaluate(now, st, median(st.window))
	return nil
}

// evaluate applies the counting rule to a stable gross weight w:
// n = round((w − tare) / unit), accepted only when the residual is within
// max(tolerance, 5 % of the change since the last accepted weight)
// (DEVICE-PROTOCOLS.md §3 "Counting", [49]); otherwise the weight is
// ambiguous and the count stays where it was.
func (c *counter) evaluate(now time.Time, st *slotState, w int64) {
	net := max(w-st.cfg.TareG, 0)
	unit := st.cfg.UnitG
	n := (net + unit/2) / unit // half up; net ≥ 0, unit > 0
	residual := abs(net - n*unit)
	ref := st.cfg.TareG
	if st.hasCount {
		ref = st.stableG
	}
	change := abs(w - ref)
	allowed := max(st.cfg.ToleranceG, change*5/100)
	if residual > allowed {
		if st.hasCount && n == st.count && abs(w-st.stableG) <= st.band {
			return // the accepted weight itself, seen again
		}
		if !st.ambiguous && (st.lastAmbiguous.IsZero() || now.Sub(st.lastAmbiguous) >= c.r.alertRepeat) {
			e := c.event(st, KindAmbiguous, now)
			e.Count, e.Grams = n, w
			e.Detail = fmt.Sprintf("%d g is %d ± %d g from %d × %d g (allowed ± %d g)", w, net, residual, n, unit, allowed)
			c.emit(e)
			st.lastAmbiguous = now
		}
		st.ambiguous = true
		return
	}
	st.ambiguous = false
	prev, had := st.count, st.hasCount
	st.stableG = w
	if had && n == prev {
		return
	}
	st.count, st.hasCount = n, true
	e := c.event(st, KindCount, now)
	e.Count, e.Prev, e.Initial, e.Grams = n, prev, !had, w
	c.emit(e)

	// Low stock with hysteresis: raised at or below the threshold, cleared
	// only above threshold + margin, so a count wobbling around the
	// threshold raises one alert, not a storm.
	switch {
	case !st.low && n <= st.cfg.LowStock:
		st.low = true
		le := c.event(st, KindLowStock, now)
		le.Count, le.Grams = n, w
		le.Detail = fmt.Sprintf("%d left, threshold %d", n, st.cfg.LowStock)
		c.emit(le)
	case st.low && n > st.cfg.LowStock+c.r.lowStockMargin:
		st.low = false
		le := c.event(st, KindLowStockCleared, now)
		le.Count, le.Grams = n, w
		le.Detail = fmt.Sprintf("%d on the shelf, above %d + %d", n, st.cfg.LowStock, c.r.lowStockMargin)
		c.emit(le)
	}

	// A drop opens a shrink episode that waits out the window, so a sale
	// rung up after the customer took the item still explains it.
	if had && n < prev && c.sales != nil && st.drop == nil {
		since := now.Add(-c.r.saleLookback)
		if since.Before(st.lastDecision) {
			since = st.lastDecision // those sales explained an earlier drop
		}
		st.drop = &drop{from: prev, at: now, since: since, deadline: now.Add(c.r.shrinkWindow)}
	}
}

// tick runs the time-based rules at now: sensors gone silent, and drops
// whose shrink window has passed.
func (c *counter) tick(ctx context.Context, now time.Time) {
	for _, n := range c.order {
		st := c.slots[n]
		ref := st.lastSeen
		if ref.IsZero() {
			ref = c.opened
		}
		if !st.offline && now.Sub(ref) >= c.r.offlineAfter {
			st.offline = true
			st.window = st.window[:0]
			e := c.event(st, KindSensorOffline, now)
			e.Count = st.count
			if st.lastSeen.IsZero() {
				e.Detail = fmt.Sprintf("no reading since the shelf opened %s ago", now.Sub(ref).Round(time.Millisecond))
			} else {
				e.Detail = fmt.Sprintf("no reading for %s", now.Sub(ref).Round(time.Millisecond))
			}
			c.emit(e)
		}
		if st.drop != nil && !now.Before(st.drop.deadline) {
			c.judge(ctx, now, st)
		}
	}
}

// judge decides a drop once its window has passed: the net drop (so an
// item taken and put back is no drop) minus the units sold since the drop
// began is shrink.
func (c *counter) judge(ctx context.Context, now time.Time, st *slotState) {
	d := st.drop
	missing := d.from - st.count
	if missing <= 0 {
		st.drop = nil // put back or restocked within the window
		return
	}
	sctx, cancel := context.WithTimeout(ctx, c.r.salesTimeout)
	sold, err := c.sales.Sold(sctx, st.cfg.SKU, d.since)
	cancel()
	if err != nil {
		c.salesErr(st.cfg.SKU, err) // kept: retried on the next tick
		return
	}
	st.drop = nil
	st.lastDecision = now
	if short := missing - max(sold, 0); short > 0 {
		e := c.event(st, KindShrink, now)
		e.Count, e.Grams = short, st.stableG
		e.Detail = fmt.Sprintf("count fell from %d to %d since %s; %d sold since %s",
			d.from, st.count, d.at.UTC().Format(time.RFC3339), max(sold, 0), d.since.UTC().Format(time.RFC3339))
		c.emit(e)
	}
}

// allOffline reports whether every slot is offline.
func (c *counter) allOffline() bool {
	for _, st := range c.slots {
		if !st.offline {
			return false
		}
	}
	return true
}

func median(w []int64) int64 {
	s := slices.Clone(w)
	slices.Sort(s)
	return s[len(s)/2]
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
