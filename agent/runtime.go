package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

// Options are everything the store agent runs with, as plain values: the
// command translates its YAML config into them.
type Options struct {
	Database string
	DB       localdb.Options
	Ledger   LedgerConfig
	// Link configures sync; an empty Link.Broker runs the agent offline.
	Link link.Options
	// HTTPListen is the POS API/UI address (default 127.0.0.1:8080);
	// "127.0.0.1:0" picks a free port. Empty serves no HTTP.
	HTTPListen string
	SessionTTL time.Duration
	Locale     string
	Version    string
	// Devices attaches scanners, printers and shelves; nil runs without.
	Devices DeviceSet
	// APIHandler, if set, builds the POS API and UI handler (see NewAPI).
	APIHandler func(a *Agent) (http.Handler, error)
	Logger     *slog.Logger
}

// DeviceSet starts the terminal's devices for an agent and stops them.
// It is an interface so the runtime does not depend on driver packages.
type DeviceSet interface {
	// Start attaches the devices to a; it must not block on a device that
	// is missing (a device plugged in later is picked up by the driver).
	Start(ctx context.Context, a *Agent) error
	// States reports each device's current state.
	States() []DeviceState
	// Stop stops the drivers and waits for them.
	Stop(ctx context.Context) error
}

// Agent is a running store agent: database, ledger, sync link, devices and
// the local HTTP server. New → Open → Close.
type Agent struct {
	opts   Options
	log    *slog.Logger
	db     *localdb.DB
	ledger *Ledger
	link   *link.Link
	hub    *Hub

	srv  *http.Server
	addr string

	reg      *prometheus.Registry
	metrics  *agentMetrics
	alertsMu sync.Mutex
	alerts   []Alert

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New fills defaults; it does not open anything.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	return &Agent{opts: opts, log: opts.Logger, hub: NewHub()}
}

// Run opens an agent, runs it until ctx ends, and closes it. The close gets
// its own 30 s (the current transaction and print job finish); a caller
// that wants to cut that short cancels the context given to Close.
func Run(ctx context.Context, opts Options) error {
	a := New(opts)
	if err := a.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return a.Close(cctx)
}

// Open opens the database, the ledger, the sync link, the devices and the
// HTTP server. A broker or device that is away does not fail Open.
func (a *Agent) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close(context.WithoutCancel(ctx))
		}
	}()
	if a.opts.Database == "" {
		return errors.New("open agent: no database path")
	}
	a.db, err = localdb.Open(ctx, a.opts.Database, a.opts.DB)
	if err != nil {
		return fmt.Errorf("open agent: %w", err)
	}
	lc := a.opts.Ledger
	if lc.Logger == nil {
		lc.Logger = a.log
	}
	prev := lc.OnCommit
	lc.OnCommit = func() {
		if a.link != nil {
			a.link.Notify()
		}
		if prev != nil {
			prev()
		}
	}
	if a.ledger, err = NewLedger(a.db, lc); err != nil {
		return fmt.Errorf("open agent: %w", err)
	}
	a.reg = prometheus.NewRegistry()
	a.metrics = newAgentMetrics(a)
	var bg context.Context
	bg, a.cancel = context.WithCancel(context.WithoutCancel(ctx))

	if a.opts.Link.Broker != "" {
		lo := a.opts.Link
		lo.Store, lo.Terminal = lc.Store, lc.Terminal
		if lo.AgentVersion == "" {
			lo.AgentVersion = a.opts.Version
		}
		if lo.Logger == nil {
			lo.Logger = a.log
		}
		lo.Apply = a.ledger.ApplyChange
		lo.OnAck = a.metrics.observeAck
		a.link = link.New(a.db, lo)
		if err := a.link.Open(ctx); err != nil {
			return fmt.Errorf("open agent: %w", err)
		}
	}
	if a.opts.Devices != nil {
		if err := a.opts.Devices.Start(bg, a); err != nil {
			return fmt.Errorf("open agent: devices: %w", err)
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.statusLoop(bg)
	}()
	if a.opts.HTTPListen != "" {
		if err := a.serveHTTP(); err != nil {
			return fmt.Errorf("open agent: %w", err)
		}
	}
	a.log.Info("agent ready", "store", lc.Store, "terminal", lc.Terminal, "http", a.addr, "db", a.db.Path(), "version", a.opts.Version)
	return nil
}

func (a *Agent) serveHTTP() error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Healthy means the agent can sell: the database answers. Being
		// offline from HQ is not unhealthy for a store terminal.
		err := a.db.Read.PingContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"ok":false,"error":%q}`, err.Error())
			return
		}
		st := a.Status(r.Context())
		fmt.Fprintf(w, `{"ok":true,"online":%t,"backlog":%d,"version":%q}`, st.Sync.Online, st.Sync.Backlog, a.opts.Version)
	})
	if a.opts.APIHandler != nil {
		h, err := a.opts.APIHandler(a)
		if err != nil {
			return err
		}
		mux.Handle("/", h)
	}
	ln, err := net.Listen("tcp", a.opts.HTTPListen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.opts.HTTPListen, err)
	}
	a.addr = ln.Addr().String()
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	// A screen's event stream never ends by itself: Shutdown would wait
	// out its whole deadline for it. Closing the hub ends every stream
	// (GET /api/events returns when its channel closes).
	a.srv.RegisterOnShutdown(a.hub.Close)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Close stops the HTTP server, the devices (letting a print job finish),
// the sync link, and closes the database. It returns the first error.
func (a *Agent) Close(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.Shutdown(ctx))
	}
	if a.opts.Devices != nil && a.ledger != nil {
		errs = append(errs, a.opts.Devices.Stop(ctx))
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.link != nil {
		errs = append(errs, a.link.Close(ctx))
	}
	a.wg.Wait()
	a.hub.Close()
	if a.ledger != nil {
		errs = append(errs, a.ledger.Close())
	}
	if a.db != nil {
		errs = append(errs, a.db.Close(ctx))
	}
	return errors.Join(errs...)
}

// Ledger is the agent's ledger.
func (a *Agent) Ledger() *Ledger { return a.ledger }

// Hub is the agent's UI event hub.
func (a *Agent) Hub() *Hub { return a.hub }

// Link is the agent's sync link (nil when offline by configuration).
func (a *Agent) Link() *link.Link { return a.link }

// Addr is the HTTP address the agent listens on.
func (a *Agent) Addr() string { return a.addr }

// Logger is the agent's logger.
func (a *Agent) Logger() *slog.Logger { return a.log }

// Registry is the agent's Prometheus registry, for device metrics.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// Status implements StatusSource.
func (a *Agent) Status(ctx context.Context) SystemStatus {
	st := SystemStatus{Store: a.opts.Ledger.Store, Terminal: a.opts.Ledger.Terminal, Version: a.opts.Version, Devices: []DeviceState{}, Alerts: []Alert{}}
	if a.link != nil {
		if ls, err := a.link.State(ctx); err == nil {
			st.Sync = SyncState{Online: ls.Connected && ls.Reconciled, Backlog: ls.Backlog, OldestUnacked: ls.OldestUnacked, LastAck: ls.LastAck, Rejected: ls.Rejected}
		}
	} else if os, err := a.db.OutboxState(ctx); err == nil {
		st.Sync = SyncState{Backlog: os.Backlog, OldestUnacked: os.OldestUnacked, Rejected: os.Rejected}
	}
	if a.opts.Devices != nil {
		st.Devices = append(st.Devices, a.opts.Devices.States()...)
	}
	a.alertsMu.Lock()
	st.Alerts = append(st.Alerts, a.alerts...)
	a.alertsMu.Unlock()
	return st
}

// RaiseAlert records a shelf alert for the status bar (a recovery removes
// the alert it ends, see noteAlert), pushes it to the UI and writes it to
// the outbox for HQ.
func (a *Agent) RaiseAlert(ctx context.Context, al Alert) error {
	a.noteAlert(al)
	a.hub.Publish("alert", al)
	return a.ledger.write(ctx, func(tx *sql.Tx) error {
		_, err := a.db.AppendEvent(ctx, tx, wire.EventShelfAlert, wire.ShelfAlert{Kind: al.Kind, Shelf: al.Shelf, Slot: al.Slot, SKU: al.SKU,
			Count: al.Count, Grams: al.Grams, Detail: al.Detail, At: al.At.UTC()}, a.ledger.now())
		return err
	})
}

// DeviceChanged records a device's new state: pushed to the UI at once and
// written to the outbox so HQ sees device faults.
func (a *Agent) DeviceChanged(ctx context.Context, d DeviceState) error {
	a.hub.Publish("status", d)
	return a.ledger.write(ctx, func(tx *sql.Tx) error {
		_, err := a.db.AppendEvent(ctx, tx, wire.EventDeviceStatus, wire.DeviceStatus{Device: d.Name, Kind: d.Kind, State: d.State, Reason: d.Reason, At: d.At.UTC()}, a.ledger.now())
		return err
	})
}

// statusLoop pushes the sync state to the UI when it changes.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last SyncState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st := a.Status(ctx)
			if st.Sync.Online != last.Online || st.Sync.Backlog != last.Backlog {
				a.hub.Publish("sync", st.Sync)
				last = st.Sync
			}
		}
	}
}

// agentMetrics are the agent's Prometheus figures.
type agentMetrics struct {
	ackLatency prometheus.Histogram
	acks       prometheus.Counter
}

func newAgentMetrics(a *Agent) *agentMetrics {
	m := &agentMetrics{
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "edgepos_agent_sync_ack_seconds",
			Help: "Time from publishing a batch to HQ's ack.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgepos_agent_sync_acks_total", Help: "Acks received from HQ."}),
	}
	a.reg.MustRegister(m.ackLatency, m.acks, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		&agentCollector{a: a})
	return m
}

func (m *agentMetrics) observeAck(_ int64, d time.Duration) {
	m.acks.Inc()
	m.ackLatency.Observe(d.Seconds())
}

// agentCollector reads the ledger and outbox at scrape time.
type agentCollector struct{ a *Agent }

var (
	descSales      = prometheus.NewDesc("edgepos_agent_sales_total", "Sales completed on this terminal.", nil, nil)
	descSalesValue = prometheus.NewDesc("edgepos_agent_sales_minor_units_total", "Value of completed sales, minor units.", nil, nil)
	descBacklog    = prometheus.NewDesc("edgepos_agent_outbox_backlog_events", "Events waiting for HQ's ack.", nil, nil)
	descOldest     = prometheus.NewDesc("edgepos_agent_outbox_oldest_age_seconds", "Age of the oldest unacked event (0 when none).", nil, nil)
	descRejected   = prometheus.NewDesc("edgepos_agent_outbox_rejected_events", "Events HQ rejected (dead letters).", nil, nil)
	descOnline     = prometheus.NewDesc("edgepos_agent_sync_online", "1 when connected to the broker and reconciled with HQ.", nil, nil)
	descBatches    = prometheus.NewDesc("edgepos_agent_sync_batches_sent_total", "Event batches published.", nil, nil)
	descResends    = prometheus.NewDesc("edgepos_agent_sync_resends_total", "Times the link went back to the last ack.", nil, nil)
	descPrintQ     = prometheus.NewDesc("edgepos_agent_print_queue_jobs", "Print jobs by state.", []string{"state"}, nil)
	descDevice     = prometheus.NewDesc("edgepos_agent_device_up", "1 when the device is idle or busy, 0 when closed or in error.", []string{"device", "kind", "state"}, nil)
)

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSales, descSalesValue, descBacklog, descOldest, descRejected, descOnline, descBatches, descResends, descPrintQ, descDevice} {
		ch <- d
	}
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n, v int64
	if err := a.db.Read.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(total), 0) FROM sales WHERE state IN ('completed', 'voided')").Scan(&n, &v); err == nil {
		ch <- prometheus.MustNewConstMetric(descSales, prometheus.CounterValue, float64(n))
		ch <- prometheus.MustNewConstMetric(descSalesValue, prometheus.CounterValue, float64(v))
	}
	if os, err := a.db.OutboxState(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(os.Backlog))
		age := 0.0
		if !os.OldestUnacked.IsZero() {
			age = time.Since(os.OldestUnacked).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age)
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.GaugeValue, float64(os.Rejected))
	}
	if a.link != nil {
		if ls, err := a.link.State(ctx); err == nil {
			on := 0.0
			if ls.Connected && ls.Reconciled {
				on = 1
			}
			ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, on)
			ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(ls.BatchesSent))
			ch <- prometheus.MustNewConstMetric(descResends, prometheus.CounterValue, float64(ls.Resends))
		}
	}
	rows, err := a.db.Read.QueryContext(ctx, "SELECT state, COUNT(*) FROM print_jobs GROUP BY state")
	if err == nil {
		counts := map[string]float64{"queued": 0, "printed": 0, "failed": 0}
		for rows.Next() {
			var s string
			var k float64
			if rows.Scan(&s, &k) == nil {
				counts[s] = k
			}
		}
		rows.Close()
		for s, k := range counts {
			ch <- prometheus.MustNewConstMetric(descPrintQ, prometheus.GaugeValue, k, s)
		}
	}
	if a.opts.Devices != nil {
		for _, d := range a.opts.Devices.States() {
			up := 0.0
			if d.State == "idle" || d.State == "busy" {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descDevice, prometheus.GaugeValue, up, d.Name, d.Kind, d.State)
		}
	}
}
