// Package printer drives ESC/POS receipt printers over raw TCP (port
// 9100), serial ports and USB printer-class device files, and lays
// receipts out for 58 and 80 mm paper (Receipt, Render, Slip).
//
// The driver's contract with a durable print queue:
//
//   - Print(ctx, jobID, data) asks the printer's real-time status (DLE EOT
//     1..4, DEVICE-PROTOCOLS.md §1) BEFORE sending. Paper end, cover open,
//     offline, an error, or no answer at all refuse the job with a
//     retryable error and no byte of the job is sent, so a printer without
//     paper never buffers a receipt to print it again after the queue's
//     retry ("Out of paper looks like success", §1 failures).
//   - It then sends the job and asks the status AFTER it, on the same
//     connection. Print returns nil — "printed" — only when the printer
//     answered and reported itself healthy after the job. With
//     Config.ConfirmProcessed it first waits for the answer to GS r 1,
//     which the printer sends only once it has processed the whole job.
//   - Delivery is at least once. If the connection drops mid-job, or the
//     printer runs out of paper during it, Print returns an error with
//     JobError.Sent = true and the queue retries the whole job: the
//     customer may get a partial receipt and then a full one. Print never
//     reports failure for a job the printer received and confirmed.
//   - A printer that cannot answer (StatusNone: a one-way USB or serial
//     link) prints without any confirmation; its state says so.
//
// Jobs, status polls and drawer kicks are serialised on the transport's
// one connection.
package printer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/printer/escpos"
)

// StatusMode says whether the printer can report its status.
type StatusMode string

// The status modes.
const (
	// StatusRequired asks DLE EOT before and after every job (default).
	StatusRequired StatusMode = "required"
	// StatusNone is for a printer that sends nothing back: a job counts as
	// printed once written, and paper out is not detected.
	StatusNone StatusMode = "none"
)

// ParseStatusMode checks a status mode name from configuration.
func ParseStatusMode(s string) (StatusMode, error) {
	switch m := StatusMode(s); m {
	case "":
		return StatusRequired, nil
	case StatusRequired, StatusNone:
		return m, nil
	}
	return "", fmt.Errorf("%w: status %q (want required or none)", ErrBadConfig, s)
}

// Device state reasons the driver reports. They are fixed strings, so a
// fault that repeats does not produce a new state (and a new event for HQ)
// on every poll; the details go to the log.
const (
	ReasonNotConnected = "not connected"
	ReasonNoStatus     = "no status reply"
	ReasonNoBackStatus = "printer gives no status back (configure status: none)"
	ReasonConnLost     = "connection lost"
	ReasonNearEnd      = "paper near end"
	ReasonUnconfirmed  = "no status: jobs are not confirmed"
	ReasonPrinting     = "printing"
)

// Config configures one printer driver.
type Config struct {
	// Name identifies the printer in status and logs.
	Name string
	// StatusMode is StatusRequired (default) or StatusNone.
	StatusMode StatusMode
	// ConfirmProcessed sends GS r 1 after each job and waits for its
	// answer before the after-job status check. A printer answers GS r
	// only after processing everything before it, so a paper end during
	// the job is seen even on a fast link. Enable it only for printers
	// that implement GS r: on one that does not, no job is ever confirmed.
	ConfirmProcessed bool
	// StatusTimeout bounds the wait for each DLE EOT reply; default 2 s.
	StatusTimeout time.Duration
	// WriteTimeout bounds sending one job; default 30 s.
	WriteTimeout time.Duration
	// ConfirmTimeout bounds the wait for the GS r 1 answer (the time to
	// print a long receipt); default 30 s.
	ConfirmTimeout time.Duration
	// PollInterval is how often the status is polled between jobs, so the
	// status bar sees paper put back and a printer plugged in; default
	// 10 s, negative disables polling.
	PollInterval time.Duration
	// DrawerPin, DrawerOnMS and DrawerOffMS shape the drawer kick pulse
	// (ESC p); defaults pin 2, 100 ms on, 200 ms off.
	DrawerPin               escpos.DrawerPin
	DrawerOnMS, DrawerOffMS int
	// LogInterval limits repeated failure logs; default 1 min.
	LogInterval time.Duration
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.StatusMode == "" {
		c.StatusMode = StatusRequired
	}
	if c.StatusTimeout == 0 {
		c.StatusTimeout = 2 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.ConfirmTimeout == 0 {
		c.ConfirmTimeout = 30 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.DrawerOnMS == 0 {
		c.DrawerOnMS = 100
	}
	if c.DrawerOffMS == 0 {
		c.DrawerOffMS = 200
	}
	if c.LogInterval == 0 {
		c.LogInterval = time.Minute
	}
	return c
}

// Validate checks the configuration (after defaults); it touches no device.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := ParseStatusMode(string(c.StatusMode)); err != nil {
		return err
	}
	if c.StatusTimeout < 0 || c.WriteTimeout < 0 || c.ConfirmTimeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrBadConfig)
	}
	if c.ConfirmProcessed && c.StatusMode == StatusNone {
		return fmt.Errorf("%w: confirm_processed needs a printer that answers (status required)", ErrBadConfig)
	}
	if err := escpos.NewBuilder(escpos.EncASCII).KickDrawer(c.DrawerPin, c.DrawerOnMS, c.DrawerOffMS).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

// Options are the driver's collaborators; all are optional.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Hub receives status reports; if nil the printer makes its own.
	Hub *devices.Hub
}

// Stats are a printer's counters since New.
type Stats struct {
	Printed  uint64 `json:"printed"`
	Failed   uint64 `json:"failed"`
	Garbage  uint64 `json:"garbage_bytes"`
	Timeouts uint64 `json:"status_timeouts"`
}

// Printer is one ESC/POS printer. Its methods are safe for concurrent use.
type Printer struct {
	cfg    Config
	tr     Transport
	log    *slog.Logger
	now    func() time.Time
	hub    *devices.Hub
	status *devices.Reporter

	// sem is the one connection: whoever holds it may use tr. A channel,
	// not a mutex, so a caller stops waiting when its ctx ends.
	sem chan struct{}

	mu     sync.Mutex
	open   bool
	cancel context.CancelFunc
	last   escpos.Status
	wg     sync.WaitGroup

	failLog  devices.Throttle
	failing  atomic.Bool
	printed  atomic.Uint64
	failed   atomic.Uint64
	garbage  atomic.Uint64
	timeouts atomic.Uint64
}

// New returns a driver for the printer behind tr, with defaults filled in.
// It touches no device.
func New(cfg Config, tr Transport, opt Options) *Printer {
	cfg = cfg.withDefaults()
	if cfg.Name == "" && tr != nil {
		cfg.Name = tr.String()
	}
	p := &Printer{cfg: cfg, tr: tr, log: opt.Logger, now: opt.Now, hub: opt.Hub, sem: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	name := ""
	if tr != nil {
		name = tr.String()
	}
	p.log = p.log.With(devices.LogDevice, cfg.Name, devices.LogKind, devices.KindPrinter, devices.LogPath, name)
	if p.hub == nil {
		p.hub = devices.NewHub()
	}
	p.status = &devices.Reporter{Device: cfg.Name, Kind: devices.KindPrinter, Hub: p.hub, Now: p.now}
	p.failLog.Interval = cfg.LogInterval
	return p
}

// Name returns the printer's configured name.
func (p *Printer) Name() string { return p.cfg.Name }

// Hub returns the status hub the printer reports to.
func (p *Printer) Hub() *devices.Hub { return p.hub }

// State returns the printer's current device status (StateClosed before
// the first status check).
func (p *Printer) State() devices.Status { return p.status.Current() }

// LastStatus returns the printer's last real-time status answer.
func (p *Printer) LastStatus() escpos.Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Stats returns the printer's counters.
func (p *Printer) Stats() Stats {
	return Stats{Printed: p.printed.Load(), Failed: p.failed.Load(), Garbage: p.garbage.Load(), Timeouts: p.timeouts.Load()}
}

// Open validates the configuration and starts the status poller, whose
// first check runs at once. It does not require the printer to be
// reachable: a printer that is not plugged in is reported as StateError
// ("not connected") and picked up when it appears.
func (p *Printer) Open(ctx context.Context) error {
	if p.tr == nil {
		return fmt.Errorf("open printer %s: %w: no transport", p.cfg.Name, ErrBadConfig)
	}
	if err := p.cfg.Validate(); err != nil {
		return fmt.Errorf("open printer %s: %w", p.cfg.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		return fmt.Errorf("open printer %s: already open", p.cfg.Name)
	}
	p.open = true
	// The poller outlives Open's ctx: it runs until Close.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	if p.cfg.StatusMode == StatusNone {
		p.status.Set(devices.StateIdle, ReasonUnconfirmed)
		return nil
	}
	p.wg.Add(1)
	go p.poll(runCtx)
	return nil
}

// Close stops the poller, waits for a job in progress to finish, and
// closes the transport. It returns ctx's error if ctx ends first.
func (p *Printer) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.open {
		p.mu.Unlock()
		return ErrNotOpen
	}
	p.open = false
	p.cancel()
	p.mu.Unlock()
	if err := devices.Wait(ctx, &p.wg); err != nil {
		return fmt.Errorf("close printer %s: %w", p.cfg.Name, err)
	}
	select { // a job in progress holds the connection
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("close printer %s: %w", p.cfg.Name, ctx.Err())
	}
	defer func() { <-p.sem }()
	err := p.tr.Close()
	p.status.Set(devices.StateClosed, "")
	return err
}

func (p *Printer) isOpen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// acquire takes the connection, waiting until ctx ends.
func (p *Printer) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
	if !p.isOpen() {
		<-p.sem
		return ErrNotOpen
	}
	return nil
}

func (p *Printer) release() { <-p.sem }

func (p *Printer) poll(ctx context.Context) {
	defer p.wg.Done()
	var tick <-chan time.Time
	if p.cfg.PollInterval > 0 {
		t := time.NewTicker(p.cfg.PollInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		_, _ = p.Status(ctx) // Status publishes the outcome
		if tick == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// Status queries the printer's real-time status (DLE EOT 1..4, one at a
// time, each answer awaited with StatusTimeout) and publishes it as the
// device state. It returns an error wrapping ErrNoStatus if the printer
// does not answer, or ErrNotConnected if it cannot be reached.
func (p *Printer) Status(ctx context.Context) (escpos.Status, error) {
	if p.cfg.StatusMode == StatusNone {
		return escpos.Status{}, fmt.Errorf("printer %s: %w: status none", p.cfg.Name, ErrNoStatus)
	}
	if err := p.acquire(ctx); err != nil {
		return escpos.Status{}, err
	}
	defer p.release()
	st, err := p.queryLocked(ctx, true, 0)
	if ctx.Err() != nil {
		return st, ctx.Err() // shutting down: not a device fault
	}
	p.publish(st, err)
	return st, err
}

// queryLocked asks DLE EOT n for n = 1..4. If the connection turns out to
// be dead and reconnect is set, it asks once more on a fresh connection:
// printers close idle sessions, and that is not a fault. After a job has
// been sent, reconnect must be false: a fresh connection's healthy answer
// would say nothing about the job the old one carried.
//
// extra lengthens the wait for the first answer: after a job on a slow
// line, the request goes out only once the job has.
func (p *Printer) queryLocked(ctx context.Context, reconnect bool, extra time.Duration) (escpos.Status, error) {
	st, err := p.askLocked(ctx, extra)
	if reconnect && errors.Is(err, ErrConnLost) && ctx.Err() == nil {
		st, err = p.askLocked(ctx, 0)
	}
	if err == nil {
		p.mu.Lock()
		p.last = st
		p.mu.Unlock()
	}
	return st, err
}

func (p *Printer) askLocked(ctx context.Context, extra time.Duration) (escpos.Status, error) {
	var st escpos.Status
	for n := 1; n <= 4; n++ {
		b, err := p.replyLocked(ctx, escpos.StatusRequest(n), escpos.ValidStatusByte, p.cfg.StatusTimeout+extra)
		extra = 0
		if err != nil {
			return st, fmt.Errorf("DLE EOT %d: %w", n, err)
		}
		_ = st.Apply(n, b) // valid by construction
	}
	return st, nil
}

// replyLocked writes req and returns the first byte that valid accepts
// within timeout. Other bytes are garbage (line noise, a reply to nothing)
// and are skipped and counted. On failure the connection is reset, so a
// late reply is never read as the answer to the next request.
func (p *Printer) replyLocked(ctx context.Context, req []byte, valid func(byte) bool, timeout time.Duration) (byte, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.tr.Write(qctx, req)
	var buf [1]byte
	for err == nil {
		var n int
		n, err = p.tr.Read(qctx, buf[:])
		if n == 1 {
			if valid(buf[0]) {
				return buf[0], nil
			}
			p.garbage.Add(1)
		}
	}
	_ = p.tr.Reset()
	switch {
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case errors.Is(err, ErrConnect):
		return 0, fmt.Errorf("%w: %w", ErrNotConnected, err)
	case errors.Is(err, ErrConnLost), errors.Is(err, ErrStatusUnsupported):
		return 0, fmt.Errorf("%w: %w", ErrNoStatus, err)
	}
	p.timeouts.Add(1)
	return 0, fmt.Errorf("%w after %s: %w", ErrNoStatus, timeout, err)
}

// reason maps a failure to its fixed state reason.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrNotConnected), errors.Is(err, ErrConnect):
		return ReasonNotConnected
	case errors.Is(err, ErrStatusUnsupported):
		return ReasonNoBackStatus
	case errors.Is(err, ErrTransport), errors.Is(err, ErrConnLost):
		return ReasonConnLost
	}
	return ReasonNoStatus
}

// publish maps a status query result to the device state, and logs a
// failure at most once per LogInterval and the recovery once.
func (p *Printer) publish(st escpos.Status, err error) {
	switch {
	case err != nil && healthErr(st) == nil:
		p.status.Set(devices.StateError, reason(err))
		p.logFailure("printer not usable", err, "")
	case !st.Healthy():
		p.status.Set(devices.StateError, st.Problems())
		p.logFailure("printer reports a problem", nil, st.Problems())
	default:
		if p.failing.Swap(false) {
			p.failLog.Reset()
			p.log.Info("printer recovered")
		}
		if st.PaperNearEnd {
			p.status.Set(devices.StateIdle, ReasonNearEnd)
		} else {
			p.status.Set(devices.StateIdle, "")
		}
	}
}

// publishUnlessDone publishes like publish, except when ctx ended: a job
// cut short by shutdown says nothing about the printer.
func (p *Printer) publishUnlessDone(ctx context.Context, st escpos.Status, err error) {
	if ctx.Err() == nil {
		p.publish(st, err)
	}
}

func (p *Printer) logFailure(msg string, err error, problems string) {
	p.failing.Store(true)
	if ok, n := p.failLog.Allow(p.now()); ok {
		p.log.Warn(msg, devices.LogErr, err, "problems", problems, "suppressed", n)
	}
}

// healthErr maps an unhealthy status to its sentinel.
func healthErr(st escpos.Status) error {
	switch {
	case st.NoPaper():
		return ErrPaperOut
	case st.CoverOpen:
		return ErrCoverOpen
	case st.Errored():
		return ErrPrinterFault
	case st.Offline:
		return ErrOffline
	}
	return nil
}

// Print sends one job (a complete ESC/POS stream, e.g. Render's Data) and
// returns nil only when the printer confirmed a healthy state after it.
// Errors are *JobError; IsRetryable tells whether the job stays queued,
// and JobError.Sent whether part of it may have printed. It waits for a
// job or poll in progress on the same printer; ctx bounds that wait and
// the whole job. See the package comment for the at-least-once contract.
func (p *Printer) Print(ctx context.Context, jobID string, data []byte) (err error) {
	if len(data) == 0 {
		return &JobError{JobID: jobID, Stage: StageBefore, Err: ErrBadJob}
	}
	if err := p.acquire(ctx); err != nil {
		return &JobError{JobID: jobID, Stage: StageBefore, Err: err}
	}
	defer p.release()
	defer func() {
		if err != nil {
			p.failed.Add(1)
		} else {
			p.printed.Add(1)
		}
	}()
	p.status.Set(devices.StateBusy, ReasonPrinting)

	required := p.cfg.StatusMode != StatusNone
	if required {
		st, err := p.queryLocked(ctx, true, 0)
		if err == nil {
			err = healthErr(st)
		}
		if err != nil {
			p.publishUnlessDone(ctx, st, err)
			return &JobError{JobID: jobID, Stage: StageBefore, Problems: st.Problems(), Err: err}
		}
	}

	wctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	err = p.tr.Write(wctx, data)
	cancel()
	if err != nil {
		_ = p.tr.Reset()
		err = fmt.Errorf("%w: %w", ErrTransport, err)
		p.publishUnlessDone(ctx, escpos.Status{}, err)
		return &JobError{JobID: jobID, Stage: StageWrite, Sent: true, Err: err}
	}
	if !required {
		p.status.Set(devices.StateIdle, ReasonUnconfirmed)
		return nil
	}

	var transmit time.Duration
	if t, ok := p.tr.(transmitter); ok {
		transmit = t.TransmitTime(len(data))
	}
	if p.cfg.ConfirmProcessed {
		b, cerr := p.replyLocked(ctx, escpos.PaperSensorRequest(), escpos.ValidPaperSensorByte, p.cfg.ConfirmTimeout+transmit)
		transmit = 0
		if cerr != nil {
			// Ask why (a printer out of paper stops processing) on the
			// same connection if it still stands; no reconnect.
			st, qerr := p.queryLocked(ctx, false, 0)
			if qerr == nil {
				if herr := healthErr(st); herr != nil {
					cerr = herr
				}
			}
			p.publishUnlessDone(ctx, st, cerr)
			return &JobError{JobID: jobID, Stage: StageAfter, Sent: true, Problems: st.Problems(), Err: cerr}
		}
		if _, end := escpos.PaperSensor(b); end {
			st := escpos.Status{PaperEnd: true}
			p.publish(st, nil)
			return &JobError{JobID: jobID, Stage: StageAfter, Sent: true, Problems: st.Problems(), Err: ErrPaperOut}
		}
	}

	st, err := p.queryLocked(ctx, false, transmit)
	if err == nil {
		err = healthErr(st)
	}
	p.publishUnlessDone(ctx, st, err)
	if err != nil {
		return &JobError{JobID: jobID, Stage: StageAfter, Sent: true, Problems: st.Problems(), Err: err}
	}
	return nil
}

// KickDrawer opens the cash drawer wired to the printer with ESC p
// (1B 70 m t1 t2). It checks no status first: a drawer opens even when the
// printer is out of paper. It waits for a job in progress; ctx bounds
// that wait.
func (p *Printer) KickDrawer(ctx context.Context) error {
	data, err := escpos.NewBuilder(escpos.EncASCII).KickDrawer(p.cfg.DrawerPin, p.cfg.DrawerOnMS, p.cfg.DrawerOffMS).Bytes()
	if err != nil {
		return fmt.Errorf("kick drawer %s: %w", p.cfg.Name, err)
	}
	if err := p.acquire(ctx); err != nil {
		return fmt.Errorf("kick drawer %s: %w", p.cfg.Name, err)
	}
	defer p.release()
	wctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()
	if err := p.tr.Write(wctx, data); err != nil {
		_ = p.tr.Reset()
		if errors.Is(err, ErrConnect) {
			err = fmt.Errorf("%w: %w", ErrNotConnected, err)
		} else {
			err = fmt.Errorf("%w: %w", ErrTransport, err)
		}
		if p.cfg.StatusMode != StatusNone {
			p.publish(escpos.Status{}, err)
		}
		return fmt.Errorf("kick drawer %s: %w", p.cfg.Name, err)
	}
	return nil
}
