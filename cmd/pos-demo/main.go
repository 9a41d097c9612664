// Command pos-demo runs all of edgepos in one process with nothing to
// install: an embedded MQTT broker, HQ on SQLite, and one store agent with
// the demo catalog, users and simulated devices attached through
// agent/devset as pos-agent attaches real ones: a serial barcode scanner
// on a pseudo-terminal, an ESC/POS receipt printer on TCP (with its cash
// drawer), and an MQTT weight-shelf sensor on the embedded broker.
//
//	go run ./cmd/pos-demo                              # serve the POS UI until Ctrl-C
//	go run ./cmd/pos-demo -headless -sales 2000 -outage 5s
//
// Serving the UI, it prints the POS and HQ addresses, the demo PINs, the
// HQ operator token, the metrics addresses and how to drive the devices
// from a shell (codes written to <data>/scan are scanned; every printed
// receipt is saved as <data>/receipts/<receipt>.png and .txt; "take N"
// written to <data>/shelf takes bottles off the shelf unpaid).
//
// With -headless it sells -sales sales with random baskets, takes the broker
// down for -outage in the middle while selling goes on, brings it back, waits
// for the store to catch up, reconciles the store's ledger with HQ sale by
// sale and prints, as its last line,
//
//	sales=N at_hq=N duplicates=0 lost=0 conflicts=0
//
// exiting 0 only when nothing was lost or duplicated. Its receipts are
// printed by the virtual printer too (counted, not saved).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/reconcile"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

const (
	store    = "S001"
	terminal = "T1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type demo struct {
	dir    string
	log    *slog.Logger
	broker *embedbroker.Broker
	hq     *hq.Service
	hqDB   *sqlitestore.Store
	agent  *agent.Agent
	dev    *demoDevices
	token  string
	out    io.Writer
}

// demoConfig is how start sets the demo up.
type demoConfig struct {
	// Listen and HQListen are the POS and HQ addresses; a taken one
	// falls back to a free port.
	Listen, HQListen string
	// Locale of the POS screen; default zh-CN.
	Locale string
	// WedgeGap is the screen's keyboard-wedge gap; default the API's.
	WedgeGap time.Duration
	Devices  devOptions
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pos-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	headless := fs.Bool("headless", false, "sell -sales sales with a broker outage, reconcile with HQ, print the result and exit")
	sales := fs.Int("sales", 200, "sales to make in -headless mode")
	outage := fs.Duration("outage", 3*time.Second, "how long the broker is down in the middle of -headless selling")
	dataDir := fs.String("data", "", "data directory (default: a temporary one, removed at exit)")
	listen := fs.String("listen", "127.0.0.1:8080", "POS UI address (falls back to a free port when taken)")
	hqListen := fs.String("hq-listen", "127.0.0.1:8090", "HQ API and dashboard address (falls back to a free port)")
	verbose := fs.Bool("v", false, "log at info level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sales < 0 || *outage < 0 {
		fmt.Fprintln(stderr, "pos-demo: -sales and -outage must not be negative")
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	d := &demo{out: stdout, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	d.dir = *dataDir
	if d.dir == "" {
		tmp, err := os.MkdirTemp("", "edgepos-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "pos-demo:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		d.dir = tmp
	}
	c := demoConfig{Listen: *listen, HQListen: *hqListen, Devices: devOptions{Follow: true, SaveReceipts: true}}
	if *headless {
		c = demoConfig{Listen: "127.0.0.1:0", HQListen: "127.0.0.1:0"}
	}
	if err := d.start(ctx, c); err != nil {
		fmt.Fprintln(stderr, "pos-demo:", err)
		d.stop()
		return 1
	}
	defer d.stop()
	if *headless {
		return d.headless(ctx, *sales, *outage, stderr)
	}
	if err := d.instructions(ctx); err != nil {
		fmt.Fprintln(stderr, "pos-demo:", err)
		return 1
	}
	<-ctx.Done()
	return 0
}

// instructions prints where everything is and how to drive the devices.
func (d *demo) instructions(ctx context.Context) error {
	// A coupon to try: HQ signs it, the store verifies it offline.
	reply, err := d.hq.IssueCoupons(ctx, hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 200, MinSpend: 500, Currency: "CNY",
		Expires: time.Now().Add(7 * 24 * time.Hour)})
	if err != nil {
		return fmt.Errorf("issue a coupon: %w", err)
	}
	scan := filepath.Join(d.dir, "scan")
	w := d.out
	fmt.Fprintf(w, "edgepos demo running (data in %s)\n", d.dir)
	fmt.Fprintf(w, "  POS UI:        http://%s/   cashier %s PIN %s, manager %s PIN %s\n", d.agent.Addr(),
		agent.DemoCashier, agent.DemoCashierPIN, agent.DemoManager, agent.DemoManagerPIN)
	fmt.Fprintf(w, "  HQ dashboard:  http://%s/   operator token %s\n", d.hq.Addr(), d.token)
	fmt.Fprintf(w, "  metrics:       http://%s/metrics  http://%s/metrics\n", d.agent.Addr(), d.hq.Addr())
	fmt.Fprintf(w, "  MQTT broker:   %s (embedded)\n", d.broker.URL())
	fmt.Fprintln(w, "Simulated devices (the real drivers, attached as pos-agent attaches real ones):")
	fmt.Fprintf(w, "  scanner  serial scanner on a pty (%s); scan from a shell:\n", d.dev.scanner.Path())
	fmt.Fprintf(w, "             printf '6901234567892\\r' > %s    # oolong tea; 6921168509256 water, 6907992500133 milk\n", scan)
	fmt.Fprintf(w, "             printf '%%s\\r' '%s' > %s    # an HQ coupon, 2.00 off 5.00\n", reply.Coupons[0].Token, scan)
	fmt.Fprintf(w, "  printer  virtual ESC/POS printer on tcp://%s with a cash drawer; receipts in %s/<receipt>.png and .txt\n",
		d.dev.printer.Addr(), d.dev.receipts)
	fmt.Fprintf(w, "  shelf    %s: %d bottles of %s on an MQTT weight sensor; what the till sells is taken off it.\n", shelfName, shelfFull, shelfSKU)
	fmt.Fprintf(w, "             echo 'take 2' > %s   # unpaid: a shrink alert after %s; 'put 10' restocks\n",
		filepath.Join(d.dir, "shelf"), d.dev.o.ShrinkWindow)
	fmt.Fprintln(w, "Ctrl-C to stop.")
	return nil
}

// freeOr returns addr, or 127.0.0.1:0 when addr is taken.
func freeOr(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

func (d *demo) start(ctx context.Context, c demoConfig) error {
	var err error
	if d.broker, err = embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}}); err != nil {
		return err
	}
	if d.hqDB, err = sqlitestore.Open(ctx, filepath.Join(d.dir, "hq.db"), sqlitestore.Options{}); err != nil {
		return err
	}
	tok := make([]byte, 16)
	rand.Read(tok)
	d.token = hex.EncodeToString(tok)
	d.hq = hq.New(hq.Options{Store: d.hqDB, DataDir: filepath.Join(d.dir, "hq"), Broker: d.broker.URL(), Username: "hq",
		APIListen: freeOr(c.HQListen), APITokens: []string{d.token}, Version: "demo", Logger: d.log.With("svc", "hq")})
	if err := d.hq.Open(ctx); err != nil {
		return fmt.Errorf("start hq: %w", err)
	}
	if d.dev, err = newDevices(d.dir, d.broker.URL(), c.Devices, d.log.With("svc", "devices"), d.out); err != nil {
		return fmt.Errorf("start devices: %w", err)
	}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		loc = time.UTC
	}
	locale := c.Locale
	if locale == "" {
		locale = "zh-CN"
	}
	d.agent = agent.New(agent.Options{
		Database: filepath.Join(d.dir, "pos.db"),
		Ledger: agent.LedgerConfig{Store: store, Terminal: terminal, Currency: "CNY", MinorDigits: 2, TaxInclusive: true,
			Location: loc, CouponOfflineCap: 1_000_000, CouponKeys: d.hq.CouponKeys(),
			// A committed sale has queued its receipt: wake the printer
			// (the POS API does too; -headless sells without it).
			OnCommit: d.dev.set.PrintNow},
		Link: link.Options{Broker: d.broker.URL(), AgentVersion: "demo", AckTimeout: 3 * time.Second,
			BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Poll: 50 * time.Millisecond},
		HTTPListen: freeOr(c.Listen),
		Locale:     locale,
		Version:    "demo",
		Devices:    d.dev.set,
		APIHandler: agent.ServeAPI(agent.APIConfig{Hardware: d.dev.set, WedgeGap: c.WedgeGap}),
		Logger:     d.log.With("svc", "agent"),
	})
	if err := d.agent.Open(ctx); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	l := d.agent.Ledger()
	if ps, _ := l.Products(ctx, "TEA500", 1); len(ps) == 0 {
		if err := agent.SeedDemoCatalog(ctx, l); err != nil {
			return err
		}
		if err := agent.SeedDemoUsers(ctx, l); err != nil {
			return err
		}
	}
	if err := d.dev.open(ctx, d.agent); err != nil {
		return fmt.Errorf("start devices: %w", err)
	}
	return nil
}

func (d *demo) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.agent != nil {
		if err := d.agent.Close(ctx); err != nil {
			d.log.Warn("close agent", "err", err)
		}
	}
	if d.dev != nil {
		d.dev.close()
	}
	if d.hq != nil {
		if err := d.hq.Close(ctx); err != nil {
			d.log.Warn("close hq", "err", err)
		}
	}
	if d.hqDB != nil {
		d.hqDB.Close(ctx)
	}
	if d.broker != nil {
		d.broker.Close()
	}
}

// headless sells n sales with an outage of length out in the middle, then
// reconciles with HQ.
func (d *demo) headless(ctx context.Context, n int, out time.Duration, stderr io.Writer) int {
	l := d.agent.Ledger()
	waitFor := func(what string, limit time.Duration, cond func() bool) error {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out after %s waiting for %s", limit, what)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}
	if err := waitFor("the store to reconcile with HQ", 30*time.Second, func() bool { return d.agent.Status(ctx).Sync.Online }); err != nil {
		fmt.Fprintln(stderr, "pos-demo:", err)
		return 1
	}
	// Coupons sold online: HQ signs them; the store verifies them offline.
	reply, err := d.hq.IssueCoupons(ctx, hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 200, MinSpend: 500, Currency: "CNY",
		Expires: time.Now().Add(24 * time.Hour), Count: max(n/100, 1)})
	if err != nil {
		fmt.Fprintln(stderr, "pos-demo: issue coupons:", err)
		return 1
	}
	coupons := reply.Coupons

	before, during := n/3, n/3
	start := time.Now()
	var outageAt time.Time
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return 1
		}
		switch {
		case i == before && out > 0:
			outageAt = time.Now()
			if err := d.broker.Close(); err != nil {
				fmt.Fprintln(stderr, "pos-demo: stop broker:", err)
				return 1
			}
			fmt.Fprintf(d.out, "broker down after %d sales; selling goes on offline for %s\n", i, out)
		case i == before+during && out > 0:
			if rest := out - time.Since(outageAt); rest > 0 {
				time.Sleep(rest)
			}
			nb, err := embedbroker.Restart(d.broker)
			if err != nil {
				fmt.Fprintln(stderr, "pos-demo: restart broker:", err)
				return 1
			}
			d.broker = nb
			st := d.agent.Status(ctx)
			fmt.Fprintf(d.out, "broker back after %s; %d events waiting to sync\n", time.Since(outageAt).Round(time.Millisecond), st.Sync.Backlog)
		}
		if i >= before && i < before+during && out > 0 {
			// Spread the offline sales over the outage.
			next := outageAt.Add(time.Duration(int64(out) * int64(i-before+1) / int64(during+1)))
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
		}
		var tok string
		if i%100 == 50 && len(coupons) > 0 {
			tok, coupons = coupons[0].Token, coupons[1:]
		}
		if err := sellRandom(ctx, l, tok); err != nil {
			fmt.Fprintf(stderr, "pos-demo: sale %d: %v\n", i+1, err)
			return 1
		}
	}
	fmt.Fprintf(d.out, "%d sales made in %s\n", n, time.Since(start).Round(time.Millisecond))
	caught := time.Now()
	if err := waitFor("the store to catch up with HQ", 2*time.Minute, func() bool {
		st := d.agent.Status(ctx)
		return st.Sync.Online && st.Sync.Backlog == 0
	}); err != nil {
		fmt.Fprintln(stderr, "pos-demo:", err)
	}
	fmt.Fprintf(d.out, "caught up %s after the last sale\n", time.Since(caught).Round(time.Millisecond))
	// The receipts went to the virtual printer meanwhile; wait (bounded)
	// for the queue to empty. A slow printer is no reason to fail.
	_ = waitFor("the print queue to empty", 30*time.Second, func() bool {
		_, err := l.NextQueued(ctx)
		return errors.Is(err, agent.ErrNotFound)
	})
	fmt.Fprintf(d.out, "%d receipts printed by the virtual printer\n", d.dev.printed())
	res, err := reconcile.Compare(ctx, []reconcile.Terminal{{Store: store, DB: l.DB().Read}}, d.hqDB)
	if err != nil {
		fmt.Fprintln(stderr, "pos-demo: reconcile:", err)
		return 1
	}
	fmt.Fprintln(d.out, res.Line(true))
	if !res.OK() || res.Sales != n {
		return 1
	}
	return 0
}

var demoSKUs = []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER", "RICE5", "CHOCO"}

// sellRandom sells one random basket: scanned items, sometimes weighed
// apples, sometimes a coupon, cash or card or both.
func sellRandom(ctx context.Context, l *agent.Ledger, coupon string) error {
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	if err != nil {
		return err
	}
	for k := 1 + mrand.IntN(5); k > 0; k-- {
		if mrand.IntN(6) == 0 {
			// A scale label: PLU 1 (apples), 0.200–2.000 kg.
			code := fmt.Sprintf("20%05d%05d", 1, 200+mrand.IntN(1800))
			c, _ := barcode.CheckDigit(code)
			s, err = l.Scan(ctx, s.ID, code+string(c))
		} else {
			s, err = l.AddItem(ctx, s.ID, demoSKUs[mrand.IntN(len(demoSKUs))], int64(1+mrand.IntN(2))*1000)
		}
		if err != nil {
			return err
		}
	}
	if coupon != "" {
		if s2, err := l.ApplyCoupon(ctx, s.ID, coupon, ""); err == nil {
			s = s2
		} else if !errors.Is(err, agent.ErrCouponMinSpend) {
			return fmt.Errorf("coupon: %w", err)
		}
	}
	switch mrand.IntN(3) {
	case 0:
		cash := (s.Total/1000 + 1) * 1000 // a round note
		s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: cash})
	case 1:
		s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCard, Amount: s.Total, Ref: fmt.Sprintf("AUTH%06d", mrand.IntN(1_000_000))})
	default:
		part := s.Total / 2
		if s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderWallet, Amount: max(part, 1), Ref: "WX" + fmt.Sprint(mrand.IntN(1_000_000))}); err == nil && s.Due > 0 {
			s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: s.Due})
		}
	}
	if err != nil {
		return err
	}
	_, err = l.CompleteSale(ctx, s.ID, s.ID)
	return err
}
