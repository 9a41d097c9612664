// Package shelf drives IoT weight shelves: one load cell per slot, one SKU
// per slot, items counted by weight (DEVICE-PROTOCOLS.md §3).
//
// Two transports bring the weights in:
//   - JSON over MQTT from sensors on the store LAN (DecodeReadings
//     documents the payload), through eclipse/paho.mqtt.golang. The message
//     handler never blocks paho's router: it only queues the payload.
//   - Modbus RTU weighing indicators on RS-485 through devices/serialport:
//     a small client of our own (function 03, CRC-16/MODBUS, exception
//     responses as *ExceptionError, response timeouts, t3.5 inter-frame
//     gaps), polling each slot's 32-bit signed gross weight from two
//     holding registers in a configurable word order.
//
// Whatever the transport, one engine goroutine owns the counting: it
// smooths each slot's readings to a stable weight (the last
// Config.StableReadings readings within Config.StableBandG of each other,
// taking their median — the "publish only after stability" option of
// DEVICE-PROTOCOLS.md §3 [46], chosen over an EMA because an EMA always
// lags and never says when it has settled), turns it into a count with the
// rule n = round((W − tare)/unit) accepted only when the residual is within
// max(tolerance, 5 % of the change) [49], and raises alerts: low stock
// with hysteresis, shrink for a drop that no sale explains once the shrink
// window has passed (Sales), ambiguous weights, and sensors gone silent.
// Events go to the owner through a channel without ever blocking the
// engine; device state goes to a devices.Hub.
//
// Lifecycle: New fills defaults, Open validates and starts the goroutines,
// Close stops and waits for them.
package shelf

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/serialport"
)

// Sentinel errors of the package.
var (
	// ErrBadConfig is wrapped by configuration errors.
	ErrBadConfig = errors.New("bad shelf config")
	// ErrNotOpen is returned by Close on a shelf that is not open.
	ErrNotOpen = errors.New("shelf not open")
)

// Transport says how a shelf's weights arrive.
type Transport string

// The transports.
const (
	TransportMQTT   Transport = "mqtt"
	TransportModbus Transport = "modbus"
)

// Slot is one load cell holding one SKU. Weights are grams.
type Slot struct {
	// Slot is the slot's number on its shelf (the payload's "slot").
	Slot int
	// SKU is the product on the slot.
	SKU string
	// TareG is the empty tray's weight.
	TareG int64
	// UnitG is one item's weight; must be positive.
	UnitG int64
	// ToleranceG is the accepted error of a count; less than UnitG/2.
	ToleranceG int64
	// LowStock raises low_stock at or below this count.
	LowStock int64
	// Register is the first of the two holding registers (0-based PDU
	// address: 40001 is 0) holding the slot's gross weight (Modbus only).
	Register uint16
}

// MQTTConfig configures the MQTT transport.
type MQTTConfig struct {
	// Broker is the store-LAN broker: tcp://host:1883, ssl://host:8883.
	Broker string
	// Topic the shelf's sensors publish to (no wildcards).
	Topic string
	// Username and Password are optional broker credentials.
	Username, Password string
	// ClientID defaults to edgepos-shelf-<name>-<random>, unique per
	// process so two terminals never kick each other off the broker.
	ClientID string
	// QoS of the subscription; default 0 (a lost reading is replaced by
	// the next one; the sensor repeats its weight as a heartbeat).
	QoS byte
	// MaxPayload bounds one message; default DefaultMaxPayload.
	MaxPayload int
	// TLS for an ssl:// broker; nil uses the system roots.
	TLS *tls.Config
}

// ModbusConfig configures the Modbus RTU transport.
type ModbusConfig struct {
	// Port is the RS-485 adapter (path, baud, parity …).
	Port serialport.Config
	// UnitID is the indicator's slave address, 1..247.
	UnitID byte
	// WordOrder of the two registers of a weight; default HighFirst.
	WordOrder WordOrder
	// PollInterval between reads of every slot; default 1 s.
	PollInterval time.Duration
	// ResponseTimeout waits for one response; default 500 ms.
	ResponseTimeout time.Duration
	// ScaleMul and ScaleDiv turn the indicator's raw value into grams:
	// grams = raw × ScaleMul ÷ ScaleDiv (rounded). Default 1 and 1 (the
	// indicator reports grams); an indicator showing 0.01 kg is 10 and 1.
	ScaleMul, ScaleDiv int64
}

// Config configures one shelf.
type Config struct {
	// Name identifies the shelf in events, status and logs.
	Name      string
	Transport Transport
	MQTT      MQTTConfig
	Modbus    ModbusConfig
	Slots     []Slot

	// StableReadings consecutive readings within StableBandG of each other
	// make a stable weight; default 3.
	StableReadings int
	// StableBandG is the spread allowed among them; 0 (the default) uses
	// each slot's max(ToleranceG, 2 g).
	StableBandG int64
	// OfflineAfter is the silence after which a slot is sensor_offline;
	// default 30 s. MQTT sensors must repeat their weight more often.
	OfflineAfter time.Duration
	// ShrinkWindow is how long a count drop waits for sales that explain
	// it before it is judged; default 10 min.
	ShrinkWindow time.Duration
	// SaleLookback lets sales up to this long before a drop explain it
	// (the clocks of till and shelf, a sale rung up before the item was
	// fetched); default 1 min.
	SaleLookback time.Duration
	// LowStockMargin is the hysteresis: low stock clears only above
	// LowStock + LowStockMargin; default 1, at least 1.
	LowStockMargin int64
	// MaxG is the heaviest believable gross weight; default 500 kg.
	MaxG int64
	// AlertRepeat is the least time between two ambiguous alerts of one
	// slot; default 5 min.
	AlertRepeat time.Duration
	// Tick is how often time-based rules run; default 200 ms.
	Tick time.Duration
	// SalesTimeout bounds one Sales.Sold call; default 5 s.
	SalesTimeout time.Duration
	// LogInterval limits repeated-failure logs; default 1 min.
	LogInterval time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff; default
	// 200 ms and 10 s.
	ReconnectMin, ReconnectMax time.Duration
	// Inbox is how many messages may wait for the engine; default 256.
	Inbox int
	// MaxPending bounds events waiting for the owner; past it the oldest
	// is dropped and counted (Stats.EventsDropped); default 4096.
	MaxPending int
}

// Options are the shelf's collaborators; all are optional.
type Options struct {
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// Open opens the serial port (Modbus); default serialport.Open.
	Open serialport.Opener
	// Out receives events; several shelves may share one channel. If nil
	// the shelf makes its own (see Events).
	Out chan<- Event
	// Hub receives status reports; if nil the shelf makes its own.
	Hub *devices.Hub
	// Sales explains count drops; nil disables shrink detection.
	Sales Sales
}

// Stats are a shelf's counters since New.
type Stats struct {
	// Messages are MQTT messages or Modbus polls handed to the engine.
	Messages uint64 `json:"messages"`
	// Readings are slot readings that decoded (accepted or rejected).
	Readings uint64 `json:"readings"`
	// Rejected readings by reason (negative, absurd, below_tare, unknown_slot).
	Rejected map[Reason]uint64 `json:"rejected"`
	// Garbage are messages that did not decode or were over the size limit.
	Garbage uint64 `json:"garbage"`
	// Dropped are messages dropped because the engine's inbox was full.
	Dropped       uint64 `json:"dropped"`
	Events        uint64 `json:"events"`
	EventsDropped uint64 `json:"events_dropped"`
	// Modbus failures by kind.
	Timeouts   uint64 `json:"timeouts"`
	CRCErrors  uint64 `json:"crc_errors"`
	Exceptions uint64 `json:"exceptions"`
	Truncated  uint64 `json:"truncated"`
	Unexpected uint64 `json:"unexpected"`
	// Reconnects counts reconnections after a first connection.
	Reconnects uint64 `json:"reconnects"`
}

// input is one delivery to the engine: an MQTT payload or a Modbus poll.
type input struct {
	at       time.Time
	payload  []byte
	readings []Reading
}

// Shelf is one weight shelf. Its methods are safe for concurrent use.
type Shelf struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	open   serialport.Opener
	out    chan<- Event
	own    chan Event
	hub    *devices.Hub
	status *devices.Reporter
	sales  Sales
	inbox  chan input

	messages, readings, garbage, dropped, events, eventsDropped atomic.Uint64
	timeouts, crcErrors, exceptions, truncated, unexpected      atomic.Uint64
	reconnects                                                  atomic.Uint64
	rejMu                                                       sync.Mutex
	rejected                                                    map[Reason]uint64

	rejectLog, garbageLog, connLog, pollLog, salesLog, dropLog devices.Throttle

	hmu       sync.Mutex
	transport string // why the transport is unusable; "" when fine
	sensors   string // why no slot is heard from; "" when some are

	qmu   sync.Mutex
	queue []Event
	qsig  chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a shelf with defaults filled in; it touches nothing.
func New(cfg Config, opt Options) *Shelf {
	cfg = cfg.WithDefaults()
	s := &Shelf{cfg: cfg, log: opt.Logger, now: opt.Now, open: opt.Open, out: opt.Out, hub: opt.Hub, sales: opt.Sales,
		rejected: map[Reason]uint64{}, qsig: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With(devices.LogDevice, cfg.Name, devices.LogKind, devices.KindShelf)
	if s.now == nil {
		s.now = time.Now
	}
	if s.open == nil {
		s.open = serialport.Open
	}
	if s.out == nil {
		s.own = make(chan Event, 64)
		s.out = s.own
	}
	if s.hub == nil {
		s.hub = devices.NewHub()
	}
	s.status = &devices.Reporter{Device: cfg.Name, Kind: devices.KindShelf, Hub: s.hub, Now: s.now}
	for _, t := range []*devices.Throttle{&s.rejectLog, &s.garbageLog, &s.connLog, &s.pollLog, &s.salesLog, &s.dropLog} {
		t.Interval = cfg.LogInterval
	}
	return s
}

// WithDefaults returns c with unset fields filled in.
func (c Config) WithDefaults() Config {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if c.StableReadings == 0 {
		c.StableReadings = 3 // DEVICE-PROTOCOLS.md §3 [46]: "3–5 s of stability"
	}
	def(&c.OfflineAfter, 30*time.Second)
	def(&c.ShrinkWindow, 10*time.Minute)
	def(&c.SaleLookback, time.Minute)
	def(&c.AlertRepeat, 5*time.Minute)
	def(&c.Tick, 200*time.Millisecond)
	def(&c.SalesTimeout, 5*time.Second)
	def(&c.LogInterval, time.Minute)
	def(&c.ReconnectMin, 200*time.Millisecond)
	def(&c.ReconnectMax, 10*time.Second)
	if c.LowStockMargin == 0 {
		c.LowStockMargin = 1
	}
	if c.MaxG == 0 {
		c.MaxG = 500_000
	}
	if c.Inbox == 0 {
		c.Inbox = 256
	}
	if c.MaxPending == 0 {
		c.MaxPending = 4096
	}
	switch c.Transport {
	case TransportMQTT:
		if c.MQTT.MaxPayload == 0 {
			c.MQTT.MaxPayload = DefaultMaxPayload
		}
	case TransportModbus:
		c.Modbus.Port = c.Modbus.Port.WithDefaults()
		if c.Modbus.WordOrder == "" {
			c.Modbus.WordOrder = HighFirst
		}
		def(&c.Modbus.PollInterval, time.Second)
		def(&c.Modbus.ResponseTimeout, 500*time.Millisecond)
		if c.Modbus.ScaleMul == 0 {
			c.Modbus.ScaleMul = 1
		}
		if c.Modbus.ScaleDiv == 0 {
			c.Modbus.ScaleDiv = 1
		}
	}
	return c
}

// Validate checks a Config after WithDefaults without touching the
// network or the device.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: shelf %s: %s", ErrBadConfig, c.Name, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		return bad("name is empty")
	}
	switch c.Transport {
	case TransportMQTT:
		m := c.MQTT
		u, err := url.Parse(m.Broker)
		if err != nil || u.Host == "" {
			return bad("broker %q: want tcp://host:port or ssl://host:port", m.Broker)
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return bad("broker %q: scheme %q", m.Broker, u.Scheme)
		}
		if m.Topic == "" || strings.ContainsAny(m.Topic, "+#\x00") {
			return bad("topic %q: required, without wildcards", m.Topic)
		}
		if m.QoS > 2 {
			return bad("qos %d: want 0, 1 or 2", m.QoS)
		}
		if m.MaxPayload < 64 || m.MaxPayload > 1<<20 {
			return bad("max payload %d: want 64..1048576 bytes", m.MaxPayload)
		}
	case TransportModbus:
		m := c.Modbus
		if err := m.Port.Validate(); err != nil {
			return fmt.Errorf("%w: shelf %s: %w", ErrBadConfig, c.Name, err)
		}
		if m.UnitID < 1 || m.UnitID > 247 {
			return bad("unit id %d: want 1..247", m.UnitID)
		}
		if m.WordOrder != HighFirst && m.WordOrder != LowFirst {
			return bad("word order %q: want %s or %s", m.WordOrder, HighFirst, LowFirst)
		}
		if m.PollInterval < 10*time.Millisecond || m.ResponseTimeout < 10*time.Millisecond || m.ResponseTimeout > 10*time.Second {
			return bad("poll interval %s / response timeout %s: want at least 10ms, timeout at most 10s", m.PollInterval, m.ResponseTimeout)
		}
		if m.ScaleMul < 1 || m.ScaleDiv < 1 || m.ScaleMul > 1000 || m.ScaleDiv > 1000 {
			return bad("scale %d/%d: want 1..1000 each", m.ScaleMul, m.ScaleDiv)
		}
	default:
		return bad("transport %q: want mqtt or modbus", c.Transport)
	}
	if len(c.Slots) == 0 {
		return bad("no slots")
	}
	seen := map[int]bool{}
	regs := map[uint16]int{}
	for _, s := range c.Slots {
		switch {
		case s.Slot < 0 || s.Slot > MaxSlot:
			return bad("slot %d: want 0..%d", s.Slot, MaxSlot)
		case seen[s.Slot]:
			return bad("slot %d listed twice", s.Slot)
		case s.SKU == "":
			return bad("slot %d: sku is empty", s.Slot)
		case s.UnitG <= 0:
			return bad("slot %d: unit weight %d g must be positive", s.Slot, s.UnitG)
		case s.TareG < 0 || s.LowStock < 0:
			return bad("slot %d: tare and low stock must not be negative", s.Slot)
		case s.ToleranceG < 0 || 2*s.ToleranceG >= s.UnitG:
			return bad("slot %d: tolerance %d g: want 0 up to less than half the unit weight %d g", s.Slot, s.ToleranceG, s.UnitG)
		}
		seen[s.Slot] = true
		if c.Transport == TransportModbus {
			if s.Register == 0xFFFF {
				return bad("slot %d: register %d: a weight needs two registers", s.Slot, s.Register)
			}
			for _, r := range []uint16{s.Register, s.Register + 1} {
				if o, dup := regs[r]; dup {
					return bad("slot %d: register %d is also slot %d's", s.Slot, r, o)
				}
				regs[r] = s.Slot
			}
		}
	}
	switch {
	case c.StableReadings < 1 || c.StableReadings > 50:
		return bad("stable readings %d: want 1..50", c.StableReadings)
	case c.StableBandG < 0 || c.MaxG < 1:
		return bad("stable band and max weight must be positive")
	case c.LowStockMargin < 1:
		return bad("low stock margin %d: want at least 1", c.LowStockMargin)
	case c.OfflineAfter <= 0 || c.ShrinkWindow <= 0 || c.SaleLookback < 0 || c.AlertRepeat < 0 ||
		c.Tick <= 0 || c.SalesTimeout <= 0 || c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin:
		return bad("durations must be positive (reconnect max ≥ min)")
	case c.Inbox < 1 || c.MaxPending < 1:
		return bad("inbox and max pending must be positive")
	}
	return nil
}

// Name returns the shelf's name.
func (s *Shelf) Name() string { return s.cfg.Name }

// Config returns the shelf's configuration with defaults filled in.
func (s *Shelf) Config() Config { return s.cfg }

// Events returns the shelf's own event channel, or nil when Options.Out
// was given.
func (s *Shelf) Events() <-chan Event { return s.own }

// Hub returns the status hub the shelf reports to.
func (s *Shelf) Hub() *devices.Hub { return s.hub }

// Status returns the shelf's current device status.
func (s *Shelf) Status() devices.Status { return s.status.Current() }

// Stats returns the shelf's counters.
func (s *Shelf) Stats() Stats {
	st := Stats{Messages: s.messages.Load(), Readings: s.readings.Load(), Garbage: s.garbage.Load(), Dropped: s.dropped.Load(),
		Events: s.events.Load(), EventsDropped: s.eventsDropped.Load(), Timeouts: s.timeouts.Load(), CRCErrors: s.crcErrors.Load(),
		Exceptions: s.exceptions.Load(), Truncated: s.truncated.Load(), Unexpected: s.unexpected.Load(), Reconnects: s.reconnects.Load(),
		Rejected: map[Reason]uint64{}}
	s.rejMu.Lock()
	for k, v := range s.rejected {
		st.Rejected[k] = v
	}
	s.rejMu.Unlock()
	return st
}

// Open validates the configuration and starts the shelf. A broker or
// device that is absent at Open is not an error: the shelf reports
// StateError and keeps trying, so the agent starts without its shelves.
func (s *Shelf) Open(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("open shelf %s: %w", s.cfg.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("open shelf %s: already open", s.cfg.Name)
	}
	s.inbox = make(chan input, s.cfg.Inbox)
	s.hmu.Lock()
	s.transport, s.sensors = "connecting", ""
	s.updateStatusLocked()
	s.hmu.Unlock()
	// The goroutines outlive Open's ctx: they run until Close.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	opened := s.now()
	s.wg.Add(3)
	go s.engine(runCtx, opened)
	go s.deliver(runCtx)
	if s.cfg.Transport == TransportMQTT {
		go s.runMQTT(runCtx)
	} else {
		go s.runModbus(runCtx)
	}
	return nil
}

// Close stops the shelf, waits for its goroutines, hands the owner what
// events it can take without blocking (the rest are counted as dropped)
// and reports StateClosed. It returns ctx's error if ctx ends first.
func (s *Shelf) Close(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return ErrNotOpen
	}
	cancel()
	if err := devices.Wait(ctx, &s.wg); err != nil {
		return fmt.Errorf("close shelf %s: %w", s.cfg.Name, err)
	}
	for {
		e, ok := s.pop()
		if !ok {
			break
		}
		select {
		case s.out <- e:
		default:
			s.eventsDropped.Add(1)
		}
	}
	s.status.Set(devices.StateClosed, "")
	return nil
}

// engine owns the counter: every reading and every tick goes through it.
func (s *Shelf) engine(ctx context.Context, opened time.Time) {
	defer s.wg.Done()
	r := rules{stableReadings: s.cfg.StableReadings, stableBandG: s.cfg.StableBandG, offlineAfter: s.cfg.OfflineAfter,
		shrinkWindow: s.cfg.ShrinkWindow, saleLookback: s.cfg.SaleLookback, lowStockMargin: s.cfg.LowStockMargin,
		maxG: s.cfg.MaxG, alertRepeat: s.cfg.AlertRepeat, salesTimeout: s.cfg.SalesTimeout}
	c := newCounter(s.cfg.Name, r, s.cfg.Slots, s.sales, opened, s.emit, s.salesFailed)
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-s.inbox:
			s.handle(c, in)
		case <-t.C:
			c.tick(ctx, s.now())
		}
		s.setSensors(c.allOffline(), s.cfg.OfflineAfter)
	}
}

// handle decodes one input and feeds its readings to the counter.
func (s *Shelf) handle(c *counter, in input) {
	s.messages.Add(1)
	rs := in.readings
	if in.payload != nil {
		var err error
		rs, err = DecodeReadings(in.payload, s.cfg.MQTT.MaxPayload)
		if err != nil {
			s.badMessage(err)
			return
		}
	}
	for _, r := range rs {
		s.readings.Add(1)
		if err := c.observe(in.at, r.Slot, r.Grams); err != nil {
			s.reject(err)
		}
	}
}

// badMessage counts a message that is not a shelf payload and logs it at
// most once per interval. Safe from any goroutine.
func (s *Shelf) badMessage(err error) {
	s.garbage.Add(1)
	if ok, n := s.garbageLog.Allow(s.now()); ok {
		s.log.Warn("shelf message ignored", devices.LogErr, err, "suppressed", n, "garbage_total", s.garbage.Load())
	}
}

// reject counts a rejected reading by reason and logs it (throttled).
func (s *Shelf) reject(err error) {
	var re *RejectError
	reason := Reason("other")
	if errors.As(err, &re) {
		reason = re.Reason
	}
	s.rejMu.Lock()
	s.rejected[reason]++
	s.rejMu.Unlock()
	if ok, n := s.rejectLog.Allow(s.now()); ok {
		s.log.Warn("shelf reading rejected", devices.LogErr, err, "reason", string(reason), "suppressed", n)
	}
}

func (s *Shelf) salesFailed(sku string, err error) {
	if ok, n := s.salesLog.Allow(s.now()); ok {
		s.log.Warn("shelf cannot ask for sales; shrink decision postponed", "sku", sku, devices.LogErr, err, "suppressed", n)
	}
}

// emit queues an event for the owner. It never blocks: past MaxPending
// the oldest queued event is dropped and counted.
func (s *Shelf) emit(e Event) {
	s.events.Add(1)
	if e.IsAlert() {
		s.log.Info("shelf alert", "alert", e.Kind, "slot", e.Slot, "sku", e.SKU, "count", e.Count, "grams", e.Grams, "detail", e.Detail)
	} else {
		s.log.Debug("shelf count", "slot", e.Slot, "sku", e.SKU, "count", e.Count, "prev", e.Prev, "grams", e.Grams)
	}
	s.qmu.Lock()
	if len(s.queue) >= s.cfg.MaxPending {
		s.queue = s.queue[1:]
		s.eventsDropped.Add(1)
		if ok, n := s.dropLog.Allow(s.now()); ok {
			s.log.Warn("shelf events not read by the owner; oldest dropped", "max_pending", s.cfg.MaxPending, "suppressed", n)
		}
	}
	s.queue = append(s.queue, e)
	s.qmu.Unlock()
	select {
	case s.qsig <- struct{}{}:
	default:
	}
}

func (s *Shelf) pop() (Event, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) == 0 {
		s.queue = nil // let a grown backing array go
		return Event{}, false
	}
	e := s.queue[0]
	s.queue = s.queue[1:]
	return e, true
}

func (s *Shelf) unpop(e Event) {
	s.qmu.Lock()
	s.queue = append([]Event{e}, s.queue...)
	s.qmu.Unlock()
}

// deliver hands queued events to the owner, waiting on it as long as it
// takes; only this goroutine ever blocks on the owner.
func (s *Shelf) deliver(ctx context.Context) {
	defer s.wg.Done()
	for {
		e, ok := s.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.qsig:
				continue
			}
		}
		select {
		case s.out <- e:
		case <-ctx.Done():
			s.unpop(e) // Close offers it once more
			return
		}
	}
}

// setTransport records why the transport is unusable ("" when it works)
// and publishes the resulting status.
func (s *Shelf) setTransport(reason string) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.transport = reason
	s.updateStatusLocked()
}

func (s *Shelf) setSensors(allOffline bool, after time.Duration) {
	reason := ""
	if allOffline {
		reason = fmt.Sprintf("no readings from any slot for %s", after)
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.sensors != reason {
		s.sensors = reason
		s.updateStatusLocked()
	}
}

// updateStatusLocked publishes the status under hmu, so two goroutines
// changing the health never publish out of order.
func (s *Shelf) updateStatusLocked() {
	switch {
	case s.transport != "":
		s.status.Set(devices.StateError, s.transport)
	case s.sensors != "":
		s.status.Set(devices.StateError, s.sensors)
	default:
		s.status.Set(devices.StateIdle, "")
	}
}

// clientID returns a broker client id unique to this process.
func clientID(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "edgepos-shelf-" + name + "-" + hex.EncodeToString(b[:])
}
