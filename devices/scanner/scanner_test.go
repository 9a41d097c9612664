package scanner

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/scanner/scannersim"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const wait = 10 * time.Second

func portCfg(path string) serialport.Config { return serialport.Config{Path: path} }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSim(t *testing.T) *scannersim.Scanner {
	t.Helper()
	sim, err := scannersim.New(filepath.Join(t.TempDir(), "scanner0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func start(t *testing.T, cfg Config, opt Options) *Scanner {
	t.Helper()
	s := New(cfg, opt)
	require.NoError(t, s.Open(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func recv(t *testing.T, ch <-chan Scan) Scan {
	t.Helper()
	select {
	case sc := <-ch:
		return sc
	case <-time.After(wait):
		t.Fatal("no scan")
		return Scan{}
	}
}

func waitState(t *testing.T, st <-chan devices.Status, want devices.State) devices.Status {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case s := <-st:
			if s.State == want {
				return s
			}
		case <-deadline:
			t.Fatalf("no %s status", want)
		}
	}
}

func TestScansWithAIMAndCRLF(t *testing.T) {
	sim := newSim(t)
	sim.Suffix = "\r\n"
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(16)
	defer cancel()
	s := start(t, Config{Name: "lane1", Port: portCfg(sim.Path()), Suffix: SuffixCRLF, AIM: true}, Options{Hub: hub})
	waitState(t, st, devices.StateIdle)

	require.NoError(t, sim.Scan("]E0", "4006381333931"))
	require.NoError(t, sim.Scan("]C1", "0109501101530003"))
	sc := recv(t, s.Scans())
	assert.Equal(t, Scan{Device: "lane1", Code: "4006381333931", Symbology: SymEAN13, AIM: "]E0", At: sc.At}, sc)
	assert.Equal(t, time.UTC, sc.At.Location())
	sc = recv(t, s.Scans())
	assert.Equal(t, SymGS1128, sc.Symbology)
	assert.Equal(t, uint64(2), s.Stats().Scans)

	ctx, c := context.WithTimeout(context.Background(), wait)
	defer c()
	require.NoError(t, s.Close(ctx))
	assert.Equal(t, devices.StateClosed, s.Status().State)
	require.ErrorIs(t, s.Close(ctx), ErrNotOpen)
}

func TestGarbageAndPartialFramesAreRejectedAndCounted(t *testing.T) {
	sim := newSim(t)
	clk := newClock()
	s := start(t, Config{Name: "s", Port: portCfg(sim.Path()), MaxLen: 20, PartialTimeout: time.Second}, Options{Now: clk.Now})

	require.NoError(t, sim.WriteRaw([]byte("\x01\x02\x1b[Ajunk\r")))             // control bytes
	require.NoError(t, sim.WriteRaw([]byte("123456789012345678901234567890\r"))) // over-long
	require.NoError(t, sim.WriteRaw([]byte("\xff\xfe\r")))                       // invalid UTF-8
	require.NoError(t, sim.Scan("", "OK1"))
	assert.Equal(t, "OK1", recv(t, s.Scans()).Code, "a good scan after garbage is delivered")
	assert.Equal(t, uint64(3), s.Stats().Rejected)

	// A partial frame that never ends is dropped once the clock passes
	// PartialTimeout, and does not glue itself to the next code.
	require.NoError(t, sim.WriteRaw([]byte("999")))
	require.Eventually(t, func() bool {
		clk.Add(300 * time.Millisecond)
		return s.Stats().Rejected == 4
	}, wait, 20*time.Millisecond)
	require.NoError(t, sim.Scan("", "456"))
	assert.Equal(t, "456", recv(t, s.Scans()).Code)
	assert.Equal(t, uint64(2), s.Stats().Scans)
}

func TestDuplicateWithinWindowIsDropped(t *testing.T) {
	sim := newSim(t)
	clk := newClock()
	s := start(t, Config{Name: "s", Port: portCfg(sim.Path()), DedupWindow: 300 * time.Millisecond}, Options{Now: clk.Now})
	require.NoError(t, sim.Scan("", "A"))
	require.Equal(t, "A", recv(t, s.Scans()).Code)
	require.NoError(t, sim.Scan("", "A")) // same instant on the fake clock: a double read
	require.NoError(t, sim.Scan("", "B"))
	require.Equal(t, "B", recv(t, s.Scans()).Code)
	clk.Add(time.Second)
	require.NoError(t, sim.Scan("", "B")) // a second item, later
	require.Equal(t, "B", recv(t, s.Scans()).Code)
	assert.Equal(t, uint64(1), s.Stats().Duplicates)
}

// TestUnplugReplugLosesNothingAfterReturn is the replug scenario: the
// device vanishes (its pty hangs up and the udev-style symlink goes), the
// driver reports an error, the device comes back on a new pty at the same
// path, the driver reopens it by itself and every code sent after it is
// back arrives.
func TestUnplugReplugLosesNothingAfterReturn(t *testing.T) {
	sim := newSim(t)
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(64)
	defer cancel()
	s := start(t, Config{Name: "s", Port: portCfg(sim.Path()), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, Options{Hub: hub})
	waitState(t, st, devices.StateIdle)
	require.NoError(t, sim.Scan("", "before"))
	require.Equal(t, "before", recv(t, s.Scans()).Code)

	require.NoError(t, sim.Unplug())
	e := waitState(t, st, devices.StateError)
	assert.Contains(t, e.Reason, "disconnected")
	require.Error(t, sim.Scan("", "lost"), "nothing can be typed into an unplugged scanner")

	require.NoError(t, sim.Replug())
	waitState(t, st, devices.StateIdle)
	for i := range 20 {
		require.NoError(t, sim.Scan("", fmt.Sprintf("after-%02d", i)))
	}
	for i := range 20 {
		assert.Equal(t, fmt.Sprintf("after-%02d", i), recv(t, s.Scans()).Code)
	}
	assert.Equal(t, uint64(1), s.Stats().Reconnects)
}

func TestAbsentAtOpenThenPluggedIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scanner0")
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(64)
	defer cancel()
	s := start(t, Config{Name: "s", Port: portCfg(path), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, Options{Hub: hub})
	e := waitState(t, st, devices.StateError)
	assert.Contains(t, e.Reason, "not connected")
	sim, err := scannersim.New(path)
	require.NoError(t, err)
	defer sim.Close()
	waitState(t, st, devices.StateIdle)
	require.NoError(t, sim.Scan("", "x"))
	assert.Equal(t, "x", recv(t, s.Scans()).Code)
	assert.Zero(t, s.Stats().Reconnects, "a first connect is not a reconnect")
}

func TestSlowConsumerLosesNothing(t *testing.T) {
	sim := newSim(t)
	out := make(chan Scan) // unbuffered, nobody reading yet
	start(t, Config{Name: "s", Port: portCfg(sim.Path())}, Options{Out: out})
	for i := range 100 {
		require.NoError(t, sim.Scan("", fmt.Sprintf("c%03d", i)))
	}
	for i := range 100 {
		assert.Equal(t, fmt.Sprintf("c%03d", i), recv(t, out).Code)
	}
}

func TestTwoScannersOneChannel(t *testing.T) {
	a, b := newSim(t), newSim(t)
	out := make(chan Scan, 4)
	start(t, Config{Name: "a", Port: portCfg(a.Path())}, Options{Out: out})
	start(t, Config{Name: "b", Port: portCfg(b.Path())}, Options{Out: out})
	require.NoError(t, a.Scan("", "1"))
	require.NoError(t, b.Scan("", "2"))
	got := map[string]string{}
	for range 2 {
		sc := recv(t, out)
		got[sc.Device] = sc.Code
	}
	assert.Equal(t, map[string]string{"a": "1", "b": "2"}, got)
}

func TestOpenRejectsBadConfig(t *testing.T) {
	s := New(Config{Name: "s", Port: portCfg("/dev/x"), Suffix: "eot"}, Options{})
	require.ErrorIs(t, s.Open(context.Background()), ErrBadConfig)
}
