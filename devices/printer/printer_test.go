package printer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/serialport/ptysim"
)

var quiet = slog.New(slog.DiscardHandler)

// virtual starts a virtual printer on an ephemeral port.
func virtual(tb testing.TB) (*virtualprinter.Printer, string) {
	tb.Helper()
	vp := virtualprinter.New()
	addr, err := vp.Listen("127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { vp.Close() })
	return vp, addr
}

// open opens a driver over tr; the poller is off unless cfg sets it.
func open(tb testing.TB, tr Transport, cfg Config) *Printer {
	tb.Helper()
	if cfg.Name == "" {
		cfg.Name = "printer0"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = -1
	}
	if cfg.StatusTimeout == 0 {
		cfg.StatusTimeout = time.Second
	}
	p := New(cfg, tr, Options{Logger: quiet})
	require.NoError(tb, p.Open(context.Background()))
	tb.Cleanup(func() { p.Close(context.Background()) })
	// the first status check runs at Open; let it land before the test
	require.Eventually(tb, func() bool { return p.State().State != devices.StateClosed }, 5*time.Second, time.Millisecond)
	return p
}

func receiptBytes(tb testing.TB) []byte {
	tb.Helper()
	out, err := Render(sampleReceipt(false), Layout{Width: 80})
	require.NoError(tb, err)
	return out.Data
}

func jobErr(tb testing.TB, err error) *JobError {
	tb.Helper()
	var je *JobError
	require.ErrorAs(tb, err, &je)
	return je
}

func TestPrintConfirmedOnHealthyPrinter(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	data := receiptBytes(t)
	ctx := context.Background()
	before := vp.StatusRequests()
	require.NoError(t, p.Print(ctx, "job-1", data))
	jobs := vp.Jobs()
	require.Len(t, jobs, 1)
	assert.Equal(t, data, jobs[0].Raw, "the printer got the job byte for byte")
	assert.Equal(t, 8, vp.StatusRequests()-before, "DLE EOT 1..4 before and after")
	assert.Equal(t, devices.StateIdle, p.State().State)
	require.NoError(t, p.Print(ctx, "job-2", data))
	assert.Len(t, vp.Jobs(), 2)
	assert.Equal(t, 1, vp.Accepted(), "one persistent connection for every job")
	assert.Equal(t, Stats{Printed: 2}, p.Stats())
}

// TestPaperOutBeforeJob: the printer says paper end before the job, so no
// byte of the job is sent and the error is retryable; with paper back the
// job prints once.
func TestPaperOutBeforeJob(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	vp.SetPaperOut(true)
	err := p.Print(context.Background(), "job-1", receiptBytes(t))
	je := jobErr(t, err)
	assert.Equal(t, StageBefore, je.Stage)
	assert.False(t, je.Sent)
	assert.ErrorIs(t, err, ErrPaperOut)
	assert.True(t, IsRetryable(err))
	assert.Equal(t, "paper end", je.Problems)
	assert.Zero(t, vp.JobBytes(), "no byte of the job reached the printer")
	assert.Equal(t, devices.Status{Device: "printer0", Kind: "printer", State: devices.StateError, Reason: "paper end", At: p.State().At}, p.State())
	assert.True(t, p.LastStatus().NoPaper())

	vp.SetPaperOut(false)
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
	assert.Empty(t, vp.Partials())
	assert.Equal(t, devices.StateIdle, p.State().State)
}

// TestPaperOutMidJob: the paper runs out during the job; the after-job
// status shows it, the error is retryable with Sent set, and the retry
// prints the whole receipt.
func TestPaperOutMidJob(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	vp.PaperOutAfter(300)
	err := p.Print(context.Background(), "job-1", receiptBytes(t))
	je := jobErr(t, err)
	assert.Equal(t, StageAfter, je.Stage)
	assert.True(t, je.Sent, "part of the job may be on paper")
	assert.ErrorIs(t, err, ErrPaperOut)
	assert.True(t, IsRetryable(err))
	assert.Empty(t, vp.Jobs())
	require.Len(t, vp.Partials(), 1)
	assert.Equal(t, "paper out", vp.Partials()[0].Interrupted)

	vp.SetPaperOut(false)
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
}

// TestConfirmProcessed waits for GS r 1 after the job: the printer
// answers it only after processing the job, so a paper end during the job
// is seen from the answer itself.
func TestConfirmProcessed(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{ConfirmProcessed: true})
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Equal(t, 1, vp.BufferedRequests())
	vp.PaperOutAfter(100)
	err := p.Print(context.Background(), "job-2", receiptBytes(t))
	assert.ErrorIs(t, err, ErrPaperOut)
	assert.Equal(t, StageAfter, jobErr(t, err).Stage)
	assert.Len(t, vp.Jobs(), 1)

	require.ErrorContains(t, Config{ConfirmProcessed: true, StatusMode: StatusNone}.Validate(), "confirm_processed")
}

func TestCoverOpen(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	vp.SetCoverOpen(true)
	err := p.Print(context.Background(), "job-1", receiptBytes(t))
	assert.ErrorIs(t, err, ErrCoverOpen)
	assert.True(t, IsRetryable(err))
	assert.Equal(t, StageBefore, jobErr(t, err).Stage)
	assert.Zero(t, vp.JobBytes())
	assert.Equal(t, "cover open", p.State().Reason)

	vp.SetCoverOpen(false)
	vp.SetOffline(true)
	err = p.Print(context.Background(), "job-1", receiptBytes(t))
	assert.ErrorIs(t, err, ErrOffline)
	assert.Equal(t, "offline", p.State().Reason)
}

// TestConnectionDroppedMidReceipt: the printer closes the TCP session in
// the middle of the receipt. The job fails retryable with Sent set; the
// next attempt reconnects (never a second socket in parallel) and prints.
func TestConnectionDroppedMidReceipt(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	vp.DropAfter(500)
	err := p.Print(context.Background(), "job-1", receiptBytes(t))
	je := jobErr(t, err)
	assert.True(t, je.Sent)
	assert.NotEqual(t, StageBefore, je.Stage)
	assert.True(t, IsRetryable(err), "%v", err)
	require.Eventually(t, func() bool { return len(vp.Partials()) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "connection dropped", vp.Partials()[0].Interrupted)
	assert.Empty(t, vp.Jobs())
	assert.Equal(t, devices.StateError, p.State().State)

	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, 2, vp.Accepted(), "reconnected once")
	assert.Equal(t, 1, vp.MaxConcurrentConns(), "never two sockets at once")
}

// TestIdleSessionClosedByPrinter: printers close idle sessions; the status
// check before a job reconnects once instead of failing the job.
func TestIdleSessionClosedByPrinter(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	_, err := p.Status(context.Background())
	require.NoError(t, err)
	vp.DropAfter(0) // at the next byte
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, 2, vp.Accepted())
	assert.Equal(t, 1, vp.MaxConcurrentConns())
}

// TestSilentPrinter: a printer that never answers DLE EOT is not taken for
// a healthy one: the job times out before any byte is sent, retryable,
// and the state is an error.
func TestSilentPrinter(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{StatusTimeout: 150 * time.Millisecond})
	vp.SetSilent(true)
	err := p.Print(context.Background(), "job-1", receiptBytes(t))
	assert.ErrorIs(t, err, ErrNoStatus)
	assert.True(t, IsRetryable(err))
	assert.Equal(t, StageBefore, jobErr(t, err).Stage)
	assert.Zero(t, vp.JobBytes())
	assert.Equal(t, devices.Status{Device: "printer0", Kind: "printer", State: devices.StateError, Reason: ReasonNoStatus, At: p.State().At}, p.State())
	assert.Equal(t, uint64(1), p.Stats().Timeouts)

	vp.SetSilent(false)
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, 1, vp.MaxConcurrentConns())
}

// TestGarbageInStatusReplies: bytes without the fixed bits of a DLE EOT
// answer are skipped and counted; garbage and no answer is no status.
func TestGarbageInStatusReplies(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{StatusTimeout: 200 * time.Millisecond})
	vp.SetReplyGarbage([]byte{0x00, 0xFF, 'A', 0x80})
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, uint64(8*4), p.Stats().Garbage)

	vp.SetSilent(true) // garbage only
	err := p.Print(context.Background(), "job-2", receiptBytes(t))
	assert.ErrorIs(t, err, ErrNoStatus)
	assert.Equal(t, StageBefore, jobErr(t, err).Stage)
	assert.Len(t, vp.Jobs(), 1)
}

// TestPrinterAbsentAtOpen: Open succeeds with nothing listening; the
// state says not connected; when the printer appears the poller sees it.
func TestPrinterAbsentAtOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	hub := devices.NewHub()
	states, cancel := hub.Subscribe(16)
	defer cancel()
	p := New(Config{Name: "printer0", PollInterval: 30 * time.Millisecond, StatusTimeout: time.Second}, NewTCP(addr), Options{Logger: quiet, Hub: hub})
	require.NoError(t, p.Open(context.Background()))
	defer p.Close(context.Background())
	waitState(t, states, devices.StateError, ReasonNotConnected)
	err = p.Print(context.Background(), "job-1", []byte("x"))
	assert.ErrorIs(t, err, ErrNotConnected)
	assert.True(t, IsRetryable(err))

	vp := virtualprinter.New()
	_, err = vp.Listen(addr)
	require.NoError(t, err)
	defer vp.Close()
	waitState(t, states, devices.StateIdle, "")
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 1)
}

func waitState(tb testing.TB, ch <-chan devices.Status, st devices.State, reason string) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if s.State == st && s.Reason == reason {
				return
			}
		case <-deadline:
			tb.Fatalf("no %s %q state", st, reason)
		}
	}
}

func TestKickDrawer(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{})
	vp.SetPaperOut(true) // a drawer opens without paper
	require.NoError(t, p.KickDrawer(context.Background()))
	require.Eventually(t, func() bool { return vp.DrawerKicks() == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Empty(t, vp.Jobs())
	assert.Empty(t, vp.Partials(), "a kick is not a receipt")
}

// TestOneConnectionUnderConcurrency: jobs, polls and drawer kicks from
// many goroutines share the one socket.
func TestOneConnectionUnderConcurrency(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{PollInterval: 5 * time.Millisecond})
	data := receiptBytes(t)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 10 {
		wg.Add(3)
		go func() { defer wg.Done(); errs <- p.Print(context.Background(), "job", data) }()
		go func() { defer wg.Done(); _, err := p.Status(context.Background()); errs <- err }()
		go func() { defer wg.Done(); errs <- p.KickDrawer(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, vp.Jobs(), 10)
	for _, j := range vp.Jobs() {
		assert.Equal(t, data, j.Raw, "no job interleaved with another command")
	}
	require.Eventually(t, func() bool { return vp.DrawerKicks() == 10 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, vp.Accepted())
}

func TestBusyPrinterBoundsTheWait(t *testing.T) {
	vp, addr := virtual(t)
	p := open(t, NewTCP(addr), Config{StatusTimeout: 300 * time.Millisecond})
	vp.SetSilent(true)
	before := vp.StatusRequests()
	done := make(chan error, 1)
	go func() { done <- p.Print(context.Background(), "slow", receiptBytes(t)) }()
	require.Eventually(t, func() bool { return vp.StatusRequests() > before }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.KickDrawer(ctx)
	assert.ErrorIs(t, err, ErrBusy)
	assert.ErrorIs(t, <-done, ErrNoStatus)
}

func TestStatusNonePrintsUnconfirmed(t *testing.T) {
	vp, addr := virtual(t)
	vp.SetSilent(true)
	p := open(t, NewTCP(addr), Config{StatusMode: StatusNone})
	assert.Equal(t, devices.Status{Device: "printer0", Kind: "printer", State: devices.StateIdle, Reason: ReasonUnconfirmed, At: p.State().At}, p.State())
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	require.Eventually(t, func() bool { return len(vp.Jobs()) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, vp.StatusRequests())

	_, err := ParseStatusMode("sometimes")
	assert.ErrorIs(t, err, ErrBadConfig)
}

func TestBadJobAndLifecycle(t *testing.T) {
	_, addr := virtual(t)
	p := New(Config{PollInterval: -1}, NewTCP(addr), Options{Logger: quiet})
	assert.Equal(t, "tcp://"+addr, p.Name())
	err := p.Print(context.Background(), "j", []byte("x"))
	assert.ErrorIs(t, err, ErrNotOpen)
	require.NoError(t, p.Open(context.Background()))
	require.Error(t, p.Open(context.Background()), "already open")
	err = p.Print(context.Background(), "j", nil)
	assert.ErrorIs(t, err, ErrBadJob)
	assert.False(t, IsRetryable(err), "an empty job never prints")
	require.NoError(t, p.Close(context.Background()))
	assert.ErrorIs(t, p.Close(context.Background()), ErrNotOpen)
	assert.Equal(t, devices.StateClosed, p.State().State)

	require.ErrorIs(t, New(Config{DrawerOnMS: 1000}, NewTCP(addr), Options{}).Open(context.Background()), ErrBadConfig)
	require.ErrorIs(t, New(Config{}, nil, Options{}).Open(context.Background()), ErrBadConfig)
	assert.False(t, IsRetryable(nil))
	assert.True(t, IsRetryable(context.Canceled))
	assert.False(t, IsRetryable(errors.New("other")))
}

// servePTY runs the virtual printer on the device side of a simulated
// serial device until it is unplugged.
func servePTY(tb testing.TB, vp *virtualprinter.Printer, dev *ptysim.Device) {
	tb.Helper()
	done := make(chan struct{})
	go func() { defer close(done); _ = vp.Serve(context.Background(), dev) }()
	tb.Cleanup(func() { dev.Close(); <-done })
}

// TestSerialTransport prints through devices/serialport on a pty, is
// unplugged (state error, job retryable) and replugged (prints again).
func TestSerialTransport(t *testing.T) {
	dir := t.TempDir()
	dev, err := ptysim.New(filepath.Join(dir, "printer0"))
	require.NoError(t, err)
	vp := virtualprinter.New()
	servePTY(t, vp, dev)
	p := open(t, NewSerial(serialport.Config{Path: dev.Path()}), Config{StatusTimeout: 500 * time.Millisecond})
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	require.Len(t, vp.Jobs(), 1)
	assert.Equal(t, receiptBytes(t), vp.Jobs()[0].Raw)

	require.NoError(t, dev.Unplug())
	err = p.Print(context.Background(), "job-2", receiptBytes(t))
	assert.True(t, IsRetryable(err), "%v", err)
	assert.Equal(t, StageBefore, jobErr(t, err).Stage)
	assert.Equal(t, devices.StateError, p.State().State)

	require.NoError(t, dev.Replug())
	servePTY(t, vp, dev)
	require.NoError(t, p.Print(context.Background(), "job-2", receiptBytes(t)))
	assert.Len(t, vp.Jobs(), 2)
}

func TestSerialTransmitTime(t *testing.T) {
	assert.Equal(t, time.Second, NewSerial(serialport.Config{Path: "/dev/x"}).TransmitTime(960), "9600 8N1: 10 bits a byte")
	assert.InDelta(t, float64(100*time.Millisecond), float64(NewSerial(serialport.Config{Path: "/dev/x", Baud: 115200, Parity: serialport.ParityEven}).TransmitTime(1047)), float64(time.Millisecond), "11 bits with parity")
}

// TestUSBTransport writes to a character device file (the slave side of a
// pty stands in for /dev/usb/lp0) and reads status back from it.
func TestUSBTransport(t *testing.T) {
	dev, err := ptysim.New(filepath.Join(t.TempDir(), "lp0"))
	require.NoError(t, err)
	vp := virtualprinter.New()
	servePTY(t, vp, dev)
	p := open(t, NewUSB(dev.Path()), Config{})
	require.NoError(t, p.Print(context.Background(), "job-1", receiptBytes(t)))
	require.Len(t, vp.Jobs(), 1)
	assert.Equal(t, "usb://"+dev.Path(), NewUSB(dev.Path()).String())
}

// TestUSBWithoutBackChannel: a device file that cannot be read with a
// deadline gives no status; the driver says so instead of printing
// unconfirmed, and prints with StatusNone.
func TestUSBWithoutBackChannel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lp0")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	p := open(t, NewUSB(path), Config{})
	err := p.Print(context.Background(), "job-1", []byte("hello\n"))
	assert.ErrorIs(t, err, ErrStatusUnsupported)
	assert.ErrorIs(t, err, ErrNoStatus)
	assert.Equal(t, ReasonNoBackStatus, p.State().Reason)

	p2 := open(t, NewUSB(path), Config{StatusMode: StatusNone})
	data := receiptBytes(t)
	require.NoError(t, p2.Print(context.Background(), "job-1", data))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "the job went to the device file as it is")

	p3 := open(t, NewUSB(filepath.Join(t.TempDir(), "missing")), Config{})
	err = p3.Print(context.Background(), "job-1", data)
	assert.ErrorIs(t, err, ErrNotConnected)
	assert.Equal(t, ReasonNotConnected, p3.State().Reason)
}

// TestStatusParsingOfNoPaperAnswer: the 1A 32 7E answer of a printer
// without paper maps to paper out (DEVICE-PROTOCOLS.md §1).
func TestStatusParsingOfNoPaperAnswer(t *testing.T) {
	st, err := escpos.ParseStatus([]byte{0x1A, 0x32, 0x12, 0x7E})
	require.NoError(t, err)
	assert.ErrorIs(t, healthErr(st), ErrPaperOut)
}

// stallSerial opens a serial transport on a pty nobody reads and makes a
// 1 MiB write that cannot go out: it must fail at its deadline, not block.
func stallSerial(t *testing.T) (*ptysim.Device, *Serial, int) {
	t.Helper()
	dev, err := ptysim.New(filepath.Join(t.TempDir(), "printer0"))
	require.NoError(t, err)
	t.Cleanup(func() { dev.Close() })
	s := NewSerial(serialport.Config{Path: dev.Path()})
	big := bytes.Repeat([]byte{'x'}, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = s.Write(ctx, big)
	require.ErrorIs(t, err, ErrConnLost)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NotNil(t, s.stuck, "the write is still in the kernel")
	return dev, s, len(big)
}

// TestSerialWriteToAPrinterNotTakingData: a port that takes no bytes fails
// the job at the deadline, the printer reads as unreachable while the
// bytes are stuck (no second writer), and it prints again once the device
// takes data.
func TestSerialWriteToAPrinterNotTakingData(t *testing.T) {
	dev, s, n := stallSerial(t)
	err := s.Write(context.Background(), []byte("next"))
	require.ErrorIs(t, err, ErrConnect, "no second handle while the first write is stuck")
	require.Contains(t, err.Error(), "not taking data")
	_, err = s.Read(context.Background(), make([]byte, 1))
	require.ErrorIs(t, err, ErrConnect)

	var mu sync.Mutex
	var got []byte
	drained := make(chan struct{})
	go func() { // the printer takes data again
		defer close(drained)
		b := make([]byte, 64<<10)
		for {
			k, err := dev.Read(b)
			mu.Lock()
			got = append(got, b[:k]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-s.stuck.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck write did not end once the device read")
	}
	require.NoError(t, s.Write(context.Background(), []byte("AFTER")))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == n+5 && bytes.HasSuffix(got, []byte("AFTER"))
	}, 10*time.Second, 5*time.Millisecond, "the stuck job went out, then the next one on a fresh port")
	require.NoError(t, s.Close())
	require.NoError(t, dev.Unplug())
	<-drained
}

// TestSerialCloseEndsAStuckWrite: Close flushes the tty's output queue so
// the writing goroutine returns, even though nobody ever reads the device.
func TestSerialCloseEndsAStuckWrite(t *testing.T) {
	_, s, _ := stallSerial(t)
	st := s.stuck
	require.NoError(t, s.Close())
	select {
	case <-st.done:
	default:
		t.Fatal("Close returned with the write still stuck")
	}
	require.Nil(t, s.stuck)
}
