package devices

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHubDropsOldestAndNeverBlocks(t *testing.T) {
	h := NewHub()
	ch, cancel := h.Subscribe(2)
	defer cancel()
	for i, st := range []State{StateIdle, StateBusy, StateError} {
		h.Publish(Status{Device: "p", Kind: KindPrinter, State: st, Reason: string(rune('a' + i))})
	}
	got := []State{(<-ch).State, (<-ch).State}
	assert.Equal(t, []State{StateBusy, StateError}, got)
	assert.Equal(t, uint64(1), h.Dropped())
}

func TestHubLateSubscriberGetsLast(t *testing.T) {
	h := NewHub()
	h.Publish(Status{Device: "s1", Kind: KindScanner, State: StateIdle})
	h.Publish(Status{Device: "s1", Kind: KindScanner, State: StateError, Reason: "gone"})
	ch, cancel := h.Subscribe(4)
	s := <-ch
	assert.Equal(t, StateError, s.State)
	cancel()
	_, ok := <-ch
	assert.False(t, ok, "cancel closes the channel")
	h.Close()
	ch2, _ := h.Subscribe(1)
	_, ok = <-ch2
	assert.False(t, ok)
}

func TestReporterSuppressesRepeats(t *testing.T) {
	h := NewHub()
	ch, cancel := h.Subscribe(8)
	defer cancel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	r := &Reporter{Device: "d", Kind: KindShelf, Hub: h, Now: func() time.Time { return at }}
	assert.Equal(t, StateClosed, r.Current().State)
	r.Set(StateIdle, "")
	r.Set(StateIdle, "")
	r.Set(StateError, "x")
	require.Len(t, ch, 2)
	s := <-ch
	assert.Equal(t, time.UTC, s.At.Location())
	assert.True(t, s.At.Equal(at))
}

func TestBackoffCappedWithJitter(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for i := 0; i < 20; i++ {
		d := b.Next()
		assert.LessOrEqual(t, d, 80*time.Millisecond)
		assert.GreaterOrEqual(t, d, 5*time.Millisecond)
	}
	b.Reset()
	assert.LessOrEqual(t, b.Next(), 10*time.Millisecond)
}

func TestThrottle(t *testing.T) {
	th := Throttle{Interval: time.Minute}
	t0 := time.Unix(0, 0)
	ok, _ := th.Allow(t0)
	assert.True(t, ok)
	ok, _ = th.Allow(t0.Add(time.Second))
	assert.False(t, ok)
	ok, _ = th.Allow(t0.Add(2 * time.Second))
	assert.False(t, ok)
	ok, n := th.Allow(t0.Add(time.Minute))
	assert.True(t, ok)
	assert.Equal(t, 2, n)
}

func TestWait(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Add(1)
	go func() { defer wg.Done(); <-release }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Wait(ctx, &wg), context.Canceled, "a goroutine still running: ctx's error")
	close(release)
	require.NoError(t, Wait(context.Background(), &wg))
}
