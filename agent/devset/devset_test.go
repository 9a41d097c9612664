package devset

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices/printer"
	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
	"github.com/edgepos/edgepos/devices/scanner"
	"github.com/edgepos/edgepos/devices/scanner/scannersim"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/sync/wire"
)

const wait = 10 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// fixture is a store terminal: a real agent on a temp database, with a
// virtual printer on TCP.
type fixture struct {
	t      *testing.T
	dir    string
	vp     *virtualprinter.Printer
	addr   string
	seeded bool
	now    func() time.Time // the ledger's clock; nil: the real one
	apiMod func(*agent.APIConfig)
}

func newFixture(t *testing.T) *fixture {
	vp := virtualprinter.New()
	addr, err := vp.Listen("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { vp.Close() })
	return &fixture{t: t, dir: t.TempDir(), vp: vp, addr: addr}
}

// options are fast-polling devset options for the fixture's printer.
func (f *fixture) options() Options {
	return Options{
		Printer: &PrinterOptions{
			Config:    printer.Config{Name: "printer0", PollInterval: 50 * time.Millisecond, StatusTimeout: 500 * time.Millisecond},
			Transport: printer.NewTCP(f.addr),
			Layout:    printer.Layout{Width: 80, Encoding: escpos.EncASCII},
			Drawer:    true,
		},
		StoreName: "Demo Mart", Header: []string{"1 Example Road"},
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Rescan: 300 * time.Millisecond,
		Logger: quiet,
	}
}

// terminal is one run of the agent.
type terminal struct {
	a      *agent.Agent
	ds     *Set
	events <-chan agent.UIEvent
	closed bool
}

func (f *fixture) open(opts Options, withAPI bool) *terminal {
	f.t.Helper()
	ds, err := New(opts)
	require.NoError(f.t, err)
	ao := agent.Options{
		Database: filepath.Join(f.dir, "pos.db"),
		Ledger: agent.LedgerConfig{Store: "S001", Terminal: "T1", Currency: "CNY", MinorDigits: 2, TaxInclusive: true,
			Location: time.FixedZone("CST", 8*3600), BcryptCost: bcrypt.MinCost, Now: f.now},
		Devices: ds,
		Logger:  quiet,
	}
	if withAPI {
		ao.HTTPListen = "127.0.0.1:0"
		ao.APIHandler = func(a *agent.Agent) (http.Handler, error) {
			cfg := agent.APIConfig{Ledger: a.Ledger(), Hub: a.Hub(), Status: a, Hardware: ds, Locale: "en", Logger: quiet}
			if f.apiMod != nil {
				f.apiMod(&cfg)
			}
			api, err := agent.NewAPI(cfg)
			if err != nil {
				return nil, err
			}
			f.t.Cleanup(api.Close)
			return api.Handler(), nil
		}
	}
	a := agent.New(ao)
	// Subscribed before Open: the devices report their first states while
	// the agent opens, and a test may wait for them.
	events, cancel := a.Hub().Subscribe()
	require.NoError(f.t, a.Open(context.Background()))
	term := &terminal{a: a, ds: ds}
	term.events = events
	f.t.Cleanup(func() { cancel(); term.close(f.t) })
	if !f.seeded {
		require.NoError(f.t, agent.SeedDemoCatalog(context.Background(), a.Ledger()))
		require.NoError(f.t, agent.SeedDemoUsers(context.Background(), a.Ledger()))
		f.seeded = true
	}
	return term
}

func (term *terminal) close(tb testing.TB) {
	if term.closed {
		return
	}
	term.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(tb, term.a.Close(ctx))
}

// sell completes a sale of the demo catalog paid with tenders.
func (term *terminal) sell(tb testing.TB, tenders ...agent.Tender) *agent.Sale {
	tb.Helper()
	ctx := context.Background()
	l := term.a.Ledger()
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(tb, err)
	_, err = l.AddItem(ctx, s.ID, "TEA500", 2000)
	require.NoError(tb, err)
	_, err = l.Scan(ctx, s.ID, "6907992500133")
	require.NoError(tb, err)
	if len(tenders) == 0 {
		tenders = []agent.Tender{{Kind: agent.TenderCash, Amount: 5000}}
	}
	for _, t := range tenders {
		_, err = l.AddTender(s.ID, t)
		require.NoError(tb, err)
	}
	done, err := l.CompleteSale(ctx, s.ID, "key-"+s.ID)
	require.NoError(tb, err)
	term.ds.PrintNow() // what the API does after every completion
	return done
}

func (term *terminal) job(tb testing.TB, id string) agent.PrintJob {
	tb.Helper()
	j, err := term.a.Ledger().PrintJob(context.Background(), id)
	require.NoError(tb, err)
	return j
}

func (term *terminal) waitJob(tb testing.TB, id, state string) agent.PrintJob {
	tb.Helper()
	var j agent.PrintJob
	require.Eventually(tb, func() bool { j = term.job(tb, id); return j.State == state }, wait, 5*time.Millisecond, "job %s never %s: %+v", id, state, j)
	return j
}

// waitEvent returns the first UI event of typ whose data satisfies ok.
func (term *terminal) waitEvent(tb testing.TB, typ string, ok func(map[string]any) bool) map[string]any {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev := <-term.events:
			if ev.Type != typ {
				continue
			}
			var m map[string]any
			require.NoError(tb, json.Unmarshal(ev.Data, &m))
			if ok == nil || ok(m) {
				return m
			}
		case <-deadline:
			tb.Fatalf("no %s event", typ)
		}
	}
}

func (term *terminal) printerState(tb testing.TB) agent.DeviceState {
	tb.Helper()
	for _, d := range term.ds.States() {
		if d.Kind == "printer" {
			return d
		}
	}
	tb.Fatal("no printer state")
	return agent.DeviceState{}
}

// receiptsPrinted returns the receipt numbers on the virtual printer's
// jobs, in print order.
func (f *fixture) receiptsPrinted() []string {
	var out []string
	for _, j := range f.vp.Jobs() {
		for _, ln := range strings.Split(j.Text(48), "\n") {
			if n, ok := strings.CutPrefix(ln, "Receipt: "); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func deviceEvents(tb testing.TB, a *agent.Agent) []wire.DeviceStatus {
	tb.Helper()
	rows, err := a.Ledger().DB().Read.Query("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", wire.EventDeviceStatus)
	require.NoError(tb, err)
	defer rows.Close()
	var out []wire.DeviceStatus
	for rows.Next() {
		var p string
		require.NoError(tb, rows.Scan(&p))
		var d wire.DeviceStatus
		require.NoError(tb, json.Unmarshal([]byte(p), &d))
		out = append(out, d)
	}
	require.NoError(tb, rows.Err())
	return out
}

// TestSaleWithPaperOutPrintsOnceWhenPaperIsBack (issue 4): with the paper
// out the sale completes and its receipt stays queued, no byte of it sent;
// with paper back it prints exactly once.
func TestSaleWithPaperOutPrintsOnceWhenPaperIsBack(t *testing.T) {
	f := newFixture(t)
	f.vp.SetPaperOut(true)
	term := f.open(f.options(), false)
	require.Eventually(t, func() bool { return term.printerState(t).Reason == "paper end" }, wait, 5*time.Millisecond)
	st := term.waitEvent(t, "status", func(m map[string]any) bool { return m["kind"] == "printer" })
	assert.Equal(t, "paper end", st["reason"], "the status bar hears of it")

	s := term.sell(t)
	assert.Equal(t, agent.StateCompleted, s.State, "the sale goes on without paper")
	ev := term.waitEvent(t, "print", func(m map[string]any) bool { return m["job"] == s.ID })
	assert.Equal(t, "queued", ev["state"])
	assert.Contains(t, ev["error"], "paper out")
	assert.Equal(t, s.Receipt, ev["receipt"])
	j := term.job(t, s.ID)
	assert.Equal(t, "queued", j.State)
	assert.Positive(t, j.Attempts)
	assert.Contains(t, j.LastError, "paper out")
	got, err := term.a.Ledger().GetSale(context.Background(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, "queued", got.PrintState, "the screen shows it queued")
	// Retries with backoff send nothing to a printer without paper.
	require.Eventually(t, func() bool { return term.job(t, s.ID).Attempts >= 3 }, wait, 5*time.Millisecond)
	assert.Zero(t, f.vp.JobBytes())
	assert.Empty(t, f.vp.Jobs())

	f.vp.SetPaperOut(false)
	term.waitJob(t, s.ID, "printed")
	ev = term.waitEvent(t, "print", func(m map[string]any) bool { return m["job"] == s.ID && m["state"] == "printed" })
	assert.Equal(t, s.Receipt, ev["receipt"])
	// A later sale prints after it; had the first printed twice, it would
	// show between them.
	s2 := term.sell(t)
	term.waitJob(t, s2.ID, "printed")
	assert.Equal(t, []string{s.Receipt, s2.Receipt}, f.receiptsPrinted())
	assert.Empty(t, f.vp.Partials())
	assert.Equal(t, 1, f.vp.MaxConcurrentConns())

	// HQ hears of the paper end and of the recovery, through the outbox.
	var reasons []string
	require.Eventually(t, func() bool {
		reasons = nil
		for _, d := range deviceEvents(t, term.a) {
			if d.Kind == "printer" {
				reasons = append(reasons, d.State+":"+d.Reason)
			}
		}
		return len(reasons) >= 2 && reasons[len(reasons)-1] == "idle:"
	}, wait, 5*time.Millisecond)
	// A status is four DLE EOT answers; paper loaded between two of them
	// can read as a moment of "offline" on the way back, a real change of
	// state. What must not be there is an event per job (busy).
	assert.Equal(t, "error:paper end", reasons[0], "HQ hears of the paper end")
	for _, r := range reasons {
		assert.NotContains(t, r, "busy", "no event for busy")
	}
	assert.LessOrEqual(t, len(reasons), 3, "one event per change: %v", reasons)
}

// TestRestartResumesQueueWithoutReprinting (issue 4): a job queued when
// the agent stops prints once after a restart, and one already printed is
// not printed again.
func TestRestartResumesQueueWithoutReprinting(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	printed := term.sell(t)
	term.waitJob(t, printed.ID, "printed")
	f.vp.SetPaperOut(true)
	queued := term.sell(t)
	require.Eventually(t, func() bool { return term.job(t, queued.ID).Attempts > 0 }, wait, 5*time.Millisecond)
	term.close(t)

	// The restarted agent finds the job still queued and tries it.
	attempts := 0
	term2 := f.open(f.options(), false)
	require.Eventually(t, func() bool {
		j := term2.job(t, queued.ID)
		if attempts == 0 {
			attempts = j.Attempts
		}
		return j.State == "queued" && j.Attempts > attempts
	}, wait, 5*time.Millisecond)
	assert.Len(t, f.vp.Jobs(), 1)
	f.vp.SetPaperOut(false)
	term2.waitJob(t, queued.ID, "printed")
	later := term2.sell(t)
	term2.waitJob(t, later.ID, "printed")
	assert.Equal(t, []string{printed.Receipt, queued.Receipt, later.Receipt}, f.receiptsPrinted())
	assert.Equal(t, "printed", term2.job(t, printed.ID).State)
	assert.Equal(t, 1, term2.job(t, printed.ID).Attempts)
}

// TestCashSaleKicksDrawer (issue 4): a cash sale through the POS API
// opens the drawer once and prints the receipt; a card sale does not.
func TestCashSaleKicksDrawer(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), true)
	c := newClient(t, term.a.Addr())
	c.login(agent.DemoCashier, agent.DemoCashierPIN)

	cash := c.sale(agent.Tender{Kind: agent.TenderCash, Amount: 10000})
	assert.Empty(t, cash.Drawer, "the drawer opened")
	require.Eventually(t, func() bool { return f.vp.DrawerKicks() == 1 }, wait, 5*time.Millisecond)
	term.waitJob(t, cash.Sale.ID, "printed")

	card := c.sale(agent.Tender{Kind: agent.TenderCard, Amount: 2190, Ref: "AUTH-1"})
	term.waitJob(t, card.Sale.ID, "printed")
	assert.Equal(t, 1, f.vp.DrawerKicks(), "no kick for a card sale")
	assert.Equal(t, []string{cash.Sale.Receipt, card.Sale.Receipt}, f.receiptsPrinted())

	// The preview is the printed text.
	var rt struct{ Text, Receipt string }
	c.do("GET", "/api/sales/"+cash.Sale.ID+"/receipt", nil, &rt)
	assert.Equal(t, strings.TrimRight(strings.TrimSuffix(f.vp.Jobs()[0].Text(48), strings.Repeat("=", 48)+"\n"), "\n")+"\n", rt.Text)
	assert.Contains(t, rt.Text, "Receipt: "+cash.Sale.Receipt)
	assert.Contains(t, rt.Text, "Change")

	// No drawer wired: a manual kick says so.
	opts := f.options()
	opts.Printer.Drawer = false
	ds, err := New(opts)
	require.NoError(t, err)
	assert.ErrorIs(t, ds.KickDrawer(context.Background()), ErrNoDrawer)
	assert.False(t, ds.HasDrawer())
}

// TestNoDrawerNoKick (drawer_on_cash: false): a cash sale through the
// POS API prints its receipt, kicks nothing and shows no "drawer did not
// open" message; a manager's no-sale open says there is no drawer.
func TestNoDrawerNoKick(t *testing.T) {
	f := newFixture(t)
	opts := f.options()
	opts.Printer.Drawer = false
	term := f.open(opts, true)
	c := newClient(t, term.a.Addr())
	c.login(agent.DemoCashier, agent.DemoCashierPIN)
	c.do("POST", "/api/shift/open", map[string]int64{"float": 20000}, nil) // kicks a wired drawer, not this one

	cash := c.sale(agent.Tender{Kind: agent.TenderCash, Amount: 10000})
	assert.Empty(t, cash.Drawer, "no drawer message")
	term.waitJob(t, cash.Sale.ID, "printed")
	assert.Equal(t, []string{cash.Sale.Receipt}, f.receiptsPrinted())
	assert.Zero(t, f.vp.DrawerKicks(), "nothing kicked (the receipt went out on the same connection after the sale answered)")

	var open struct {
		Opened bool   `json:"opened"`
		Drawer string `json:"drawer"`
	}
	c.do("POST", "/api/drawer/open", map[string]string{"reason": "change for the float", "manager_pin": agent.DemoManagerPIN}, &open)
	assert.False(t, open.Opened)
	assert.Contains(t, open.Drawer, "no drawer attached")
	assert.Zero(t, f.vp.DrawerKicks())
}

// TestSerialScannerReachesHub (issue 4): a scanner on a pseudo-terminal,
// through devset, reaches the POS screens as a "scan" event in the shape
// the UI reads; its state changes reach HQ's outbox.
func TestSerialScannerReachesHub(t *testing.T) {
	f := newFixture(t)
	sim, err := scannersim.New(filepath.Join(f.dir, "scanner0"))
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	opts := f.options()
	opts.Scanners = []ScannerOptions{{Config: scanner.Config{Name: "scanner0", Port: serialport.Config{Path: sim.Path()}, AIM: true}}}
	term := f.open(opts, false)
	term.waitEvent(t, "status", func(m map[string]any) bool { return m["name"] == "scanner0" && m["state"] == "idle" })

	require.NoError(t, sim.Scan("]E0", "6901234567892"))
	ev := term.waitEvent(t, "scan", nil)
	assert.Equal(t, map[string]any{"code": "6901234567892", "symbology": scanner.SymEAN13, "device": "scanner0"}, ev)

	require.NoError(t, sim.Unplug())
	term.waitEvent(t, "status", func(m map[string]any) bool { return m["name"] == "scanner0" && m["state"] == "error" })
	require.NoError(t, sim.Replug())
	term.waitEvent(t, "status", func(m map[string]any) bool { return m["name"] == "scanner0" && m["state"] == "idle" })
	require.NoError(t, sim.Scan("]E0", "4006381333931"))
	ev = term.waitEvent(t, "scan", nil)
	assert.Equal(t, "4006381333931", ev["code"])

	// HQ gets every change once: idle, error (disconnected, perhaps not
	// connected while the path was gone), idle again.
	var states []string
	require.Eventually(t, func() bool {
		states = nil
		for _, d := range deviceEvents(t, term.a) {
			if d.Device == "scanner0" {
				states = append(states, d.State+":"+d.Reason)
			}
		}
		return len(states) >= 3 && states[len(states)-1] == "idle:"
	}, wait, 5*time.Millisecond, "%v", states)
	assert.Equal(t, "idle:", states[0])
	assert.Equal(t, "error:disconnected", states[1])
	for i := 1; i < len(states); i++ {
		assert.NotEqual(t, states[i-1], states[i], "no repeated event")
	}
	sts := term.ds.States()
	require.Len(t, sts, 2)
	assert.Equal(t, "printer", sts[0].Kind)
	assert.Equal(t, agent.DeviceState{Name: "scanner0", Kind: "scanner", State: "idle", At: sts[1].At}, sts[1])
}

// TestPrinterPluggedInAfterStart: the agent starts with its printer
// missing (state error, Start does not fail), sells, and prints the
// queued receipt when the printer appears.
func TestPrinterPluggedInAfterStart(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	opts := f.options()
	opts.Printer.Transport = printer.NewTCP(addr)
	term := f.open(opts, false)
	require.Eventually(t, func() bool { return term.printerState(t).Reason == printer.ReasonNotConnected }, wait, 5*time.Millisecond)
	assert.Equal(t, "error", term.printerState(t).State)
	s := term.sell(t)
	require.Eventually(t, func() bool { return term.job(t, s.ID).Attempts > 0 }, wait, 5*time.Millisecond)

	vp := virtualprinter.New()
	_, err = vp.Listen(addr)
	require.NoError(t, err)
	defer vp.Close()
	term.waitJob(t, s.ID, "printed")
	assert.Len(t, vp.Jobs(), 1)
	assert.Equal(t, "idle", term.printerState(t).State)
}

// TestJobsThatCanNeverPrintAreFailed: a job whose record does not exist
// (a return slip of no return) is marked failed (and announced), and the
// queue goes on behind it.
func TestJobsThatCanNeverPrintAreFailed(t *testing.T) {
	f := newFixture(t)
	f.vp.SetPaperOut(true) // hold the queue while the bad job goes in
	term := f.open(f.options(), false)
	l := term.a.Ledger()
	var bad agent.PrintJob
	require.NoError(t, l.DB().WriteTx(context.Background(), func(tx *sql.Tx) (err error) {
		bad, err = l.Enqueue(context.Background(), tx, KindReturn, "", "T1-R00001")
		return err
	}))
	f.vp.SetPaperOut(false)
	s := term.sell(t)
	j := term.waitJob(t, bad.ID, "failed")
	assert.Contains(t, j.LastError, "not found")
	term.waitEvent(t, "print", func(m map[string]any) bool { return m["job"] == bad.ID && m["state"] == "failed" })
	term.waitJob(t, s.ID, "printed")
	assert.Equal(t, []string{s.Receipt}, f.receiptsPrinted())
}

// TestCopyAndZReport prints a reprint marked COPY and the Z report
// CloseDay queues.
func TestCopyAndZReport(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	s := term.sell(t)
	term.waitJob(t, s.ID, "printed")
	l := term.a.Ledger()
	cp, err := l.Reprint(context.Background(), s.ID)
	require.NoError(t, err)
	term.ds.PrintNow()
	term.waitJob(t, cp.ID, "printed")
	_, err = l.CloseDay(context.Background(), agent.DemoManager)
	require.NoError(t, err)
	jobs, err := l.PrintJobs(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, KindReport, jobs[0].Kind)
	term.ds.PrintNow()
	term.waitJob(t, jobs[0].ID, "printed")

	printed := f.vp.Jobs()
	require.Len(t, printed, 3)
	copyText := printed[1].Text(48)
	assert.Contains(t, copyText, "COPY")
	assert.Contains(t, copyText, "Receipt: "+s.Receipt)
	z := printed[2].Text(48)
	assert.Contains(t, z, "Z REPORT")
	assert.Contains(t, z, "Z0001")
	assert.Regexp(t, `(?m)^Sales +1$`, z)
	assert.Regexp(t, `(?m)^Net +¥21\.90$`, z)
	assert.Regexp(t, `(?m)^Cash +¥50\.00$`, z)
}

// TestReceiptLayoutOfASale checks the mapping of a ledger receipt: weighed
// item, item and sale discounts, included taxes per rate, split tender,
// change, member, the sale id in the QR code.
func TestReceiptLayoutOfASale(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	s := demoSale(t, term)
	term.waitJob(t, s.ID, "printed")
	jobs := f.vp.Jobs()
	require.Len(t, jobs, 1)
	text := jobs[0].Text(48)
	for _, want := range []string{
		`(?m)^Fuji apples +¥7\.44$`, `(?m)^  0\.532 kg x ¥13\.98/kg$`, `(?m)^Oolong tea 500ml +¥9\.00$`, `(?m)^  2 x ¥4\.50$`,
		`(?m)^  Discount 10% +-¥0\.90$`, `(?m)^Discount: 5% +-¥\d+\.\d\d$`, `(?m)^Tax included$`, `(?m)^  Tax 9% +¥\d+\.\d\d$`,
		`(?m)^  Tax 13% +¥\d+\.\d\d$`, `(?m)^Card +¥10\.00$`, `(?m)^Cash +¥50\.00$`, `(?m)^Change +¥\d+\.\d\d$`, `(?m)^Member: M0001$`,
		`(?m)^Cashier|Terminal: T1 +Cashier: 1001$`,
	} {
		assert.Regexp(t, want, text)
	}
	var qr string
	for _, it := range jobs[0].Items {
		if it.Kind == virtualprinter.ItemQR {
			qr = it.Data
		}
	}
	assert.Equal(t, s.ID, qr)
	// Amounts are the ledger's: the total printed is the sale's.
	assert.Regexp(t, fmt.Sprintf(`(?m)^TOTAL +%s$`, strings.ReplaceAll(printer.FormatMoney(s.Total, "CNY", 2), ".", `\.`)), text)
}

// demoSale is a sale with something of everything the demo catalog has.
func demoSale(tb testing.TB, term *terminal) *agent.Sale {
	tb.Helper()
	ctx := context.Background()
	l := term.a.Ledger()
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(tb, err)
	_, err = l.AddItem(ctx, s.ID, "TEA500", 2000)
	require.NoError(tb, err)
	_, err = l.SetItemDiscount(s.ID, 1, agent.Discount{Kind: agent.DiscountPercent, Value: 1000})
	require.NoError(tb, err)
	_, err = l.AddItem(ctx, s.ID, "APPLE", 532)
	require.NoError(tb, err)
	_, err = l.Scan(ctx, s.ID, "6907992500133")
	require.NoError(tb, err)
	_, err = l.SetSaleDiscount(s.ID, agent.Discount{Kind: agent.DiscountPercent, Value: 500})
	require.NoError(tb, err)
	_, err = l.AttachMember(ctx, s.ID, "M0001")
	require.NoError(tb, err)
	for _, t := range []agent.Tender{{Kind: agent.TenderCard, Amount: 1000, Ref: "AUTH-7"}, {Kind: agent.TenderCash, Amount: 5000}} {
		_, err = l.AddTender(s.ID, t)
		require.NoError(tb, err)
	}
	done, err := l.CompleteSale(ctx, s.ID, "demo-"+s.ID)
	require.NoError(tb, err)
	term.ds.PrintNow()
	return done
}

// TestReceiptPNG prints a demo sale on the virtual printer and renders it;
// with EDGEPOS_SCREENSHOT_DIR=docs it writes docs/receipt-80mm.png for
// the README.
func TestReceiptPNG(t *testing.T) {
	f := newFixture(t)
	f.now = func() time.Time { return time.Date(2026, 11, 23, 2, 5, 9, 0, time.UTC) } // a stable picture
	term := f.open(f.options(), false)
	s := demoSale(t, term)
	term.waitJob(t, s.ID, "printed")
	img, err := f.vp.Jobs()[0].PNG(576)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(img, []byte("\x89PNG")))
	if dir := os.Getenv("EDGEPOS_SCREENSHOT_DIR"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "receipt-80mm.png"), img, 0o644))
	}
}

// TestOptionsAreValidated: configuration mistakes are refused by New,
// before any device is touched.
func TestOptionsAreValidated(t *testing.T) {
	f := newFixture(t)
	opts := f.options()
	opts.Printer.Layout.CodePage = 99
	_, err := New(opts)
	require.ErrorIs(t, err, escpos.ErrUnknownCodePage)
	assert.Contains(t, err.Error(), "ESC t 99")

	opts = f.options()
	opts.Printer.Transport = nil
	_, err = New(opts)
	require.ErrorIs(t, err, printer.ErrBadConfig)

	opts = f.options()
	opts.Printer.Config.StatusMode = "maybe"
	_, err = New(opts)
	require.ErrorIs(t, err, printer.ErrBadConfig)

	opts = f.options()
	opts.Scanners = []ScannerOptions{{Config: scanner.Config{Name: "s", Port: serialport.Config{Path: "/dev/x", Baud: 1234}}}}
	_, err = New(opts)
	require.ErrorIs(t, err, serialport.ErrBadConfig)

	opts = f.options()
	opts.Scanners = []ScannerOptions{{Config: scanner.Config{Name: "s", Port: serialport.Config{Path: "/a"}}}, {Config: scanner.Config{Name: "s", Port: serialport.Config{Path: "/b"}}}}
	_, err = New(opts)
	require.ErrorContains(t, err, `two devices named "s"`)

	_, err = New(Options{Language: "fr"})
	require.ErrorContains(t, err, `language "fr"`)

	// No printer at all: previews still work, the drawer does not.
	ds, err := New(Options{})
	require.NoError(t, err)
	assert.ErrorIs(t, ds.KickDrawer(context.Background()), ErrNoDrawer)
	assert.Empty(t, ds.States())
}

func TestPercent(t *testing.T) {
	assert.Equal(t, "13%", percent(1300))
	assert.Equal(t, "6.5%", percent(650))
	assert.Equal(t, "0.01%", percent(1))
}

// client is a minimal POS API client: cookie session and CSRF token.
type client struct {
	tb   testing.TB
	base string
	hc   *http.Client
	csrf string
}

func newClient(tb testing.TB, addr string) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &client{tb: tb, base: "http://" + addr, hc: &http.Client{Jar: jar, Timeout: wait}}
}

func (c *client) do(method, path string, body any, out any, hdr ...string) {
	c.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.tb, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	require.NoError(c.tb, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.tb, err)
	require.Equal(c.tb, http.StatusOK, res.StatusCode, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(c.tb, json.Unmarshal(b, out), "%s", b)
	}
}

func (c *client) login(user, pin string) {
	var info struct{ CSRF string }
	c.do("POST", "/api/login", map[string]string{"user": user, "pin": pin}, &info)
	c.csrf = info.CSRF
}

type saleAnswer struct {
	Sale   *agent.Sale `json:"sale"`
	Drawer string      `json:"drawer"`
}

// sale rings up tea and milk through the API and pays with t.
func (c *client) sale(t agent.Tender) saleAnswer {
	c.tb.Helper()
	var a saleAnswer
	c.do("POST", "/api/sales", nil, &a)
	id := a.Sale.ID
	c.do("POST", "/api/sales/"+id+"/scan", map[string]string{"code": "6901234567892"}, nil)
	c.do("PATCH", "/api/sales/"+id+"/lines/1", map[string]int64{"qty": 2000}, nil)
	c.do("POST", "/api/sales/"+id+"/scan", map[string]string{"code": "6907992500133"}, nil)
	c.do("POST", "/api/sales/"+id+"/tenders", t, nil)
	var done saleAnswer
	c.do("POST", "/api/sales/"+id+"/complete", nil, &done, "Idempotency-Key", "k-"+id)
	require.Equal(c.tb, agent.StateCompleted, done.Sale.State)
	return done
}
