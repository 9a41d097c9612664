package devset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/shelf"
)

// ShelfOptions configure one weight shelf.
type ShelfOptions struct {
	Config shelf.Config
	// Open opens a Modbus shelf's serial port; default serialport.Open.
	Open serialport.Opener
}

// Shelves attaches weight shelves (devices/shelf) to the agent; it is
// the Attachment of Options.Attachments for them (docs/shelves.md):
//
//   - a count drop is explained by the till's sales: the shelves' Sales is
//     agent.Ledger.UnitsSold (completed sales since a time, whole units);
//   - every alert event (low_stock, low_stock_cleared, shrink, ambiguous,
//     sensor_offline, sensor_online) goes to agent.RaiseAlert: the status
//     bar (a recovery removes the alert it ends), the screens' "alert"
//     event and, through the outbox, HQ;
//   - a count is not an alert: it goes to the screens only, as a "shelf"
//     UI event (the shelf.Event as JSON);
//   - states go to the Set's hub, which forwards them to
//     agent.DeviceChanged like every other device's.
//
// A shelf whose broker or indicator is absent does not fail Start: it
// reports error and keeps trying.
type Shelves struct {
	opts []ShelfOptions
	log  *slog.Logger

	mu      sync.Mutex
	shelves []*shelf.Shelf
	col     prometheus.Collector
	reg     *prometheus.Registry
	stop    chan struct{}
	wg      sync.WaitGroup
}

var _ Attachment = (*Shelves)(nil)

// NewShelves validates every shelf's configuration (after defaults) and
// returns the attachment; it touches no device or broker. log defaults
// to the agent's.
func NewShelves(opts []ShelfOptions, log *slog.Logger) (*Shelves, error) {
	names := map[string]bool{}
	for i, o := range opts {
		if err := o.Config.WithDefaults().Validate(); err != nil {
			return nil, fmt.Errorf("devices: shelf %d: %w", i, err)
		}
		if names[o.Config.Name] {
			return nil, fmt.Errorf("devices: two shelves named %q", o.Config.Name)
		}
		names[o.Config.Name] = true
	}
	return &Shelves{opts: opts, log: log}, nil
}

// ledgerSales answers the shelves' Sales question from the ledger.
type ledgerSales struct{ l *agent.Ledger }

func (s ledgerSales) Sold(ctx context.Context, sku string, since time.Time) (int64, error) {
	return s.l.UnitsSold(ctx, sku, since)
}

// Start implements Attachment: it opens every shelf, reporting to hub,
// and starts the goroutine that turns their events into alerts.
func (s *Shelves) Start(ctx context.Context, a *agent.Agent, hub *devices.Hub) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return errors.New("shelves: already started")
	}
	log := s.log
	if log == nil {
		log = a.Logger()
	}
	events := make(chan shelf.Event, 64)
	var opened []*shelf.Shelf
	for _, o := range s.opts {
		sh := shelf.New(o.Config, shelf.Options{Logger: log, Open: o.Open, Out: events, Hub: hub, Sales: ledgerSales{a.Ledger()}})
		if err := sh.Open(ctx); err != nil {
			// Undo the shelves opened so far; their close errors go with
			// the open error rather than being dropped.
			for _, p := range opened {
				err = errors.Join(err, p.Close(context.WithoutCancel(ctx)))
			}
			return err
		}
		opened = append(opened, sh)
	}
	s.shelves = opened
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go s.run(context.WithoutCancel(ctx), a, log, events, s.stop)
	s.col = &shelfCollector{shelves: opened}
	s.reg = a.Registry()
	if s.reg != nil {
		if err := s.reg.Register(s.col); err != nil {
			log.Warn("shelf metrics not registered", devices.LogErr, err)
			s.reg = nil
		}
	}
	return nil
}

// run hands events to the agent until stop; then it takes what the
// closed shelves flushed into the channel and returns.
func (s *Shelves) run(ctx context.Context, a *agent.Agent, log *slog.Logger, events <-chan shelf.Event, stop <-chan struct{}) {
	defer s.wg.Done()
	for {
		select {
		case e := <-events:
			handleShelfEvent(ctx, a, log, e)
		case <-stop:
			for {
				select {
				case e := <-events:
					handleShelfEvent(ctx, a, log, e)
				default:
					return
				}
			}
		}
	}
}

// handleShelfEvent turns one shelf event into an alert, or a count into a
// UI event.
func handleShelfEvent(ctx context.Context, a *agent.Agent, log *slog.Logger, e shelf.Event) {
	if !e.IsAlert() {
		// A count is the shelf's view, not the store's inventory: the
		// screens may show it, HQ does not need it.
		a.Hub().Publish("shelf", e)
		return
	}
	al := agent.Alert{Kind: e.Kind, Shelf: e.Shelf, Slot: strconv.Itoa(e.Slot), SKU: e.SKU, Count: e.Count, Grams: e.Grams, Detail: e.Detail, At: e.At}
	if err := a.RaiseAlert(ctx, al); err != nil {
		log.Error("shelf alert not recorded", devices.LogDevice, e.Shelf, devices.LogKind, devices.KindShelf, "alert", e.Kind, devices.LogErr, err)
	}
}

// Stop implements Attachment: it closes every shelf (its last events are
// still raised), then stops the event goroutine.
func (s *Shelves) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop == nil {
		return nil
	}
	var errs []error
	for _, sh := range s.shelves {
		if err := sh.Close(ctx); err != nil && !errors.Is(err, shelf.ErrNotOpen) {
			errs = append(errs, err)
		}
	}
	close(s.stop)
	s.wg.Wait()
	if s.reg != nil {
		s.reg.Unregister(s.col)
	}
	s.stop, s.reg, s.col = nil, nil, nil
	// The shelves stay, closed, so States goes on naming them.
	return errors.Join(errs...)
}

// States implements Attachment: each configured shelf's state (closed
// before Start).
func (s *Shelves) States() []devices.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]devices.Status, 0, len(s.opts))
	if s.shelves == nil {
		for _, o := range s.opts {
			out = append(out, devices.Status{Device: o.Config.Name, Kind: devices.KindShelf, State: devices.StateClosed})
		}
		return out
	}
	for _, sh := range s.shelves {
		out = append(out, sh.Status())
	}
	return out
}

// Stats returns each started shelf's counters by name.
func (s *Shelves) Stats() map[string]shelf.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]shelf.Stats{}
	for _, sh := range s.shelves {
		out[sh.Name()] = sh.Stats()
	}
	return out
}

// shelfCollector exports the shelves' counters on the agent's /metrics.
type shelfCollector struct{ shelves []*shelf.Shelf }

var (
	descShelfMessages = prometheus.NewDesc("edgepos_agent_shelf_messages_total", "Shelf MQTT messages or Modbus polls handled.", []string{"shelf"}, nil)
	descShelfGarbage  = prometheus.NewDesc("edgepos_agent_shelf_garbage_total", "Shelf messages that did not decode or were too large.", []string{"shelf"}, nil)
	descShelfRejected = prometheus.NewDesc("edgepos_agent_shelf_rejected_readings_total", "Shelf readings rejected, by reason.", []string{"shelf", "reason"}, nil)
	descShelfErrors   = prometheus.NewDesc("edgepos_agent_shelf_modbus_errors_total", "Modbus exchanges that failed, by kind.", []string{"shelf", "kind"}, nil)
	descShelfReconn   = prometheus.NewDesc("edgepos_agent_shelf_reconnects_total", "Shelf reconnections after the first connection.", []string{"shelf"}, nil)
	descShelfDropped  = prometheus.NewDesc("edgepos_agent_shelf_dropped_total", "Shelf messages or events dropped because a queue was full.", []string{"shelf", "queue"}, nil)
)

func (c *shelfCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descShelfMessages, descShelfGarbage, descShelfRejected, descShelfErrors, descShelfReconn, descShelfDropped} {
		ch <- d
	}
}

func (c *shelfCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, sh := range c.shelves {
		st, n := sh.Stats(), sh.Name()
		counter(descShelfMessages, st.Messages, n)
		counter(descShelfGarbage, st.Garbage, n)
		for reason, v := range st.Rejected {
			counter(descShelfRejected, v, n, string(reason))
		}
		counter(descShelfErrors, st.Timeouts, n, "timeout")
		counter(descShelfErrors, st.CRCErrors, n, "crc")
		counter(descShelfErrors, st.Exceptions, n, "exception")
		counter(descShelfErrors, st.Truncated, n, "truncated")
		counter(descShelfErrors, st.Unexpected, n, "unexpected")
		counter(descShelfReconn, st.Reconnects, n)
		counter(descShelfDropped, st.Dropped, n, "inbox")
		counter(descShelfDropped, st.EventsDropped, n, "events")
	}
}
