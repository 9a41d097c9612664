// Package scanner drives serial (RS-232 / USB CDC-ACM) barcode scanners.
//
// A Scanner reads its port, frames the byte stream at the configured
// suffix (CR, LF, CRLF or TAB), strips an optional AIM symbology
// identifier (]Xn) and reports the symbology, drops a code repeated within
// a configurable window, and rejects garbage (non-printable bytes, invalid
// UTF-8, frames longer than MaxLen, partial frames that never end) with a
// counted error that is logged at most once per interval. When the device
// vanishes it reports StateError and reopens it with a capped, jittered
// backoff, so a replugged scanner comes back by itself.
//
// Several scanners at once: give every Scanner the same Options.Out
// channel; Scan.Device says which one read the code. A scanner that cannot
// deliver (the consumer is not reading) stops reading its port, so the
// kernel buffers the codes instead of the driver dropping them.
//
// Keyboard-wedge (HID) scanners are handled by the web UI, not here.
package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/serialport"
)

// Sentinel errors of the package.
var (
	// ErrBadConfig is wrapped by configuration errors.
	ErrBadConfig = errors.New("bad scanner config")
	// ErrGarbage is wrapped by rejections of frames that are not codes.
	ErrGarbage = errors.New("scanner garbage")
	// ErrTooLong is wrapped by rejections of over-long frames.
	ErrTooLong = errors.New("scanner frame too long")
	// ErrPartial is wrapped by rejections of frames that never ended.
	ErrPartial = errors.New("scanner partial frame")
	// ErrNotOpen is returned by Close on a scanner that is not open.
	ErrNotOpen = errors.New("scanner not open")
)

// Scan is one code read by a scanner. At is UTC.
type Scan struct {
	// Device is the scanner's configured name.
	Device string `json:"device"`
	// Code is the code without AIM prefix or suffix.
	Code string `json:"code"`
	// Symbology is the name of the symbology (SymEAN13, …) when the
	// scanner sends AIM identifiers, else "".
	Symbology string `json:"symbology,omitempty"`
	// AIM is the raw AIM identifier, e.g. "]E0", or "".
	AIM string    `json:"aim,omitempty"`
	At  time.Time `json:"at"`
}

// Config configures one scanner.
type Config struct {
	// Name identifies the scanner in Scan.Device, status and logs.
	Name string
	// Port is the serial port (path, baud, data bits, parity, stop bits).
	Port serialport.Config
	// Suffix terminates each code; default SuffixCR.
	Suffix Suffix
	// AIM says the scanner prefixes each code with an AIM identifier.
	AIM bool
	// DedupWindow drops a code identical to the previous one seen within
	// this window (a double read). 0 disables it.
	DedupWindow time.Duration
	// MaxLen is the longest accepted code in bytes; default 512.
	MaxLen int
	// PartialTimeout discards bytes without a suffix after this long;
	// default 1 s.
	PartialTimeout time.Duration
	// LogInterval limits repeated rejection and reconnect logs; default 1 min.
	LogInterval time.Duration
	// ReconnectMin and ReconnectMax bound the reopen backoff; defaults
	// 200 ms and 5 s.
	ReconnectMin, ReconnectMax time.Duration
}

// Options are the scanner's collaborators; all are optional.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// Open opens the port; default serialport.Open.
	Open serialport.Opener
	// Out receives scans; share one channel among several scanners. If
	// nil, the scanner makes its own (see Scans).
	Out chan<- Scan
	// Hub receives status reports; if nil the scanner makes its own.
	Hub *devices.Hub
}

// Stats are a scanner's counters since New.
type Stats struct {
	Scans      uint64 `json:"scans"`
	Rejected   uint64 `json:"rejected"`
	Duplicates uint64 `json:"duplicates"`
	Reconnects uint64 `json:"reconnects"`
}

// Scanner is one serial barcode scanner.
type Scanner struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	open   serialport.Opener
	out    chan<- Scan
	own    chan Scan
	hub    *devices.Hub
	status *devices.Reporter
	suffix []byte

	scans, rejected, dups, reconnects atomic.Uint64
	prev                              last // owned by the reader goroutine
	rejectLog, connLog                devices.Throttle

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a scanner with defaults filled in; it touches no device.
func New(cfg Config, opt Options) *Scanner {
	cfg.Port = cfg.Port.WithDefaults()
	if cfg.Suffix == "" {
		cfg.Suffix = SuffixCR
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = 512
	}
	if cfg.PartialTimeout == 0 {
		cfg.PartialTimeout = time.Second
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = time.Minute
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = 200 * time.Millisecond
	}
	if cfg.ReconnectMax == 0 {
		cfg.ReconnectMax = 5 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Port.Path
	}
	s := &Scanner{cfg: cfg, log: opt.Logger, now: opt.Now, open: opt.Open, out: opt.Out, hub: opt.Hub}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With(devices.LogDevice, cfg.Name, devices.LogKind, devices.KindScanner)
	if s.now == nil {
		s.now = time.Now
	}
	if s.open == nil {
		s.open = serialport.Open
	}
	if s.out == nil {
		s.own = make(chan Scan, 64)
		s.out = s.own
	}
	if s.hub == nil {
		s.hub = devices.NewHub()
	}
	s.status = &devices.Reporter{Device: cfg.Name, Kind: devices.KindScanner, Hub: s.hub, Now: s.now}
	s.rejectLog.Interval = cfg.LogInterval
	s.connLog.Interval = cfg.LogInterval
	return s
}

// Validate checks the configuration without touching the device.
func (c Config) Validate() error {
	if err := c.Port.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("scanner %s: %w", c.Name, err)
	}
	if c.Suffix != "" {
		if _, err := c.Suffix.bytes(); err != nil {
			return fmt.Errorf("scanner %s: %w", c.Name, err)
		}
	}
	if c.MaxLen < 0 || c.DedupWindow < 0 || c.PartialTimeout < 0 {
		return fmt.Errorf("%w: scanner %s: negative max length or window", ErrBadConfig, c.Name)
	}
	return nil
}

// Scans returns the scanner's own channel, or nil when Options.Out was given.
func (s *Scanner) Scans() <-chan Scan { return s.own }

// Hub returns the status hub the scanner reports to.
func (s *Scanner) Hub() *devices.Hub { return s.hub }

// Status returns the scanner's current status.
func (s *Scanner) Status() devices.Status { return s.status.Current() }

// Stats returns the scanner's counters.
func (s *Scanner) Stats() Stats {
	return Stats{Scans: s.scans.Load(), Rejected: s.rejected.Load(), Duplicates: s.dups.Load(), Reconnects: s.reconnects.Load()}
}

// Open validates the configuration and starts reading. A device that is
// absent at Open is not an error: the scanner reports StateError and keeps
// trying to open it, so the agent starts without its scanner plugged in.
func (s *Scanner) Open(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("open scanner %s: %w", s.cfg.Name, err)
	}
	suffix, _ := s.cfg.Suffix.bytes()
	s.suffix = suffix
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("open scanner %s: already open", s.cfg.Name)
	}
	// The loop outlives Open's ctx: it runs until Close.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go s.run(runCtx)
	return nil
}

// Close stops the reader, waits for it (the port is closed by the reader
// itself after its last Read), and reports StateClosed. It returns
// ctx.Err() if ctx ends first.
func (s *Scanner) Close(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return ErrNotOpen
	}
	cancel()
	if err := devices.Wait(ctx, &s.wg); err != nil {
		return fmt.Errorf("close scanner %s: %w", s.cfg.Name, err)
	}
	s.status.Set(devices.StateClosed, "")
	return nil
}

// run owns the port: it opens, reads and closes it, reconnecting with
// backoff until ctx is done.
func (s *Scanner) run(ctx context.Context) {
	defer s.wg.Done()
	bo := devices.Backoff{Min: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	connected := false
	for ctx.Err() == nil {
		port, err := s.open(s.cfg.Port)
		if err != nil {
			s.status.Set(devices.StateError, "not connected: "+err.Error())
			if ok, n := s.connLog.Allow(s.now()); ok {
				s.log.Warn("scanner not connected", devices.LogPath, s.cfg.Port.Path, devices.LogErr, err, "suppressed", n)
			}
			if devices.Sleep(ctx, bo.Next()) != nil {
				return
			}
			continue
		}
		bo.Reset()
		if connected {
			s.reconnects.Add(1)
			s.log.Info("scanner reconnected", devices.LogPath, s.cfg.Port.Path)
		}
		connected = true
		s.connLog.Reset()
		s.status.Set(devices.StateIdle, "")
		err = s.read(ctx, port)
		if cerr := port.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if ctx.Err() != nil {
			return
		}
		s.status.Set(devices.StateError, "disconnected: "+err.Error())
		s.log.Warn("scanner disconnected", devices.LogPath, s.cfg.Port.Path, devices.LogErr, err)
		if devices.Sleep(ctx, bo.Next()) != nil {
			return
		}
	}
}

// read consumes the port until ctx is done or the device fails.
func (s *Scanner) read(ctx context.Context, port serialport.Port) error {
	f := framer{suffix: s.suffix, max: s.cfg.MaxLen}
	buf := make([]byte, 256)
	var lastByte time.Time
	for ctx.Err() == nil {
		n, err := port.Read(buf)
		now := s.now()
		if n > 0 {
			lastByte = now
			for _, r := range f.feed(buf[:n]) {
				if r.err != nil {
					s.reject(r.err)
					continue
				}
				if !s.deliver(ctx, r.frame, now) {
					return nil
				}
			}
		}
		if f.pending() && now.Sub(lastByte) >= s.cfg.PartialTimeout {
			n := f.drop()
			s.reject(fmt.Errorf("%w: %d bytes without a suffix for %s", ErrPartial, n, s.cfg.PartialTimeout))
		}
		if err != nil && !errors.Is(err, serialport.ErrTimeout) {
			return err
		}
	}
	return nil
}

// last is the previous code seen, for de-duplication.
type last struct {
	code string
	at   time.Time
}

// deliver parses one frame and sends the scan; false means ctx ended.
func (s *Scanner) deliver(ctx context.Context, frame []byte, now time.Time) bool {
	code, aim, sym, err := ParseFrame(frame, s.cfg.AIM)
	if err != nil {
		s.reject(err)
		return true
	}
	if s.cfg.DedupWindow > 0 && s.prev.code == code && now.Sub(s.prev.at) < s.cfg.DedupWindow {
		s.prev.at = now
		s.dups.Add(1)
		return true
	}
	s.prev = last{code: code, at: now}
	sc := Scan{Device: s.cfg.Name, Code: code, Symbology: sym, AIM: aim, At: now.UTC()}
	// Counted before the send: a consumer that reads Stats right after
	// receiving the scan must see it.
	s.scans.Add(1)
	select {
	case s.out <- sc:
		return true
	case <-ctx.Done():
		s.scans.Add(^uint64(0)) // not delivered after all
		return false
	}
}

// reject counts a rejected frame and logs it at most once per interval.
func (s *Scanner) reject(err error) {
	s.rejected.Add(1)
	if ok, n := s.rejectLog.Allow(s.now()); ok {
		s.log.Warn("scanner rejected input", devices.LogErr, err, "suppressed", n, "rejected_total", s.rejected.Load())
	}
}
