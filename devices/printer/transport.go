package printer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edgepos/edgepos/devices/serialport"
)

// Transport carries bytes to a printer and its status replies back. The
// Printer driver serialises calls; implementations need not be safe for
// concurrent use.
//
// Errors wrap ErrConnect when the printer cannot be reached, ErrConnLost
// when an open connection broke (the transport has dropped it; the next
// call reconnects), os.ErrDeadlineExceeded when nothing came back in time,
// and ErrStatusUnsupported when the transport cannot read at all.
type Transport interface {
	// Write sends all of p before ctx's deadline, connecting first if
	// needed. On error the connection is dropped; the next call reconnects.
	Write(ctx context.Context, p []byte) error
	// Read reads at least one byte, waiting until ctx's deadline or until
	// ctx is cancelled.
	Read(ctx context.Context, p []byte) (int, error)
	// Reset discards a connection that may hold stale replies (after a
	// status timeout); the next call starts fresh.
	Reset() error
	// Close releases the connection.
	Close() error
	// String names the endpoint for logs, e.g. "tcp://10.0.0.5:9100".
	String() string
}

// deadline returns ctx's deadline, or now+def.
func deadline(ctx context.Context, def time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(def)
}

// deadliner is a connection whose blocked I/O a deadline in the past
// interrupts (net.Conn, a pollable *os.File).
type deadliner interface{ SetDeadline(time.Time) error }

// interruptOnCancel makes a cancelled ctx interrupt blocked I/O on c at
// once instead of at the deadline; call the returned stop after the I/O.
// stop waits for an interrupt already under way, so it cannot land on the
// next I/O (which sets its own deadline first).
func interruptOnCancel(ctx context.Context, c deadliner) (stop func()) {
	done := make(chan struct{})
	after := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = c.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !after() {
			<-done
		}
	}
}

// transmitter is a transport that knows how long bytes take on the wire
// (a serial line at 9600 baud is slow enough to matter).
type transmitter interface{ TransmitTime(n int) time.Duration }

// lost reports whether err means the peer closed or reset the connection
// rather than a timeout.
func lost(err error) bool {
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TCP is a raw TCP (port 9100) transport. It keeps ONE persistent
// connection and never opens a second one in parallel: many printers take
// one session at a time, a second connection times out, and some stop
// accepting sockets when a client opens a new one per job
// (DEVICE-PROTOCOLS.md §1, "Port 9100 takes one session at a time"). After
// an error the connection is closed before the next one is dialled.
type TCP struct {
	// Address is host:port, usually port 9100.
	Address string
	// DialTimeout bounds connecting; default 5 s.
	DialTimeout time.Duration
	// Dial is the dial function (tests swap it); default net.Dialer with
	// TCP keep-alive, so a printer switched off is noticed.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	conn net.Conn
}

// NewTCP returns a TCP transport to address ("host:9100").
func NewTCP(address string) *TCP { return &TCP{Address: address} }

func (t *TCP) connect(ctx context.Context) (net.Conn, error) {
	if t.conn != nil {
		return t.conn, nil
	}
	dt := t.DialTimeout
	if dt == 0 {
		dt = 5 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, dt)
	defer cancel()
	dial := t.Dial
	if dial == nil {
		dial = (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext
	}
	c, err := dial(dctx, "tcp", t.Address)
	if err != nil {
		return nil, fmt.Errorf("dial printer %s: %w: %w", t.Address, ErrConnect, err)
	}
	t.conn = c
	return c, nil
}

func (t *TCP) drop() {
	if t.conn != nil {
		_ = t.conn.Close()
		t.conn = nil
	}
}

// Write implements Transport.
func (t *TCP) Write(ctx context.Context, p []byte) error {
	c, err := t.connect(ctx)
	if err != nil {
		return err
	}
	if err := c.SetWriteDeadline(deadline(ctx, 30*time.Second)); err != nil {
		t.drop()
		return fmt.Errorf("write printer %s: %w: %w", t.Address, ErrConnLost, err)
	}
	stop := interruptOnCancel(ctx, c)
	_, err = c.Write(p)
	stop()
	if err != nil {
		// Part of p may be in the printer: the connection cannot be
		// trusted to be at a command boundary any more.
		t.drop()
		return fmt.Errorf("write printer %s: %w: %w", t.Address, ErrConnLost, err)
	}
	return nil
}

// Read implements Transport.
func (t *TCP) Read(ctx context.Context, p []byte) (int, error) {
	c, err := t.connect(ctx)
	if err != nil {
		return 0, err
	}
	if err := c.SetReadDeadline(deadline(ctx, 5*time.Second)); err != nil {
		t.drop()
		return 0, fmt.Errorf("read printer %s: %w: %w", t.Address, ErrConnLost, err)
	}
	stop := interruptOnCancel(ctx, c)
	n, err := c.Read(p)
	stop()
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = os.ErrDeadlineExceeded
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("read printer %s: %w", t.Address, ctx.Err())
	}
	if lost(err) {
		t.drop() // EOF or reset: the printer closed the session
		return 0, fmt.Errorf("read printer %s: %w: %w", t.Address, ErrConnLost, err)
	}
	return 0, fmt.Errorf("read printer %s: %w", t.Address, err)
}

// Reset implements Transport: the connection is closed.
func (t *TCP) Reset() error {
	t.drop()
	return nil
}

// Close implements Transport.
func (t *TCP) Close() error { return t.Reset() }

// String implements Transport.
func (t *TCP) String() string { return "tcp://" + t.Address }

// Serial is a transport over a serial port (RS-232 or USB CDC-ACM
// printers; 9600 8N1 is common). The port is opened on first use and
// reopened after a failure, so a printer plugged in late is picked up.
//
// tarm/serial has no write deadline: its port is in blocking mode, so a
// write blocks in the kernel until the tty's output queue has room. A
// printer that stops taking data (a USB-serial printer out of paper, a
// paused device, a pseudo-terminal nobody reads) would hold the print
// worker there for good. So Write runs the write on a goroutine of its own
// and gives up at ctx's deadline: the job fails as a lost connection, and
// the port is closed once the stuck write returns. Until then the transport
// refuses to reopen the port (a second handle's bytes would queue behind
// the stuck ones), so the printer reads as offline and no second writer
// piles up. Close flushes the tty's output queue to end a stuck write.
type Serial struct {
	Config serialport.Config
	// Open opens the port; default serialport.Open.
	Open serialport.Opener

	port serialport.Port
	// stuck is set while a write that outlived its deadline is still in
	// the kernel; it is closed when that write has returned and its port
	// is closed.
	stuck *stuckWrite
}

// stuckWrite is a write that outlived its deadline.
type stuckWrite struct {
	since time.Time
	done  chan struct{} // closed once the write returned and the port closed
}

// NewSerial returns a serial transport.
func NewSerial(cfg serialport.Config) *Serial { return &Serial{Config: cfg.WithDefaults()} }

func (s *Serial) connect() (serialport.Port, error) {
	if s.stuck != nil {
		select {
		case <-s.stuck.done:
			s.stuck = nil
		default:
			return nil, fmt.Errorf("open printer %s: %w: a write from %s ago has not gone out yet (the printer is not taking data)",
				s.Config.Path, ErrConnect, time.Since(s.stuck.since).Round(time.Millisecond))
		}
	}
	if s.port != nil {
		return s.port, nil
	}
	open := s.Open
	if open == nil {
		open = serialport.Open
	}
	p, err := open(s.Config)
	if err != nil {
		return nil, fmt.Errorf("open printer %s: %w: %w", s.Config.Path, ErrConnect, err)
	}
	s.port = p
	return p, nil
}

func (s *Serial) drop() {
	if s.port != nil {
		_ = s.port.Close()
		s.port = nil
	}
}

// Write implements Transport. It returns at ctx's deadline or cancellation
// even when the port does not take the bytes (see Serial).
func (s *Serial) Write(ctx context.Context, p []byte) error {
	port, err := s.connect()
	if err != nil {
		return err
	}
	res := make(chan error, 1)
	go func() { // owned by s: it ends when the kernel returns the write
		_, err := port.Write(p)
		res <- err
	}()
	select {
	case err := <-res:
		if err != nil {
			s.drop()
			return fmt.Errorf("write printer %s: %w: %w", s.Config.Path, ErrConnLost, err)
		}
		return nil
	case <-ctx.Done():
	}
	// The bytes are stuck in the tty's output queue. Hand the port to a
	// goroutine that closes it once the write returns (serialport's rule:
	// close only after the call using the port has returned).
	st := &stuckWrite{since: time.Now(), done: make(chan struct{})}
	s.port, s.stuck = nil, st
	go func() {
		defer close(st.done)
		<-res
		// The job already failed as a lost connection; a close error on
		// a port being given up has no one left to act on it.
		_ = port.Close()
	}()
	err = ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		err = os.ErrDeadlineExceeded
	}
	return fmt.Errorf("write printer %s: %w: %d bytes not taken in time: %w", s.Config.Path, ErrConnLost, len(p), err)
}

// endStuck ends a stuck write by flushing the tty's output queue through
// a second handle (TCFLSH acts on the tty, not on one descriptor), until
// the write returns or wait runs out. The bytes flushed belong to a job
// that already failed.
func (s *Serial) endStuck(wait time.Duration) error {
	st := s.stuck
	if st == nil {
		return nil
	}
	end := time.Now().Add(wait)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if fd, err := unix.Open(s.Config.Path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH)
			// Suspend and resume output: resuming wakes a writer asleep
			// on the queue (a pty's flush alone does not).
			_ = unix.IoctlSetInt(fd, unix.TCXONC, unix.TCOOFF)
			_ = unix.IoctlSetInt(fd, unix.TCXONC, unix.TCOON)
			_ = unix.Close(fd) // a second handle, used for the ioctls only
		}
		select {
		case <-st.done:
			s.stuck = nil
			return nil
		case <-t.C:
		}
		if time.Now().After(end) {
			return fmt.Errorf("close printer %s: a write from %s ago is still in the kernel", s.Config.Path, time.Since(st.since).Round(time.Millisecond))
		}
	}
}

// Read implements Transport: it polls the port (each Read waits at most
// the port's read timeout, 100 ms by default) until ctx's deadline.
func (s *Serial) Read(ctx context.Context, p []byte) (int, error) {
	port, err := s.connect()
	if err != nil {
		return 0, err
	}
	end := deadline(ctx, 5*time.Second)
	for {
		n, err := port.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			s.drop()
			return 0, fmt.Errorf("read printer %s: %w: %w", s.Config.Path, ErrConnLost, err)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("read printer %s: %w", s.Config.Path, ctx.Err())
		}
		if !time.Now().Before(end) {
			return 0, fmt.Errorf("read printer %s: %w", s.Config.Path, os.ErrDeadlineExceeded)
		}
	}
}

// TransmitTime returns how long n bytes take on the line (start bit, data
// bits, parity, stop bits per byte). Print waits this much longer for the
// status answer after a job: the printer can answer only once the job
// ahead of the request has gone out, about 3 s for a 3 KB receipt at 9600
// baud, which a plain status timeout would take for a silent printer.
func (s *Serial) TransmitTime(n int) time.Duration {
	c := s.Config.WithDefaults()
	bits := 1 + c.DataBits + c.StopBits
	if c.Parity != serialport.ParityNone {
		bits++
	}
	return time.Duration(n*bits) * time.Second / time.Duration(c.Baud)
}

// Reset implements Transport: the port is closed and reopened on next use,
// which also discards stale replies.
func (s *Serial) Reset() error {
	s.drop()
	return nil
}

// Close implements Transport. It also ends a stuck write (see Serial),
// waiting at most 2 s for it.
func (s *Serial) Close() error {
	s.drop()
	return s.endStuck(2 * time.Second)
}

// String implements Transport.
func (s *Serial) String() string { return "serial://" + s.Config.Path }

// USB is a transport over a USB printer-class device file (/dev/usb/lp0,
// or its udev link /dev/edgepos/printer0) opened read-write as a file
// (DEVICE-PROTOCOLS.md §1, "/dev/usb/lp0 written as a file").
//
// Status replies need a printer with a back channel: the kernel's usblp
// driver answers a read on a unidirectional printer with EINVAL, and a
// path that is not a pollable device has no read deadline. Both are
// reported as ErrStatusUnsupported, so such a printer is never taken for
// a healthy one; configure it with StatusNone to print without
// confirmation.
type USB struct {
	Path string

	f *os.File
}

// NewUSB returns a USB printer-class transport.
func NewUSB(path string) *USB { return &USB{Path: path} }

func (u *USB) connect() (*os.File, error) {
	if u.f != nil {
		return u.f, nil
	}
	f, err := os.OpenFile(u.Path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open printer %s: %w: %w", u.Path, ErrConnect, err)
	}
	u.f = f
	return f, nil
}

func (u *USB) drop() {
	if u.f != nil {
		_ = u.f.Close()
		u.f = nil
	}
}

// Write implements Transport. usblp refuses writes with EAGAIN while the
// printer is out of paper; the runtime poller waits for it up to the
// deadline, so a stuck printer fails the write instead of blocking.
func (u *USB) Write(ctx context.Context, p []byte) error {
	f, err := u.connect()
	if err != nil {
		return err
	}
	if f.SetWriteDeadline(deadline(ctx, 30*time.Second)) == nil { // not every file polls
		defer interruptOnCancel(ctx, f)()
	}
	if _, err := f.Write(p); err != nil {
		u.drop()
		return fmt.Errorf("write printer %s: %w: %w", u.Path, ErrConnLost, err)
	}
	return nil
}

// Read implements Transport.
func (u *USB) Read(ctx context.Context, p []byte) (int, error) {
	f, err := u.connect()
	if err != nil {
		return 0, err
	}
	if err := f.SetReadDeadline(deadline(ctx, 5*time.Second)); err != nil {
		return 0, fmt.Errorf("read printer %s: %w: %w", u.Path, ErrStatusUnsupported, err)
	}
	stop := interruptOnCancel(ctx, f)
	n, err := f.Read(p)
	stop()
	if n > 0 {
		return n, nil
	}
	switch {
	case err == nil:
		err = os.ErrDeadlineExceeded
	case errors.Is(err, syscall.EINVAL):
		return 0, fmt.Errorf("read printer %s: %w: %w", u.Path, ErrStatusUnsupported, err)
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("read printer %s: %w", u.Path, ctx.Err())
	}
	if lost(err) {
		u.drop() // ENODEV, EIO: unplugged
		return 0, fmt.Errorf("read printer %s: %w: %w", u.Path, ErrConnLost, err)
	}
	return 0, fmt.Errorf("read printer %s: %w", u.Path, err)
}

// Reset implements Transport.
func (u *USB) Reset() error {
	u.drop()
	return nil
}

// Close implements Transport.
func (u *USB) Close() error { return u.Reset() }

// String implements Transport.
func (u *USB) String() string { return "usb://" + u.Path }
