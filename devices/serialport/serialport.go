// Package serialport opens RS-232/RS-485 serial devices for the edgepos
// drivers through github.com/tarm/serial, behind a small Port interface so
// drivers can be tested on a pseudo-terminal (see package ptysim).
//
// It handles tarm's known traps in one place:
//   - Without a read timeout, Close blocks until the next byte arrives, so
//     a Config always has one (default 100 ms, tarm's resolution).
//   - With a timeout, tarm reports "no byte yet" as (0, io.EOF), exactly
//     like an unplugged device. Read tells them apart by checking whether
//     the device path still exists and still names the file that was
//     opened (a udev symlink re-pointed at a new tty counts as gone), and
//     returns ErrTimeout or an error wrapping ErrGone.
//   - Close must be called only after the goroutine reading the port has
//     returned; drivers read and close in the same goroutine.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tarm/serial"
)

// Sentinel errors of the package.
var (
	// ErrTimeout is returned by Port.Read when no byte arrived within the
	// read timeout and the device is still there. It is not a failure.
	ErrTimeout = errors.New("serial read timeout")
	// ErrGone is wrapped by Port.Read errors when the device vanished
	// (unplugged, path removed or re-pointed, tty hung up).
	ErrGone = errors.New("serial device gone")
	// ErrBadConfig is wrapped by Config.Validate errors.
	ErrBadConfig = errors.New("bad serial config")
)

// Parity is the serial parity setting.
type Parity byte

// The parities edgepos supports.
const (
	ParityNone Parity = 'N'
	ParityEven Parity = 'E'
	ParityOdd  Parity = 'O'
)

// Config describes one serial port. The zero values of Baud, DataBits,
// Parity, StopBits and ReadTimeout mean "default" (9600 8N1, 100 ms).
type Config struct {
	// Path is the device path, ideally a stable udev symlink such as
	// /dev/edgepos/scanner0.
	Path string
	// Baud is the line speed; default 9600.
	Baud int
	// DataBits is 5..8; default 8.
	DataBits int
	// Parity is N, E or O; default N.
	Parity Parity
	// StopBits is 1 or 2; default 1.
	StopBits int
	// ReadTimeout bounds one Read (100 ms .. 25.5 s, tarm uses termios VTIME
	// in tenths of a second); default 100 ms. It also bounds how long Close
	// of a driver waits for its reader.
	ReadTimeout time.Duration
}

// WithDefaults returns c with unset fields filled in.
func (c Config) WithDefaults() Config {
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == 0 {
		c.Parity = ParityNone
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 100 * time.Millisecond
	}
	return c
}

var bauds = map[int]bool{
	1200: true, 2400: true, 4800: true, 9600: true, 19200: true, 38400: true,
	57600: true, 115200: true, 230400: true, 460800: true, 921600: true,
}

// Validate checks a Config after WithDefaults. It touches no device.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("%w: path is empty", ErrBadConfig)
	case !bauds[c.Baud]:
		return fmt.Errorf("%w: baud %d not supported", ErrBadConfig, c.Baud)
	case c.DataBits < 5 || c.DataBits > 8:
		return fmt.Errorf("%w: data bits %d (want 5..8)", ErrBadConfig, c.DataBits)
	case c.Parity != ParityNone && c.Parity != ParityEven && c.Parity != ParityOdd:
		return fmt.Errorf("%w: parity %q (want N, E or O)", ErrBadConfig, rune(c.Parity))
	case c.StopBits != 1 && c.StopBits != 2:
		return fmt.Errorf("%w: stop bits %d (want 1 or 2)", ErrBadConfig, c.StopBits)
	case c.ReadTimeout < 100*time.Millisecond || c.ReadTimeout > 25500*time.Millisecond:
		return fmt.Errorf("%w: read timeout %s (want 100ms..25.5s)", ErrBadConfig, c.ReadTimeout)
	}
	return nil
}

// ParseParity turns "N", "E" or "O" (any case, or none/even/odd) into a Parity.
func ParseParity(s string) (Parity, error) {
	switch s {
	case "", "N", "n", "none":
		return ParityNone, nil
	case "E", "e", "even":
		return ParityEven, nil
	case "O", "o", "odd":
		return ParityOdd, nil
	}
	return 0, fmt.Errorf("%w: parity %q (want N, E or O)", ErrBadConfig, s)
}

// Port is an open serial port.
//
// Read returns (n > 0, nil) with data, (0, ErrTimeout) when nothing arrived
// within the read timeout, or an error (wrapping ErrGone when the device
// vanished). Write writes all of p or returns an error. Close releases the
// port; call it only after the goroutine in Read has returned.
type Port interface {
	io.ReadWriteCloser
}

// Opener opens a port; drivers take one so tests can swap it.
type Opener func(Config) (Port, error)

// Open opens cfg (after WithDefaults and Validate) with tarm/serial.
func Open(cfg Config) (Port, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fi, err := os.Stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open serial %s: %w", cfg.Path, err)
	}
	p, err := serial.OpenPort(&serial.Config{
		Name:        cfg.Path,
		Baud:        cfg.Baud,
		Size:        byte(cfg.DataBits),
		Parity:      serial.Parity(cfg.Parity),
		StopBits:    serial.StopBits(cfg.StopBits),
		ReadTimeout: cfg.ReadTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open serial %s: %w", cfg.Path, err)
	}
	return &tarmPort{p: p, path: cfg.Path, fi: fi, timeout: cfg.ReadTimeout, now: time.Now}, nil
}

// tarmPort adapts *serial.Port to the Port contract.
type tarmPort struct {
	p       *serial.Port
	path    string
	fi      os.FileInfo
	timeout time.Duration
	now     func() time.Time
	// fastEOF counts consecutive (0, EOF) reads that returned far sooner
	// than the timeout: a hung-up tty whose path still exists.
	fastEOF int
}

func (t *tarmPort) Read(b []byte) (int, error) {
	start := t.now()
	n, err := t.p.Read(b)
	if n > 0 {
		t.fastEOF = 0
		return n, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read serial %s: %w: %w", t.path, ErrGone, err)
	}
	if gone := Gone(t.path, t.fi); gone != nil {
		return 0, fmt.Errorf("read serial %s: %w", t.path, gone)
	}
	if t.now().Sub(start) < t.timeout/4 {
		t.fastEOF++
		if t.fastEOF >= 3 {
			return 0, fmt.Errorf("read serial %s: %w: hung up", t.path, ErrGone)
		}
	} else {
		t.fastEOF = 0
	}
	return 0, ErrTimeout
}

func (t *tarmPort) Write(b []byte) (int, error) {
	n, err := t.p.Write(b)
	if err != nil {
		if g := Gone(t.path, t.fi); g != nil {
			return n, fmt.Errorf("write serial %s: %w", t.path, g)
		}
		return n, fmt.Errorf("write serial %s: %w", t.path, err)
	}
	return n, nil
}

func (t *tarmPort) Close() error {
	if err := t.p.Close(); err != nil {
		return fmt.Errorf("close serial %s: %w", t.path, err)
	}
	return nil
}

// Gone returns an error wrapping ErrGone if path no longer exists or no
// longer names the file described by opened (nil opened: existence only),
// and nil if the device is still there.
func Gone(path string, opened os.FileInfo) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	if opened != nil && !os.SameFile(fi, opened) {
		return fmt.Errorf("%w: %s now names another device", ErrGone, path)
	}
	return nil
}
