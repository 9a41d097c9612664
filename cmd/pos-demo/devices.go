package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/devset"
	"github.com/edgepos/edgepos/devices/printer"
	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
	"github.com/edgepos/edgepos/devices/scanner"
	"github.com/edgepos/edgepos/devices/scanner/scannersim"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/serialport/ptysim"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
)

// The demo shelf: one slot of mineral water, counted by weight.
const (
	shelfName  = "shelf0"
	shelfSKU   = "WATER"
	shelfTareG = 150 // the empty tray
	shelfUnitG = 570 // one 550 ml bottle
	shelfFull  = 12  // bottles on it at the start
	shelfLow   = 3   // low stock at or below
)

// shelfSlot is the demo shelf's load cell.
var shelfSlot = shelf.Slot{Slot: 0, SKU: shelfSKU, TareG: shelfTareG, UnitG: shelfUnitG, ToleranceG: 25, LowStock: shelfLow}

// devOptions tune the simulated devices (tests make them faster).
type devOptions struct {
	// PrinterPoll is how often the printer's status is asked between
	// jobs (paper put back is seen this soon); default 2 s.
	PrinterPoll time.Duration
	// RetryMax caps the print worker's backoff; default 5 s.
	RetryMax time.Duration
	// ShrinkWindow is how long a shelf drop waits for a sale; default 30 s.
	ShrinkWindow time.Duration
	// SensorInterval is the shelf sensor's heartbeat; default 1 s.
	SensorInterval time.Duration
	// Follow keeps the shelf in step with the till: what is sold is taken
	// off it (a customer took it and paid). Off in -headless.
	Follow bool
	// SaveReceipts writes every printed receipt as PNG and text into
	// <data>/receipts. Off in -headless, which only counts them.
	SaveReceipts bool
}

func (o devOptions) withDefaults() devOptions {
	def := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	def(&o.PrinterPoll, 2*time.Second)
	def(&o.RetryMax, 5*time.Second)
	def(&o.ShrinkWindow, 30*time.Second)
	def(&o.SensorInterval, time.Second)
	return o
}

// demoDevices are the demo terminal's simulated devices. Each speaks its
// real wire format to the real driver through agent/devset, as pos-agent
// attaches real ones: a serial scanner on a pseudo-terminal (scannersim),
// an ESC/POS printer on TCP (virtualprinter), and an MQTT shelf sensor
// (shelfsim) on the embedded broker. Two more pseudo-terminals let a
// person drive them from a shell: codes written to <data>/scan are typed
// by the scanner, and "take N" / "put N" written to <data>/shelf move
// bottles on the shelf.
type demoDevices struct {
	o   devOptions
	log *slog.Logger
	out io.Writer

	scanner  *scannersim.Scanner
	keys     *ptysim.Device // <data>/scan: a person's codes, relayed to the scanner
	ctl      *ptysim.Device // <data>/shelf: take / put / set
	printer  *virtualprinter.Printer
	sensor   *shelfsim.Sensor
	set      *devset.Set
	receipts string // <data>/receipts

	mu     sync.Mutex
	units  int64 // bottles on the shelf
	saved  int   // printed jobs handled by saveReceipts
	names  map[string]int
	opened bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newDevices plugs in the simulators under dir and builds the device set
// the agent attaches; brokerURL is the embedded broker the shelf sensor
// and the shelf driver use (as the store's own user, on the store's own
// topic, which the broker's ACL allows).
func newDevices(dir, brokerURL string, o devOptions, log *slog.Logger, out io.Writer) (_ *demoDevices, err error) {
	d := &demoDevices{o: o.withDefaults(), log: log, out: out, units: shelfFull, names: map[string]int{}, receipts: filepath.Join(dir, "receipts")}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := os.MkdirAll(filepath.Join(dir, "dev"), 0o755); err != nil {
		return nil, err
	}
	if d.o.SaveReceipts {
		if err := os.MkdirAll(d.receipts, 0o755); err != nil {
			return nil, err
		}
	}
	if d.scanner, err = scannersim.New(filepath.Join(dir, "dev", "scanner0")); err != nil {
		return nil, fmt.Errorf("scanner simulator: %w", err)
	}
	if d.keys, err = ptysim.New(filepath.Join(dir, "scan")); err != nil {
		return nil, fmt.Errorf("scanner input: %w", err)
	}
	if d.ctl, err = ptysim.New(filepath.Join(dir, "shelf")); err != nil {
		return nil, fmt.Errorf("shelf input: %w", err)
	}
	d.printer = virtualprinter.New()
	addr, err := d.printer.Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	topic := "edgepos/v1/stores/" + store + "/shelves/" + shelfName
	shelves, err := devset.NewShelves([]devset.ShelfOptions{{Config: shelf.Config{
		Name: shelfName, Transport: shelf.TransportMQTT,
		MQTT:           shelf.MQTTConfig{Broker: brokerURL, Topic: topic, Username: store, QoS: 1},
		Slots:          []shelf.Slot{shelfSlot},
		StableReadings: 2,
		ShrinkWindow:   d.o.ShrinkWindow,
		OfflineAfter:   max(10*d.o.SensorInterval, 5*time.Second),
	}}}, log)
	if err != nil {
		return nil, err
	}
	d.sensor = shelfsim.NewSensor(shelfsim.SensorOptions{Broker: brokerURL, Topic: topic, Username: store, ClientID: "demo-shelf-sensor",
		Interval: d.o.SensorInterval, NoiseG: 3})
	d.sensor.Set(shelfSlot.Slot, d.grams(shelfFull))
	d.set, err = devset.New(devset.Options{
		Scanners: []devset.ScannerOptions{{Config: scanner.Config{Name: "scanner0", Port: serialport.Config{Path: d.scanner.Path()}, DedupWindow: 0}}},
		Printer: &devset.PrinterOptions{
			Config:    printer.Config{Name: "printer0", PollInterval: d.o.PrinterPoll, StatusTimeout: time.Second},
			Transport: printer.NewTCP(addr),
			Layout:    printer.Layout{Width: 80, Encoding: escpos.EncASCII, Language: printer.LangEN},
			Drawer:    true,
		},
		Attachments: []devset.Attachment{shelves},
		Language:    printer.LangEN,
		StoreName:   "edgepos Demo Mart",
		Header:      []string{"1 Example Road, Shanghai"},
		Footer:      []string{"Thank you!"},
		RetryMin:    200 * time.Millisecond,
		RetryMax:    d.o.RetryMax,
		Rescan:      10 * time.Second,
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (d *demoDevices) grams(units int64) int64 { return shelfTareG + units*shelfUnitG }

// open connects the shelf sensor and starts the helpers: the relay from
// <data>/scan to the scanner, the shelf's control, the receipt saver and
// (with Follow) the shelf following the till. a is the running agent.
func (d *demoDevices) open(ctx context.Context, a *agent.Agent) error {
	if err := d.sensor.Open(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.opened = true
	d.mu.Unlock()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	d.wg.Add(3)
	go d.relayKeys(rctx)
	go d.shelfControl(rctx)
	go d.saveReceipts(rctx)
	if d.o.Follow {
		d.wg.Add(1)
		go d.follow(rctx, a.Ledger())
	}
	return nil
}

// close stops the helpers and unplugs every simulator (after the agent
// closed, so its drivers saw nothing amiss).
func (d *demoDevices) close() {
	if d.cancel != nil {
		d.cancel()
	}
	// Unplugging makes the helpers' blocked reads return.
	for _, p := range []*ptysim.Device{d.keys, d.ctl} {
		if p != nil {
			_ = p.Close()
		}
	}
	d.wg.Wait()
	d.mu.Lock()
	opened := d.opened
	d.mu.Unlock()
	if opened {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.sensor.Close(ctx)
		cancel()
	}
	if d.printer != nil {
		_ = d.printer.Close()
	}
	if d.scanner != nil {
		_ = d.scanner.Close()
	}
}

// relayKeys types what a person writes to <data>/scan on the scanner: a
// line end (\n or \r\n, as echo and printf write) becomes the scanner's
// CR suffix.
func (d *demoDevices) relayKeys(ctx context.Context) {
	defer d.wg.Done()
	buf := make([]byte, 512)
	lastCR := false
	for ctx.Err() == nil {
		n, err := d.keys.Read(buf)
		if err != nil {
			return // unplugged by close
		}
		out := make([]byte, 0, n)
		for _, c := range buf[:n] {
			switch {
			case c == '\n' && lastCR: // the CR already ended the code
			case c == '\n':
				out = append(out, '\r')
			default:
				out = append(out, c)
			}
			lastCR = c == '\r'
		}
		if err := d.scanner.WriteRaw(out); err != nil {
			d.log.Warn("demo scanner input", "err", err)
		}
	}
}

// shelfControl reads lines from <data>/shelf: "take N" (bottles leave the
// shelf unpaid: shrink once the window passes), "put N" (restocked),
// "set N".
func (d *demoDevices) shelfControl(ctx context.Context) {
	defer d.wg.Done()
	buf := make([]byte, 256)
	var line []byte
	for ctx.Err() == nil {
		n, err := d.ctl.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:n] {
			if c != '\n' && c != '\r' {
				if len(line) < 128 {
					line = append(line, c)
				}
				continue
			}
			if cmd := strings.TrimSpace(string(line)); cmd != "" {
				d.shelfCommand(ctx, cmd)
			}
			line = line[:0]
		}
	}
}

func (d *demoDevices) shelfCommand(ctx context.Context, cmd string) {
	verb, arg, _ := strings.Cut(cmd, " ")
	n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
	if err != nil || n < 0 || n > 1000 {
		fmt.Fprintf(d.out, "shelf: %q: want take N, put N or set N\n", cmd)
		return
	}
	d.mu.Lock()
	before := d.units
	switch verb {
	case "take":
		d.units = max(d.units-n, 0)
	case "put":
		d.units += n
	case "set":
		d.units = n
	default:
		d.mu.Unlock()
		fmt.Fprintf(d.out, "shelf: %q: want take N, put N or set N\n", cmd)
		return
	}
	after := d.units
	d.mu.Unlock()
	fmt.Fprintf(d.out, "shelf: %s %d → %d bottles of %s\n", verb, before, after, shelfSKU)
	d.putOnShelf(ctx, after)
}

// putOnShelf sets the sensor's true weight and publishes it at once.
func (d *demoDevices) putOnShelf(ctx context.Context, units int64) {
	d.sensor.Set(shelfSlot.Slot, d.grams(units))
	if err := d.sensor.PublishAll(ctx); err != nil && ctx.Err() == nil {
		d.log.Warn("demo shelf sensor", "err", err) // the heartbeat repeats it
	}
}

// follow takes what the till sells of the shelf's SKU off the shelf, as
// the customer who paid for it did: such a drop is no shrink.
func (d *demoDevices) follow(ctx context.Context, l *agent.Ledger) {
	defer d.wg.Done()
	since := time.Now()
	var seen int64
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sold, err := l.UnitsSold(ctx, shelfSKU, since)
		if err != nil || sold <= seen {
			continue
		}
		d.mu.Lock()
		d.units = max(d.units-(sold-seen), 0)
		units := d.units
		d.mu.Unlock()
		seen = sold
		d.putOnShelf(ctx, units)
	}
}

// receiptLine finds the receipt number on a printed receipt.
var receiptLine = regexp.MustCompile(`Receipt: (\S+)`)

// saveReceipts waits for jobs on the virtual printer and, with
// SaveReceipts, writes each as <receipt>.png and .txt (a reprint gets
// -2, -3 …).
func (d *demoDevices) saveReceipts(ctx context.Context) {
	defer d.wg.Done()
	for {
		changed := d.printer.Changed()
		jobs := d.printer.Jobs()
		d.mu.Lock()
		from := d.saved
		d.saved = len(jobs)
		d.mu.Unlock()
		if d.o.SaveReceipts {
			for i := from; i < len(jobs); i++ {
				if err := d.saveReceipt(i, jobs[i]); err != nil {
					d.log.Warn("save receipt", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (d *demoDevices) saveReceipt(i int, j virtualprinter.Job) error {
	text := j.Text(48)
	name := fmt.Sprintf("job-%04d", i+1)
	if m := receiptLine.FindStringSubmatch(text); m != nil {
		name = m[1]
	}
	d.mu.Lock()
	d.names[name]++
	if k := d.names[name]; k > 1 {
		name = fmt.Sprintf("%s-%d", name, k)
	}
	d.mu.Unlock()
	img, err := j.PNG(576) // 80 mm paper, 203 dpi
	if err != nil {
		return err
	}
	return errors.Join(
		writeFile(filepath.Join(d.receipts, name+".png"), img),
		writeFile(filepath.Join(d.receipts, name+".txt"), []byte(text)))
}

// writeFile writes through a temporary file and a rename, so a reader
// never sees half a receipt.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// printed is how many receipts the virtual printer printed whole.
func (d *demoDevices) printed() int { return len(d.printer.Jobs()) }
