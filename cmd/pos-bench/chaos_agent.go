package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/sync/link"
)

// roleChaosAgent is the child running one store's agent for the chaos run.
const roleChaosAgent = "chaos-agent"

// agentArgs are what the parent passes to a chaos agent child.
type agentArgs struct {
	db, store, terminal, broker, prefix, coupons string
	rate                                         float64
	seed                                         uint64
	batch, window                                int
	ackTimeout                                   time.Duration
}

func (a agentArgs) list() []string {
	return []string{roleChaosAgent, "-db", a.db, "-store", a.store, "-terminal", a.terminal, "-broker", a.broker,
		"-prefix", a.prefix, "-coupons", a.coupons, "-rate", fmt.Sprint(a.rate), "-seed", fmt.Sprint(a.seed),
		"-batch", fmt.Sprint(a.batch), "-window", fmt.Sprint(a.window), "-ack-timeout", a.ackTimeout.String()}
}

// chaosAgentMain runs a store agent (agent.New → Open with its sync link)
// and sells through its ledger at about -rate sales a second: random
// baskets, HQ-issued coupons, returns and voids. It prints "ready" once
// open and "status k=v …" four times a second. The command "stop" on
// stdin stops selling (syncing goes on); SIGTERM or the end of stdin closes
// it cleanly.
func chaosAgentMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(roleChaosAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a agentArgs
	fs.StringVar(&a.db, "db", "", "agent database")
	fs.StringVar(&a.store, "store", "", "store id")
	fs.StringVar(&a.terminal, "terminal", "T1", "terminal id")
	fs.StringVar(&a.broker, "broker", "", "MQTT broker URL")
	fs.StringVar(&a.prefix, "prefix", "", "topic prefix")
	fs.StringVar(&a.coupons, "coupons", "", "file of coupon tokens HQ issued for this store, one a line")
	fs.Float64Var(&a.rate, "rate", 10, "sales per second")
	fs.Uint64Var(&a.seed, "seed", 1, "random seed")
	fs.IntVar(&a.batch, "batch", 0, "link: events per batch (0: link default)")
	fs.IntVar(&a.window, "window", 0, "link: batches in flight (0: link default)")
	fs.DurationVar(&a.ackTimeout, "ack-timeout", time.Second, "link: resend from the last ack after this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if a.rate <= 0 {
		fmt.Fprintln(stderr, "chaos agent: -rate must be positive")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("svc", "agent", "store", a.store)
	ag := agent.New(agent.Options{
		Database: a.db,
		Ledger: agent.LedgerConfig{Store: a.store, Terminal: a.terminal, Currency: "CNY", MinorDigits: 2, TaxInclusive: true,
			BcryptCost: bcrypt.MinCost},
		Link: link.Options{Broker: a.broker, TopicPrefix: a.prefix, AgentVersion: "chaos", BatchEvents: a.batch, Window: a.window,
			AckTimeout: a.ackTimeout, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, Poll: 50 * time.Millisecond},
		Version: "chaos",
		Logger:  log,
	})
	if err := ag.Open(ctx); err != nil {
		fmt.Fprintln(stderr, "chaos agent:", err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := ag.Close(cctx); err != nil {
			fmt.Fprintln(stderr, "chaos agent: close:", err)
		}
	}()
	l := ag.Ledger()
	if err := seedOnce(ctx, l); err != nil {
		fmt.Fprintln(stderr, "chaos agent: seed:", err)
		return 1
	}
	fmt.Fprintln(stdout, "ready")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sellCtx, stopSelling := context.WithCancel(ctx)
	defer stopSelling()
	s := &seller{l: l, rng: rand.New(rand.NewPCG(a.seed, uint64(time.Now().UnixNano()))), couponFile: a.coupons, tried: map[string]bool{}, log: log}
	var wg sync.WaitGroup
	sellErr := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		sellErr <- s.run(sellCtx, a.rate)
	}()
	go func() {
		defer wg.Done()
		s.report(ctx, ag, stdout)
	}()
	defer wg.Wait()
	defer cancel()

	// The stdin reader cannot be interrupted (a blocking read); it ends
	// with stdin, which the parent closes or which closes when it dies, or
	// with this process.
	cmds := make(chan string)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case cmds <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return 0
		case err := <-sellErr:
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintln(stderr, "chaos agent: selling stopped:", err)
				return 1
			}
			sellErr = nil
		case c, ok := <-cmds:
			if !ok {
				return 0
			}
			if c == "stop" {
				stopSelling()
			}
		}
	}
}

// seedOnce loads the demo catalog and users on a new terminal. A crash in
// the middle is repaired on the next start: seeding is idempotent apart
// from stock, which a repeat adds again (harmless here).
func seedOnce(ctx context.Context, l *agent.Ledger) error {
	ps, err := l.Products(ctx, "", 100)
	if err != nil {
		return err
	}
	us, err := l.Users(ctx)
	if err != nil {
		return err
	}
	if len(ps) >= len(agent.DemoProducts) && len(us) >= 2 {
		return nil
	}
	if err := agent.SeedDemoCatalog(ctx, l); err != nil {
		return err
	}
	if len(us) < 2 {
		return agent.SeedDemoUsers(ctx, l)
	}
	return nil
}

// seller sells random baskets and, now and then, voids or returns one of
// its recent sales.
type seller struct {
	l          *agent.Ledger
	rng        *rand.Rand
	log        *slog.Logger
	couponFile string
	coupons    []string
	tried      map[string]bool
	recent     []string // ids of recent completed sales

	mu                                      sync.Mutex
	sold, voids, returns, couponsUsed, errs int64
}

var chaosSKUs = []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER", "RICE5", "CHOCO"}

func (s *seller) run(ctx context.Context, rate float64) error {
	gap := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for consecutive := 0; ; {
		next = next.Add(gap/2 + time.Duration(s.rng.Int64N(int64(gap)+1)))
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		} else if wait < -time.Second {
			next = time.Now() // fell behind (a pause, a slow disk): do not burst
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var err error
		switch k := s.rng.IntN(100); {
		case k < 5 && len(s.recent) > 0:
			err = s.void(ctx)
		case k < 10 && len(s.recent) > 0:
			err = s.returnLine(ctx)
		default:
			err = s.sell(ctx)
		}
		if err == nil {
			consecutive = 0
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.count(&s.errs)
		s.log.Warn("chaos sale step failed", "err", err)
		if consecutive++; consecutive >= 20 {
			return fmt.Errorf("20 failures in a row, last: %w", err)
		}
	}
}

func (s *seller) count(p *int64) {
	s.mu.Lock()
	*p++
	s.mu.Unlock()
}

// nextCoupon returns a coupon not yet tried by this process, reading the
// file HQ's coupons were written to when the ones in memory are used up.
func (s *seller) nextCoupon() string {
	if len(s.coupons) == 0 && s.couponFile != "" {
		b, err := os.ReadFile(s.couponFile)
		if err == nil {
			for _, t := range strings.Fields(string(b)) {
				if !s.tried[t] {
					s.coupons = append(s.coupons, t)
				}
			}
		}
	}
	if len(s.coupons) == 0 {
		return ""
	}
	t := s.coupons[0]
	s.coupons = s.coupons[1:]
	return t
}

func (s *seller) sell(ctx context.Context) error {
	l := s.l
	sale, err := l.OpenSale(ctx, agent.DemoCashier)
	if err != nil {
		return err
	}
	// The ledger's calls return a nil sale with their error: cancel by id.
	id, done := sale.ID, false
	defer func() {
		if !done {
			l.CancelSale(ctx, id)
		}
	}()
	for k := 1 + s.rng.IntN(5); k > 0; k-- {
		if s.rng.IntN(6) == 0 {
			// A scale label: PLU 1 (apples), 0.200–2.000 kg.
			code := fmt.Sprintf("20%05d%05d", 1, 200+s.rng.IntN(1800))
			c, _ := barcode.CheckDigit(code)
			sale, err = l.Scan(ctx, sale.ID, code+string(c))
		} else {
			sale, err = l.AddItem(ctx, sale.ID, chaosSKUs[s.rng.IntN(len(chaosSKUs))], int64(1+s.rng.IntN(2))*1000)
		}
		if err != nil {
			return err
		}
	}
	var coupon string
	if s.rng.IntN(10) == 0 {
		if tok := s.nextCoupon(); tok != "" {
			s2, err := l.ApplyCoupon(ctx, sale.ID, tok, "")
			switch {
			case err == nil:
				sale, coupon = s2, tok
				s.tried[tok] = true
			case errors.Is(err, agent.ErrCouponMinSpend), errors.Is(err, agent.ErrCouponUnknownKey):
				// Keep it: a bigger basket, or HQ's key once the feed brings it.
				s.coupons = append(s.coupons, tok)
			default:
				s.tried[tok] = true // used before this process started, expired, …
			}
		}
	}
	switch s.rng.IntN(3) {
	case 0:
		cash := (sale.Total/1000 + 1) * 1000 // a round note
		sale, err = l.AddTender(sale.ID, agent.Tender{Kind: agent.TenderCash, Amount: cash})
	case 1:
		sale, err = l.AddTender(sale.ID, agent.Tender{Kind: agent.TenderCard, Amount: sale.Total, Ref: fmt.Sprintf("AUTH%06d", s.rng.IntN(1_000_000))})
	default:
		part := max(sale.Total/2, 1)
		if sale, err = l.AddTender(sale.ID, agent.Tender{Kind: agent.TenderWallet, Amount: part, Ref: fmt.Sprintf("WX%06d", s.rng.IntN(1_000_000))}); err == nil && sale.Due > 0 {
			sale, err = l.AddTender(sale.ID, agent.Tender{Kind: agent.TenderCash, Amount: sale.Due})
		}
	}
	if err != nil {
		return err
	}
	if _, err := l.CompleteSale(ctx, sale.ID, sale.ID); err != nil {
		return err
	}
	done = true
	s.count(&s.sold)
	if coupon != "" {
		s.count(&s.couponsUsed)
	}
	s.recent = append(s.recent, sale.ID)
	if len(s.recent) > 50 {
		s.recent = s.recent[len(s.recent)-50:]
	}
	return nil
}

// pickRecent removes and returns a random recent sale id.
func (s *seller) pickRecent() string {
	i := s.rng.IntN(len(s.recent))
	id := s.recent[i]
	s.recent = append(s.recent[:i], s.recent[i+1:]...)
	return id
}

func (s *seller) void(ctx context.Context) error {
	id := s.pickRecent()
	sale, err := s.l.GetSale(ctx, id)
	if err != nil {
		return err
	}
	if sale.State != agent.StateCompleted || sale.Refunded > 0 {
		return nil
	}
	if _, err := s.l.VoidSale(ctx, id, agent.DemoManager, "chaos: customer changed mind"); err != nil {
		return err
	}
	s.count(&s.voids)
	return nil
}

// returnLine returns the whole of one line of a recent sale, refunded in
// cash at what was paid for it.
func (s *seller) returnLine(ctx context.Context) error {
	id := s.pickRecent()
	sale, err := s.l.GetSale(ctx, id)
	if err != nil {
		return err
	}
	if sale.State != agent.StateCompleted {
		return nil
	}
	for _, ln := range sale.Lines {
		if ln.Voided || ln.ReturnedQty > 0 || ln.Total <= 0 {
			continue
		}
		_, err := s.l.ReturnItems(ctx, agent.ReturnRequest{Receipt: sale.Receipt, Lines: []agent.ReturnLine{{Line: ln.Line, Qty: ln.Qty}},
			Refunds: []agent.Tender{{Kind: agent.TenderCash, Amount: ln.Total}}, Cashier: agent.DemoCashier})
		if errors.Is(err, agent.ErrRefundTooLarge) {
			return nil // a coupon made the sale cheaper than this line: not a return a cashier would make
		}
		if err != nil {
			return err
		}
		s.count(&s.returns)
		return nil
	}
	return nil
}

// report prints a status line four times a second until ctx ends.
func (s *seller) report(ctx context.Context, ag *agent.Agent, stdout io.Writer) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := ag.Status(ctx)
		var resends int64
		if lk := ag.Link(); lk != nil {
			if ls, err := lk.State(ctx); err == nil {
				resends = ls.Resends
			}
		}
		online := 0
		if st.Sync.Online {
			online = 1
		}
		// The ledger's count survives restarts; the others are this process's.
		var ledger int64
		ag.Ledger().DB().Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM sales WHERE state IN ('completed', 'voided')").Scan(&ledger)
		s.mu.Lock()
		fmt.Fprintf(stdout, "status online=%d backlog=%d rejected=%d resends=%d ledger=%d sold=%d voids=%d returns=%d coupons=%d errors=%d\n",
			online, st.Sync.Backlog, st.Sync.Rejected, resends, ledger, s.sold, s.voids, s.returns, s.couponsUsed, s.errs)
		s.mu.Unlock()
	}
}
