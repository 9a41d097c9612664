package shelf

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// rice is the example slot of configs/agent.yaml's shelf-a.
var rice = Slot{Slot: 0, SKU: "6901234567892", TareG: 120, UnitG: 550, ToleranceG: 25, LowStock: 3}

func testRules() rules {
	return rules{stableReadings: 3, offlineAfter: 30 * time.Second, shrinkWindow: 10 * time.Minute, saleLookback: time.Minute,
		lowStockMargin: 1, maxG: 500_000, alertRepeat: 5 * time.Minute, salesTimeout: time.Second}
}

// sales is a till for tests: sales at times, Sold sums those at or after
// since. It is the seam the agent's ledger fills in production.
type sales struct {
	mu    sync.Mutex
	at    []time.Time
	units []int64
	err   error
	calls int
}

func (s *sales) sell(at time.Time, units int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.units = append(s.at, at), append(s.units, units)
}

func (s *sales) Sold(_ context.Context, _ string, since time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return 0, s.err
	}
	var n int64
	for i, at := range s.at {
		if !at.Before(since) {
			n += s.units[i]
		}
	}
	return n, nil
}

type rig struct {
	t   *testing.T
	c   *counter
	now time.Time
	evs []Event
	rej []error
}

func newRig(t *testing.T, r rules, sl Sales, slots ...Slot) *rig {
	g := &rig{t: t, now: t0}
	var s Sales
	if sl != nil {
		s = sl
	}
	g.c = newCounter("shelf-a", r, slots, s, t0, func(e Event) { g.evs = append(g.evs, e) }, func(string, error) {})
	return g
}

// feed sends grams to slot n times, one second apart.
func (g *rig) feed(slot int, grams int64, n int) {
	for range n {
		g.now = g.now.Add(time.Second)
		if err := g.c.observe(g.now, slot, grams); err != nil {
			g.rej = append(g.rej, err)
		}
	}
}

func (g *rig) advance(d time.Duration) {
	g.now = g.now.Add(d)
	g.c.tick(context.Background(), g.now)
}

func (g *rig) take() []Event {
	e := g.evs
	g.evs = nil
	return e
}

func kinds(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestCountRule(t *testing.T) {
	cases := []struct {
		name  string
		grams int64
		kind  string
		count int64
	}{
		{"empty tray", 120, KindCount, 0},
		{"five exact", 120 + 5*550, KindCount, 5},
		{"five within tolerance", 120 + 5*550 + 25, KindCount, 5},
		{"five just below tolerance", 120 + 5*550 - 24, KindCount, 5},
		// 3 units: change from tare 1650 g, 5 % = 82 g > 25 g.
		{"three, residual within 5 % of the change", 120 + 3*550 + 80, KindCount, 3},
		{"one, residual over tolerance and 5 %", 120 + 550 + 200, KindAmbiguous, 1},
		{"half a unit", 120 + 275, KindAmbiguous, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, testRules(), nil, rice)
			g.feed(0, c.grams, 3)
			evs := g.take()
			require.NotEmpty(t, evs)
			assert.Equal(t, c.kind, evs[0].Kind)
			assert.Equal(t, c.count, evs[0].Count)
			assert.Equal(t, c.grams, evs[0].Grams)
			assert.Equal(t, "6901234567892", evs[0].SKU)
			assert.Equal(t, "shelf-a", evs[0].Shelf)
		})
	}
}

func TestCountNeedsStableReadings(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	g.feed(0, 120+2*550, 2)
	assert.Empty(t, g.take(), "two readings are not yet stable")
	g.feed(0, 120+9*550, 1) // a hand on the tray: the window spreads
	g.feed(0, 120+2*550, 2)
	assert.Empty(t, g.take())
	g.feed(0, 120+2*550, 1)
	evs := g.take()
	require.Len(t, evs, 2)
	assert.Equal(t, Event{Kind: KindCount, Shelf: "shelf-a", Slot: 0, SKU: rice.SKU, Count: 2, Initial: true, Grams: 1220, At: g.now}, evs[0])
	assert.Equal(t, KindLowStock, evs[1].Kind, "2 is at or below 3")
}

// TestNoisyReadingsDoNotFlap: ±10 g of noise on a stable load gives one
// count, not a stream of changes; a real change of one unit then gives
// exactly one more.
func TestNoisyReadingsDoNotFlap(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := func(base int64, n int) {
		for range n {
			g.feed(0, base+rng.Int64N(21)-10, 1)
		}
	}
	noisy(120+8*550, 500)
	evs := g.take()
	require.Equal(t, []string{KindCount}, kinds(evs))
	assert.Equal(t, int64(8), evs[0].Count)
	noisy(120+7*550, 500)
	evs = g.take()
	require.Equal(t, []string{KindCount}, kinds(evs))
	assert.Equal(t, int64(7), evs[0].Count)
	assert.Equal(t, int64(8), evs[0].Prev)
	assert.False(t, evs[0].Initial)
}

func TestBadReadingsRejectedWithReason(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	g.feed(0, 120+4*550, 3)
	g.take()
	cases := []struct {
		grams  int64
		reason Reason
	}{
		{-5, ReasonNegative},
		{-2_000_000_000, ReasonNegative},
		{500_001, ReasonAbsurd},
		{1 << 40, ReasonAbsurd},
		{120 - 26, ReasonBelowTare},
	}
	for _, c := range cases {
		g.rej = nil
		g.feed(0, c.grams, 1)
		require.Len(t, g.rej, 1, "%d g", c.grams)
		var re *RejectError
		require.ErrorAs(t, g.rej[0], &re)
		assert.Equal(t, c.reason, re.Reason)
		require.ErrorIs(t, g.rej[0], ErrRejected)
	}
	require.Error(t, g.c.observe(g.now, 7, 100), "unknown slot")
	assert.Empty(t, g.take(), "rejected readings change nothing")

	// A spike between good readings breaks the window but not the count.
	g.feed(0, 120+4*550, 2)
	g.feed(0, -1, 1)
	g.feed(0, 120+4*550, 2)
	assert.Empty(t, g.take())
	assert.Equal(t, int64(4), g.c.slots[0].count)
}

func TestAmbiguousIsReportedOnceNotPerReading(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	g.feed(0, 120+5*550, 3)
	g.take()
	g.feed(0, 120+5*550-300, 50) // someone leaning on it: ~4.5 units
	evs := g.take()
	require.Equal(t, []string{KindAmbiguous}, kinds(evs))
	assert.Contains(t, evs[0].Detail, "allowed")
	assert.Equal(t, int64(5), g.c.slots[0].count, "an ambiguous weight keeps the last count")

	// Clears, and comes back within AlertRepeat: no second alert.
	g.feed(0, 120+5*550, 3)
	g.feed(0, 120+5*550-300, 3)
	assert.Empty(t, g.take())
	// After AlertRepeat it is reported again.
	g.feed(0, 120+5*550, 3)
	g.now = g.now.Add(6 * time.Minute)
	g.feed(0, 120+5*550-300, 3)
	assert.Equal(t, []string{KindAmbiguous}, kinds(g.take()))
}

// TestLowStockHysteresis: a count wobbling around the threshold raises
// one alert; it clears only above threshold + margin.
func TestLowStockHysteresis(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	var alerts []string
	for _, n := range []int64{6, 5, 4, 3, 4, 3, 4, 3, 4, 5, 4, 3, 2} {
		g.feed(0, 120+n*550, 3)
		for _, e := range g.take() {
			if e.Kind != KindCount {
				alerts = append(alerts, e.Kind+"@"+string(rune('0'+e.Count)))
			}
		}
	}
	assert.Equal(t, []string{"low_stock@3", "low_stock_cleared@5", "low_stock@3"}, alerts)
}

func TestInitialCountAtThresholdRaisesLowStock(t *testing.T) {
	g := newRig(t, testRules(), nil, rice)
	g.feed(0, 120, 3)
	assert.Equal(t, []string{KindCount, KindLowStock}, kinds(g.take()))
}

// TestDropMatchedBySaleRecordedLater: the customer takes two, pays five
// minutes later; the window waits, the sale explains the drop, no shrink.
func TestDropMatchedBySaleRecordedLater(t *testing.T) {
	s := &sales{}
	r := testRules()
	r.offlineAfter = time.Hour
	g := newRig(t, r, s, rice)
	g.feed(0, 120+10*550, 3)
	g.feed(0, 120+8*550, 3)
	assert.Equal(t, []string{KindCount, KindCount}, kinds(g.take()))
	dropAt := g.now
	g.advance(5 * time.Minute)
	s.sell(dropAt.Add(5*time.Minute), 2)
	g.advance(4 * time.Minute)
	assert.Zero(t, s.calls, "nothing is decided before the window passes")
	g.advance(2 * time.Minute)
	assert.Equal(t, 1, s.calls)
	assert.Empty(t, g.take(), "the sale explains the drop")
}

func TestDropWithoutSaleIsShrink(t *testing.T) {
	s := &sales{}
	r := testRules()
	r.offlineAfter = time.Hour
	g := newRig(t, r, s, rice)
	g.feed(0, 120+10*550, 3)
	g.feed(0, 120+7*550, 3)
	g.take()
	s.sell(g.now.Add(time.Minute), 1) // one of the three was paid for
	g.advance(11 * time.Minute)
	evs := g.take()
	require.Equal(t, []string{KindShrink}, kinds(evs))
	assert.Equal(t, int64(2), evs[0].Count, "two units missing")
	assert.Contains(t, evs[0].Detail, "from 10 to 7")
	assert.True(t, evs[0].IsAlert())

	// That sale is used up: the next unexplained drop is shrink in full.
	g.feed(0, 120+6*550, 3)
	g.take()
	g.advance(11 * time.Minute)
	evs = g.take()
	require.Equal(t, []string{KindShrink}, kinds(evs))
	assert.Equal(t, int64(1), evs[0].Count)
}

func TestDropPutBackIsNotShrink(t *testing.T) {
	s := &sales{}
	r := testRules()
	r.offlineAfter = time.Hour
	g := newRig(t, r, s, rice)
	g.feed(0, 120+10*550, 3)
	g.feed(0, 120+9*550, 3) // picked up…
	g.feed(0, 120+10*550, 3)
	g.take() // …and put back
	g.advance(11 * time.Minute)
	assert.Empty(t, g.take())
	assert.Zero(t, s.calls, "no net drop: the till is not even asked")
}

func TestSalesErrorPostponesDecision(t *testing.T) {
	s := &sales{err: errors.New("database is locked")}
	r := testRules()
	r.offlineAfter = time.Hour
	g := newRig(t, r, s, rice)
	g.feed(0, 120+10*550, 3)
	g.feed(0, 120+9*550, 3)
	g.take()
	g.advance(11 * time.Minute)
	assert.Empty(t, g.take(), "no decision without the till")
	s.mu.Lock()
	s.err = nil
	s.mu.Unlock()
	g.advance(time.Second)
	assert.Equal(t, []string{KindShrink}, kinds(g.take()))
}

func TestOfflineThenOnline(t *testing.T) {
	g := newRig(t, testRules(), nil, rice, Slot{Slot: 1, SKU: "B", UnitG: 100, ToleranceG: 10})
	g.feed(0, 120+4*550, 3)
	g.take()
	g.advance(29 * time.Second)
	evs := g.take()
	require.Equal(t, []string{KindSensorOffline}, kinds(evs), "slot 1 never spoke")
	assert.Equal(t, 1, evs[0].Slot)
	assert.Contains(t, evs[0].Detail, "since the shelf opened")
	g.advance(2 * time.Second)
	evs = g.take()
	require.Equal(t, []string{KindSensorOffline}, kinds(evs))
	assert.Equal(t, 0, evs[0].Slot)
	assert.True(t, g.c.allOffline())
	g.advance(time.Hour)
	assert.Empty(t, g.take(), "offline is reported once")

	g.feed(0, 120+4*550, 1)
	evs = g.take()
	require.Equal(t, []string{KindSensorOnline}, kinds(evs))
	assert.Equal(t, int64(4), evs[0].Count)
	g.feed(0, 120+4*550, 3)
	assert.Empty(t, g.take(), "the same count after coming back is no change")
	assert.False(t, g.c.allOffline())
}
