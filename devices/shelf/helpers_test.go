package shelf_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/shelf"
)

const wait = 10 * time.Second

// collector records every event a shelf delivers, read by a goroutine the
// test owns.
type collector struct {
	mu  sync.Mutex
	evs []shelf.Event
}

func collect(t *testing.T, ch <-chan shelf.Event) *collector {
	t.Helper()
	c := &collector{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case e := <-ch:
				c.mu.Lock()
				c.evs = append(c.evs, e)
				c.mu.Unlock()
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait() })
	return c
}

// wait returns the first event of kind (after skip earlier ones of that
// kind) that satisfies ok, waiting up to the deadline.
func (c *collector) wait(t *testing.T, kind string, ok func(shelf.Event) bool) shelf.Event {
	t.Helper()
	var got shelf.Event
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.evs {
			if e.Kind == kind && (ok == nil || ok(e)) {
				got = e
				return true
			}
		}
		return false
	}, wait, 5*time.Millisecond, "no %s event; have %v", kind, c.summary())
	return got
}

func (c *collector) count(kind string, slot int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.evs {
		if e.Kind == kind && e.Slot == slot {
			n++
		}
	}
	return n
}

func (c *collector) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for _, e := range c.evs {
		s += fmt.Sprintf("[%s slot %d count %d] ", e.Kind, e.Slot, e.Count)
	}
	return s
}

func countIs(slot int, n int64) func(shelf.Event) bool {
	return func(e shelf.Event) bool { return e.Slot == slot && e.Count == n }
}

func start(t *testing.T, cfg shelf.Config, opt shelf.Options) (*shelf.Shelf, *collector) {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(t)
	}
	s := shelf.New(cfg, opt)
	require.NoError(t, s.Open(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	var c *collector
	if s.Events() != nil {
		c = collect(t, s.Events())
	}
	return s, c
}

func waitState(t *testing.T, st <-chan devices.Status, want devices.State, contains string) devices.Status {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case s := <-st:
			if s.State == want && (contains == "" || strings.Contains(s.Reason, contains)) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %s status containing %q", want, contains)
		}
	}
}

// testLogger discards logs unless SHELF_TEST_LOG=1 (then stderr): a
// driver's goroutines may log while the test is finishing.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if os.Getenv("SHELF_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}
