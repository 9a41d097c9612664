// Package devset attaches a terminal's devices to a running store agent:
// it implements agent.DeviceSet (Start, States, Stop) and agent.Hardware
// (KickDrawer, PrintNow, ReceiptText) over the real drivers in devices/.
//
//   - Scanners (devices/scanner, any number): every scan is pushed to the
//     POS screens as a "scan" UI event {"code", "symbology", "device"}, and
//     the screen adds it to the open sale.
//   - The receipt printer (devices/printer): a print worker takes the
//     agent's durable print queue oldest first, lays each job out
//     (receipt, copy, return slip, pickup slip, Z report), prints it and marks it printed
//     only when the printer confirmed it (see package printer); a
//     retryable failure (paper out, cover open, offline, no answer, link
//     down) keeps the job queued and retries with backoff, and a job that
//     can never print is marked failed. The worker is woken by PrintNow,
//     by the printer becoming healthy again, and periodically. Each result
//     is pushed to the screens as a "print" UI event. A sale never waits
//     for the printer.
//   - Every device state change goes to agent.DeviceChanged: the status
//     bar and, through the outbox, HQ.
//   - Weight shelves (devices/shelf) plug in as an Attachment: Shelves
//     explains their count drops with the ledger's sales and turns their
//     events into agent alerts (see Shelves).
//
// devset takes plain option structs; cmd/pos-agent translates its YAML
// config into them. Nothing under devices/ imports agent: this package is
// the bridge.
package devset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/printer"
	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/scanner"
	"github.com/edgepos/edgepos/devices/serialport"
)

// ErrNoDrawer is returned by KickDrawer when no cash drawer is attached
// (no printer, or a printer configured without one).
var ErrNoDrawer = errors.New("no cash drawer attached")

// ScannerOptions configure one serial scanner.
type ScannerOptions struct {
	Config scanner.Config
	// Open opens the port; default serialport.Open.
	Open serialport.Opener
}

// PrinterOptions configure the receipt printer.
type PrinterOptions struct {
	Config printer.Config
	// Transport reaches the printer: printer.NewTCP, NewSerial or NewUSB.
	Transport printer.Transport
	// Layout is the paper width, encoding, code page and QR mode.
	Layout printer.Layout
	// Drawer says a cash drawer is wired to the printer's drawer port.
	Drawer bool
}

// Attachment is a kind of device devset does not drive itself: weight
// shelves (devices/shelf) plug in here. Start opens the devices and must
// not block on one that is absent; they report their state on hub (which
// devset forwards to agent.DeviceChanged) and raise alerts through
// a.RaiseAlert. Stop closes them and waits for their goroutines. States
// reports the current state of each.
type Attachment interface {
	Start(ctx context.Context, a *agent.Agent, hub *devices.Hub) error
	Stop(ctx context.Context) error
	States() []devices.Status
}

// Options are everything a Set runs with.
type Options struct {
	Scanners []ScannerOptions
	// Printer is the receipt printer; nil: none (jobs stay queued, the
	// receipt preview still works).
	Printer *PrinterOptions
	// Attachments are further devices (shelves).
	Attachments []Attachment
	// Language of the receipts' words (titles, tender names); default
	// the printer layout's language.
	Language printer.Language
	// StoreName, Header and Footer are printed on every receipt; the
	// store name defaults to the store id, the footer to a thank-you.
	StoreName      string
	Header, Footer []string
	// PreviewLayout lays out ReceiptText when there is no printer;
	// default 80 mm, GB18030 (every character shows).
	PreviewLayout printer.Layout
	// RetryMin and RetryMax bound the backoff after a retryable print
	// failure; defaults 1 s and 30 s.
	RetryMin, RetryMax time.Duration
	// Rescan is how often the worker looks at the queue unprompted;
	// default 30 s.
	Rescan time.Duration
	// DrawerTimeout bounds KickDrawer, including the wait for a job in
	// progress on the printer; default 3 s.
	DrawerTimeout time.Duration
	// Logger defaults to the agent's.
	Logger *slog.Logger
}

// Set is a terminal's devices. New → agent.Options.Devices → the agent
// calls Start and Stop. It also serves as the API's agent.Hardware.
type Set struct {
	opts Options
	lang printer.Language
	log  *slog.Logger

	a        *agent.Agent
	hub      *devices.Hub
	scanners []*scanner.Scanner
	printer  *printer.Printer
	layout   printer.Layout

	wake    chan struct{}
	stop    chan struct{}
	cancel  context.CancelFunc // the worker's: only when Stop runs out of time
	fcancel context.CancelFunc // the forwarders'
	worker  sync.WaitGroup
	fwd     sync.WaitGroup
	mu      sync.Mutex
	started bool
}

var (
	_ agent.DeviceSet      = (*Set)(nil)
	_ agent.Hardware       = (*Set)(nil)
	_ agent.DrawerReporter = (*Set)(nil)
	_ agent.JobPreviewer   = (*Set)(nil)
)

// New validates opts and returns a Set; it touches no device.
func New(opts Options) (*Set, error) {
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(30*time.Second, opts.RetryMin)
	}
	if opts.Rescan <= 0 {
		opts.Rescan = 30 * time.Second
	}
	if opts.DrawerTimeout <= 0 {
		opts.DrawerTimeout = 3 * time.Second
	}
	s := &Set{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
	names := map[string]bool{}
	for i, so := range opts.Scanners {
		if err := so.Config.Validate(); err != nil {
			return nil, fmt.Errorf("devices: scanner %d: %w", i, err)
		}
		if names[so.Config.Name] {
			return nil, fmt.Errorf("devices: two devices named %q", so.Config.Name)
		}
		names[so.Config.Name] = true
	}
	if p := opts.Printer; p != nil {
		if p.Transport == nil {
			return nil, fmt.Errorf("devices: printer: %w: no transport", printer.ErrBadConfig)
		}
		if err := p.Config.Validate(); err != nil {
			return nil, fmt.Errorf("devices: printer: %w", err)
		}
		if err := p.Layout.Validate(); err != nil {
			return nil, fmt.Errorf("devices: printer: %w", err)
		}
		s.layout = p.Layout
	} else {
		s.layout = opts.PreviewLayout
		if s.layout.Encoding == "" {
			s.layout.Encoding = escpos.EncGB18030
		}
		if err := s.layout.Validate(); err != nil {
			return nil, fmt.Errorf("devices: preview: %w", err)
		}
	}
	s.lang = opts.Language
	if s.lang == "" {
		s.lang = s.layout.Language
	}
	if s.lang == "" && s.layout.Encoding.Chinese() {
		s.lang = printer.LangZH
	}
	if s.layout.Language == "" {
		s.layout.Language = printer.LangEN
		if s.lang == printer.LangZH && s.layout.Encoding.Chinese() {
			s.layout.Language = printer.LangZH
		}
	}
	if s.lang != "" && s.lang != printer.LangEN && s.lang != printer.LangZH {
		return nil, fmt.Errorf("devices: language %q (want en or zh)", s.lang)
	}
	return s, nil
}

// Start opens every device for a and starts the forwarders and the print
// worker. An absent device is not an error: it is reported in error and
// picked up when it appears. Start fails only if a driver refuses to open
// (which New's validation makes unlikely), closing what it opened.
func (s *Set) Start(ctx context.Context, a *agent.Agent) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("devices: already started")
	}
	s.a = a
	if s.opts.Logger == nil {
		s.log = a.Logger()
	}
	s.hub = devices.NewHub()
	s.stop = make(chan struct{})
	states, unsub := s.hub.Subscribe(256)
	fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.fcancel = func() { unsub(); fcancel() }
	scans := make(chan scanner.Scan, 64)
	s.fwd.Add(2)
	go s.forwardStates(fctx, states)
	go s.forwardScans(fctx, scans)
	defer func() {
		if err != nil {
			s.closeAll(context.WithoutCancel(ctx))
			s.fcancel()
			s.fwd.Wait()
		}
	}()
	for _, so := range s.opts.Scanners {
		sc := scanner.New(so.Config, scanner.Options{Logger: s.log, Out: scans, Hub: s.hub, Open: so.Open})
		if err := sc.Open(ctx); err != nil {
			return fmt.Errorf("devices: %w", err)
		}
		s.scanners = append(s.scanners, sc)
	}
	if p := s.opts.Printer; p != nil {
		s.printer = printer.New(p.Config, p.Transport, printer.Options{Logger: s.log, Hub: s.hub})
		if err := s.printer.Open(ctx); err != nil {
			s.printer = nil
			return fmt.Errorf("devices: %w", err)
		}
	}
	for i, at := range s.opts.Attachments {
		if err := at.Start(ctx, a, s.hub); err != nil {
			s.opts.Attachments = s.opts.Attachments[:i] // stop only those started
			return fmt.Errorf("devices: %w", err)
		}
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.worker.Add(1)
	go s.work(wctx)
	s.started = true
	return nil
}

// Stop stops the print worker, letting a job in progress finish unless
// ctx ends first, then closes every device and waits for every goroutine.
func (s *Set) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	close(s.stop)
	done := make(chan struct{})
	go func() { s.worker.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel() // cut the job short: it stays queued
		<-done
		errs = append(errs, fmt.Errorf("devices: print worker: %w", ctx.Err()))
	}
	s.cancel()
	// Shutting down is not a device fault: states from here on are not
	// forwarded to HQ.
	s.fcancel()
	s.fwd.Wait()
	errs = append(errs, s.closeAll(ctx))
	s.hub.Close()
	s.scanners, s.printer = nil, nil
	return errors.Join(errs...)
}

func (s *Set) closeAll(ctx context.Context) error {
	var errs []error
	for _, at := range s.opts.Attachments {
		errs = append(errs, at.Stop(ctx))
	}
	if s.printer != nil {
		if err := s.printer.Close(ctx); err != nil && !errors.Is(err, printer.ErrNotOpen) {
			errs = append(errs, err)
		}
	}
	for _, sc := range s.scanners {
		if err := sc.Close(ctx); err != nil && !errors.Is(err, scanner.ErrNotOpen) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// States reports every configured device's current state, by kind and
// name; devices of a Set not started are closed.
func (s *Set) States() []agent.DeviceState {
	s.mu.Lock()
	var sts []devices.Status
	if s.scanners != nil || s.printer != nil || s.started {
		for _, sc := range s.scanners {
			sts = append(sts, sc.Status())
		}
		if s.printer != nil {
			sts = append(sts, s.printer.State())
		}
		for _, at := range s.opts.Attachments {
			sts = append(sts, at.States()...)
		}
	} else {
		for _, so := range s.opts.Scanners {
			sts = append(sts, devices.Status{Device: so.Config.Name, Kind: devices.KindScanner, State: devices.StateClosed})
		}
		if p := s.opts.Printer; p != nil {
			sts = append(sts, devices.Status{Device: p.Config.Name, Kind: devices.KindPrinter, State: devices.StateClosed})
		}
		for _, at := range s.opts.Attachments {
			sts = append(sts, at.States()...)
		}
	}
	s.mu.Unlock()
	out := make([]agent.DeviceState, 0, len(sts))
	for _, st := range sts {
		out = append(out, deviceState(st))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// deviceState maps a driver's status to the agent's. The reason is cut
// at its first ": ": drivers append the cause ("not connected: open
// serial /dev/…: no such file"), which the log has; the status bar and HQ
// get the stable head, so a fault that repeats with a new errno is not a
// new event.
func deviceState(st devices.Status) agent.DeviceState {
	reason, _, _ := strings.Cut(st.Reason, ": ")
	return agent.DeviceState{Name: st.Device, Kind: st.Kind, State: string(st.State), Reason: reason, At: st.At}
}

// forwardStates hands device state changes to the agent (status bar, HQ)
// and wakes the print worker when the printer comes back. Busy is not a
// change worth an event: a printer going busy and idle for every receipt
// would send HQ two events per sale.
func (s *Set) forwardStates(ctx context.Context, ch <-chan devices.Status) {
	defer s.fwd.Done()
	type seen struct {
		state  devices.State
		reason string
	}
	last := map[string]seen{}
	for {
		var st devices.Status
		select {
		case <-ctx.Done():
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			st = v
		}
		if st.State == devices.StateBusy {
			continue
		}
		d := deviceState(st)
		key := st.Kind + "/" + st.Device
		prev, known := last[key]
		now := seen{st.State, d.Reason}
		if known && prev == now {
			continue
		}
		last[key] = now
		if st.Kind == devices.KindPrinter && st.State == devices.StateIdle && (!known || prev.state != devices.StateIdle) {
			s.PrintNow()
		}
		if err := s.a.DeviceChanged(ctx, d); err != nil && ctx.Err() == nil {
			s.log.Error("record device state", devices.LogDevice, st.Device, devices.LogKind, st.Kind, devices.LogErr, err)
		}
	}
}

// scanEvent is the "scan" UI event the POS screen adds to the open sale
// (agent/web/static/app.js: es.addEventListener('scan', …)).
type scanEvent struct {
	Code      string `json:"code"`
	Symbology string `json:"symbology,omitempty"`
	Device    string `json:"device"`
}

// forwardScans pushes every serial scan to the POS screens.
func (s *Set) forwardScans(ctx context.Context, ch <-chan scanner.Scan) {
	defer s.fwd.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case sc := <-ch:
			s.a.Hub().Publish("scan", scanEvent{Code: sc.Code, Symbology: sc.Symbology, Device: sc.Device})
		}
	}
}

// Printer returns the printer driver, or nil (for tests and tools).
func (s *Set) Printer() *printer.Printer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.printer
}

// KickDrawer implements agent.Hardware: ESC p through the printer, bounded
// by DrawerTimeout.
func (s *Set) KickDrawer(ctx context.Context) error {
	p := s.Printer()
	if p == nil || !s.opts.Printer.Drawer {
		return ErrNoDrawer
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DrawerTimeout)
	defer cancel()
	return p.KickDrawer(ctx)
}

// HasDrawer implements agent.DrawerReporter: a drawer is wired to the
// printer (devices.printer.drawer_on_cash). Without one the API does not
// kick after a cash sale, so no "drawer did not open" message shows.
func (s *Set) HasDrawer() bool { return s.opts.Printer != nil && s.opts.Printer.Drawer }

// PrintNow implements agent.Hardware: it wakes the print worker. It never
// blocks.
func (s *Set) PrintNow() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ReceiptText implements agent.Hardware: the sale's receipt laid out for
// the printer (or the preview layout) and rendered as text by the virtual
// printer's interpreter. No device is involved.
func (s *Set) ReceiptText(ctx context.Context, saleID string) (string, error) {
	s.mu.Lock()
	a := s.a
	s.mu.Unlock()
	if a == nil {
		return "", errors.New("receipt text: devices not started")
	}
	r, err := s.receipt(ctx, saleID, "")
	if err != nil {
		return "", err
	}
	out, err := printer.Render(r, s.layout)
	if err != nil {
		return "", fmt.Errorf("receipt text %s: %w", saleID, err)
	}
	return text(out, s.layout.Columns()), nil
}

// JobText implements agent.JobPreviewer: any queued or printed job (a
// return slip, a pickup slip) laid out as the printer prints it, as text.
// No device is involved.
func (s *Set) JobText(ctx context.Context, job agent.PrintJob) (string, error) {
	s.mu.Lock()
	a := s.a
	s.mu.Unlock()
	if a == nil {
		return "", errors.New("job text: devices not started")
	}
	out, err := s.render(ctx, job, s.layout)
	if err != nil {
		return "", fmt.Errorf("job text %s: %w", job.ID, err)
	}
	return text(out, s.layout.Columns()), nil
}
