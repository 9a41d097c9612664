package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/reconcile"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// Fault kinds the injector uses.
const (
	faultKillAgent     = "kill-agent"
	faultKillHQ        = "kill-hq"
	faultRestartBroker = "restart-broker"
	faultPauseHQ       = "pause-hq"
)

var faultKinds = []string{faultKillAgent, faultKillHQ, faultRestartBroker, faultPauseHQ}

// chaosConfig is the chaos run's command line.
type chaosConfig struct {
	stores     int
	duration   time.Duration
	mqtt       string
	pg         string
	rate       float64
	seed       uint64
	dir        string
	queueLimit int
	maxPause   time.Duration
	catchup    time.Duration
	batch      int
	window     int
	ackTimeout time.Duration
}

// chaos is one chaos run.
type chaos struct {
	cfg    chaosConfig
	out    io.Writer
	errOut io.Writer
	rng    *mrand.Rand
	run    string
	dir    string
	prefix string
	topics wire.Topics
	token  string
	start  time.Time

	broker   *embedbroker.Broker // embedded broker, or nil
	proxy    *tcpProxy           // in front of an external broker, or nil
	clients  string              // the URL agents and HQ connect to
	direct   string              // the broker itself, for the monitor
	pgAdmin  *pgAdmin
	pgSchema string

	hqArgs hqArgs
	hq     *proc
	hqAPI  string
	agents []*proc
	ids    []string

	monitor  paho.Client
	upstream atomic.Int64 // messages published towards HQ (uploads and status)

	faults   map[string]int
	problems []string
}

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pos-bench chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaosConfig
	fs.IntVar(&cfg.stores, "stores", 5, "store agents selling at once (1..50)")
	fs.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long they sell while faults are injected")
	fs.StringVar(&cfg.mqtt, "mqtt", "", "broker URL, e.g. tcp://127.0.0.1:1883 (default: an embedded broker this run restarts)")
	fs.StringVar(&cfg.pg, "pg", "", "HQ on PostgreSQL at this URL, in a schema of its own (default: SQLite)")
	fs.Float64Var(&cfg.rate, "rate", 10, "sales per second per store")
	fs.Uint64Var(&cfg.seed, "seed", 0, "random seed of the fault schedule and the baskets (default: from the clock)")
	fs.StringVar(&cfg.dir, "dir", "", "data directory, kept after the run (default: a temporary one, removed on success)")
	fs.IntVar(&cfg.queueLimit, "queue-limit", 0, "messages the broker queues for a paused HQ before it drops (default 1024 embedded, 1020 Mosquitto: max_queued_messages 1000 + 20 in flight)")
	fs.DurationVar(&cfg.maxPause, "max-pause", 25*time.Second, "longest HQ pause (stay below 1.5 × HQ's 30 s keep-alive)")
	fs.DurationVar(&cfg.catchup, "catchup", 3*time.Minute, "how long to wait for every store to catch up after selling stops")
	fs.IntVar(&cfg.batch, "batch", 1, "agents' link: events per batch (small, so a few stores send as many messages as a fleet)")
	fs.IntVar(&cfg.window, "window", 256, "agents' link: batches in flight")
	fs.DurationVar(&cfg.ackTimeout, "ack-timeout", time.Second, "agents' link: resend from the last ack after this")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "pos-bench chaos: unexpected arguments %q\n", fs.Args())
		return 2
	case cfg.stores < 1 || cfg.stores > 50:
		fmt.Fprintln(stderr, "pos-bench chaos: -stores must be 1..50")
		return 2
	case cfg.duration <= 0 || cfg.rate <= 0 || cfg.catchup <= 0 || cfg.maxPause <= 0 || cfg.ackTimeout <= 0:
		fmt.Fprintln(stderr, "pos-bench chaos: -duration, -rate, -catchup, -max-pause and -ack-timeout must be positive")
		return 2
	case cfg.mqtt != "" && !strings.HasPrefix(cfg.mqtt, "tcp://"):
		fmt.Fprintln(stderr, "pos-bench chaos: -mqtt must be tcp://host:port")
		return 2
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano())
	}
	if cfg.queueLimit <= 0 {
		cfg.queueLimit = 1024
		if cfg.mqtt != "" {
			cfg.queueLimit = 1020
		}
	}
	c := &chaos{cfg: cfg, out: stdout, errOut: stderr, rng: mrand.New(mrand.NewPCG(cfg.seed, 0x6368616f73)), faults: map[string]int{}}
	return c.main(ctx)
}

func (c *chaos) say(format string, args ...any) {
	fmt.Fprintf(c.out, format+"\n", args...)
}

func (c *chaos) since() string { return fmt.Sprintf("t=%.1fs", time.Since(c.start).Seconds()) }

func (c *chaos) main(ctx context.Context) int {
	runID := make([]byte, 3)
	rand.Read(runID)
	c.run = hex.EncodeToString(runID)
	tok := make([]byte, 16)
	rand.Read(tok)
	c.token = hex.EncodeToString(tok)

	keep := c.cfg.dir != ""
	c.dir = c.cfg.dir
	if c.dir == "" {
		d, err := os.MkdirTemp("", "edgepos-chaos-")
		if err != nil {
			fmt.Fprintln(c.errOut, "chaos:", err)
			return 1
		}
		c.dir = d
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		fmt.Fprintln(c.errOut, "chaos:", err)
		return 1
	}
	code := c.execute(ctx)
	c.teardown(ctx)
	if code == 0 && !keep {
		os.RemoveAll(c.dir)
	} else {
		fmt.Fprintf(c.errOut, "chaos: data and child logs kept in %s\n", c.dir)
	}
	return code
}

// execute runs the whole chaos run and returns the exit status. It prints
// the reconciliation line last.
func (c *chaos) execute(ctx context.Context) int {
	if err := c.setup(ctx); err != nil {
		fmt.Fprintln(c.errOut, "chaos:", err)
		return 1
	}
	c.start = time.Now()
	c.say("chaos: %d stores selling %.3g sales/s each for %s; broker %s; HQ on %s; seed %d",
		c.cfg.stores, c.cfg.rate, c.cfg.duration, c.brokerName(), c.hqName(), c.cfg.seed)
	c.inject(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(c.errOut, "chaos: interrupted")
		return 1
	}
	stopAt := time.Now()
	c.say("chaos: %s selling stops; waiting for every store to catch up", c.since())
	for _, a := range c.agents {
		if err := a.send("stop"); err != nil {
			c.problem("%s: %v", a.name, err)
		}
	}
	if err := c.waitCatchUp(ctx); err != nil {
		c.problem("%v", err)
	} else {
		c.say("chaos: caught up %s after selling stopped", time.Since(stopAt).Round(time.Millisecond))
	}
	for _, a := range c.agents {
		if err := a.term(30 * time.Second); err != nil {
			c.problem("%v", err)
		}
	}
	if err := c.hq.term(30 * time.Second); err != nil {
		c.problem("%v", err)
	}
	for _, p := range append([]*proc{c.hq}, c.agents...) {
		for _, m := range p.problems() {
			c.problem("%s", m)
		}
	}

	sales, events, err := c.reconcile(ctx)
	if err != nil {
		fmt.Fprintln(c.errOut, "chaos: reconcile:", err)
		return 1
	}
	var kinds []string
	for _, k := range faultKinds {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, c.faults[k]))
	}
	c.say("faults: %s", strings.Join(kinds, " "))
	var byType []string
	for t, n := range events.ByType {
		byType = append(byType, fmt.Sprintf("%s=%d", t, n))
	}
	sort.Strings(byType)
	c.say("%s (%s)", events.Line(), strings.Join(byType, " "))
	for _, p := range c.problems {
		c.say("problem: %s", p)
	}
	c.say("%s", sales.Line(false))
	if !sales.OK() || !events.OK() || sales.Quarantined > 0 || sales.Sales == 0 || len(c.problems) > 0 {
		return 1
	}
	return 0
}

func (c *chaos) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *chaos) brokerName() string {
	if c.broker != nil {
		return "embedded (mochi) at " + c.broker.URL()
	}
	return c.cfg.mqtt + " through a cuttable proxy at " + c.proxy.URL()
}

func (c *chaos) hqName() string {
	if c.cfg.pg != "" {
		return "PostgreSQL, schema " + c.pgSchema
	}
	return "SQLite"
}

// setup starts the broker (or the proxy), the monitor, HQ, the coupons and
// the store agents.
func (c *chaos) setup(ctx context.Context) error {
	c.prefix = wire.DefaultPrefix
	if c.cfg.mqtt != "" {
		// A shared broker: topics, client ids and store ids of our own.
		c.prefix = "edgepos-chaos-" + c.run + "/v1"
		u, err := url.Parse(c.cfg.mqtt)
		if err != nil {
			return err
		}
		if c.proxy, err = startProxy(u.Host); err != nil {
			return err
		}
		c.clients, c.direct = c.proxy.URL(), c.cfg.mqtt
	} else {
		var err error
		c.broker, err = embedbroker.Start(embedbroker.Options{Prefix: c.prefix, Privileged: []string{"hq"}})
		if err != nil {
			return err
		}
		c.clients, c.direct = c.broker.URL(), c.broker.URL()
	}
	c.topics = wire.NewTopics(c.prefix)
	if err := c.startMonitor(); err != nil {
		return err
	}

	c.hqArgs = hqArgs{dir: c.dir, broker: c.clients, prefix: c.prefix, clientID: "chaos-hq-" + c.run, token: c.token}
	if c.cfg.pg != "" {
		var err error
		if c.pgAdmin, err = newPGAdmin(ctx, c.cfg.pg); err != nil {
			return err
		}
		if c.pgSchema, err = c.pgAdmin.schema(ctx, "chaos", "hq"); err != nil {
			return err
		}
		c.hqArgs.pg, c.hqArgs.schema = c.cfg.pg, c.pgSchema
	}
	c.hq = newProc("hq", filepath.Join(c.dir, "hq.log"), c.hqArgs.list()...)
	if err := c.startHQ(); err != nil {
		return err
	}

	perStore := max(5, int(c.cfg.rate*c.cfg.duration.Seconds()/15))
	for i := 0; i < c.cfg.stores; i++ {
		id := fmt.Sprintf("C%sS%02d", c.run, i+1)
		c.ids = append(c.ids, id)
		sdir := filepath.Join(c.dir, id)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return err
		}
		coupons := filepath.Join(sdir, "coupons.txt")
		if err := c.issueCoupons(ctx, id, perStore, coupons); err != nil {
			return err
		}
		a := agentArgs{db: filepath.Join(sdir, "pos.db"), store: id, terminal: "T1", broker: c.clients, prefix: c.prefix, coupons: coupons,
			rate: c.cfg.rate, seed: c.cfg.seed + uint64(i) + 1, batch: c.cfg.batch, window: c.cfg.window, ackTimeout: c.cfg.ackTimeout}
		c.agents = append(c.agents, newProc(id, filepath.Join(sdir, "agent.log"), a.list()...))
	}
	for _, a := range c.agents {
		if err := a.start(); err != nil {
			return err
		}
	}
	for _, a := range c.agents {
		if _, err := a.waitReady(time.Minute); err != nil {
			return err
		}
	}
	c.say("chaos: HQ and %d agents ready; %d coupons issued per store through HQ's API", len(c.agents), perStore)
	return nil
}

// startHQ starts the HQ child and waits until it is subscribed.
func (c *chaos) startHQ() error {
	if err := c.hq.start(); err != nil {
		return err
	}
	line, err := c.hq.waitReady(time.Minute)
	if err != nil {
		return err
	}
	c.hqAPI = parseKV(strings.TrimPrefix(line, "ready"))["api"]
	return nil
}

// startMonitor subscribes, at QoS 0 and straight to the broker, to what
// terminals send towards HQ, to count the messages a paused HQ is owed.
func (c *chaos) startMonitor() error {
	var onMsg paho.MessageHandler = func(paho.Client, paho.Message) { c.upstream.Add(1) }
	filters := map[string]byte{c.topics.UpFilter(): 0, c.topics.StatusFilter(): 0}
	o := paho.NewClientOptions().AddBroker(c.direct).SetClientID("chaos-monitor-" + c.run).SetUsername("hq").
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(time.Second).
		SetOnConnectHandler(func(cl paho.Client) { cl.SubscribeMultiple(filters, onMsg) })
	c.monitor = paho.NewClient(o)
	t := c.monitor.Connect()
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("monitor: connect %s: %v", c.direct, t.Error())
	}
	return nil
}

// issueCoupons asks HQ's operator API for n coupons valid in store and
// writes their tokens to path (whole file, then rename).
func (c *chaos) issueCoupons(ctx context.Context, store string, n int, path string) error {
	body, _ := json.Marshal(hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 200, MinSpend: 500, Currency: "CNY",
		Expires: time.Now().Add(24 * time.Hour), Stores: []string{store}, Count: n})
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+c.hqAPI+"/api/coupons", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("issue coupons: %w", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("issue coupons: %s: %.300s", res.Status, data)
	}
	var reply hq.IssueReply
	if err := json.Unmarshal(data, &reply); err != nil {
		return fmt.Errorf("issue coupons: %w", err)
	}
	var b strings.Builder
	for _, t := range reply.Coupons {
		b.WriteString(t.Token + "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// inject runs faults one after another, at random moments, until the
// selling time is over: the first four are one of each kind in random
// order (all four happen even when they take longer than the selling
// time), then kinds at random. Each fault is undone (process restarted,
// broker back, HQ resumed) before the next.
func (c *chaos) inject(ctx context.Context) {
	end := c.start.Add(c.cfg.duration)
	order := append([]string(nil), faultKinds...)
	c.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	lastReport := time.Now()
	for n := 0; ; n++ {
		gap := time.Duration(500+c.rng.IntN(1500)) * time.Millisecond
		if n == 0 {
			gap = time.Duration(1000+c.rng.IntN(1000)) * time.Millisecond
		}
		if n >= len(order) && time.Until(end) < time.Second {
			c.sleep(ctx, time.Until(end))
			return
		}
		if !c.sleep(ctx, gap) {
			return
		}
		kind := faultKinds[c.rng.IntN(len(faultKinds))]
		if n < len(order) {
			kind = order[n]
		}
		if err := c.fault(ctx, kind, end); err != nil {
			c.problem("%s: %v", kind, err)
			c.say("fault %s %s FAILED: %v", c.since(), kind, err)
		}
		c.faults[kind]++
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			c.progress()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// progress prints the stores' state to stderr.
func (c *chaos) progress() {
	var parts []string
	for _, a := range c.agents {
		st, _ := a.lastStatus()
		parts = append(parts, fmt.Sprintf("%s sales=%s backlog=%s resends=%s", a.name, st["ledger"], st["backlog"], st["resends"]))
	}
	fmt.Fprintf(c.errOut, "chaos: %s %s\n", c.since(), strings.Join(parts, "; "))
}

// sleep waits d or until ctx ends; it reports whether d passed.
func (c *chaos) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (c *chaos) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

// fault injects one fault of kind and undoes it.
func (c *chaos) fault(ctx context.Context, kind string, end time.Time) error {
	at := c.since()
	switch kind {
	case faultKillAgent:
		a := c.agents[c.rng.IntN(len(c.agents))]
		if err := a.kill(); err != nil {
			return err
		}
		down := c.between(200*time.Millisecond, 1500*time.Millisecond)
		c.sleep(ctx, down)
		if err := a.start(); err != nil {
			return err
		}
		if _, err := a.waitReady(time.Minute); err != nil {
			return err
		}
		c.say("fault %s %s store=%s: SIGKILL, restarted after %s", at, kind, a.name, down.Round(time.Millisecond))
	case faultKillHQ:
		if err := c.hq.kill(); err != nil {
			return err
		}
		down := c.between(300*time.Millisecond, 3*time.Second)
		c.sleep(ctx, down)
		t0 := time.Now()
		if err := c.startHQ(); err != nil {
			return err
		}
		c.say("fault %s %s: SIGKILL, restarted after %s (ready %s later)", at, kind, down.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	case faultRestartBroker:
		down := c.between(300*time.Millisecond, 2*time.Second)
		if c.broker != nil {
			if err := c.broker.Close(); err != nil {
				return err
			}
			c.sleep(ctx, down)
			nb, err := embedbroker.Restart(c.broker)
			if err != nil {
				return err
			}
			c.broker = nb
			c.say("fault %s %s: embedded broker down %s, back with every session and queue lost", at, kind, down.Round(time.Millisecond))
		} else {
			c.proxy.cut(down)
			c.sleep(ctx, down)
			c.say("fault %s %s: every connection to %s cut, refused for %s (the broker itself is shared, so it keeps its sessions as a persistent broker does across a restart)",
				at, kind, c.cfg.mqtt, down.Round(time.Millisecond))
		}
	case faultPauseHQ:
		// Long enough for the terminals to send more than the broker
		// queues for HQ's session; capped below HQ's keep-alive timeout.
		limit := min(c.cfg.maxPause, max(time.Until(end)+5*time.Second, 10*time.Second))
		// Pause an HQ that is connected: right after a broker restart HQ
		// may still be reconnecting, and a broker holds no queue for it.
		waited := c.waitOnline(ctx, 15*time.Second)
		before := c.upstream.Load()
		dropped0 := c.brokerDropped()
		if err := c.hq.signal(syscall.SIGSTOP, false); err != nil {
			return err
		}
		t0 := time.Now()
		want := int64(c.cfg.queueLimit + 200)
		for time.Since(t0) < limit && c.upstream.Load()-before < want && ctx.Err() == nil {
			c.sleep(ctx, 100*time.Millisecond)
		}
		paused := time.Since(t0)
		sent := c.upstream.Load() - before
		if err := c.hq.signal(syscall.SIGCONT, false); err != nil {
			return err
		}
		over := "queue overflowed"
		if sent <= int64(c.cfg.queueLimit) {
			over = "queue NOT overflowed"
		}
		drop := ""
		if c.broker != nil {
			drop = fmt.Sprintf(", broker dropped %d", c.brokerDropped()-dropped0)
		}
		c.say("fault %s %s: SIGSTOP for %s while terminals sent %d messages towards HQ (broker queue ~%d: %s%s), then SIGCONT%s",
			at, kind, paused.Round(time.Millisecond), sent, c.cfg.queueLimit, over, drop, waited)
	default:
		return fmt.Errorf("unknown fault %q", kind)
	}
	return nil
}

// waitOnline waits until every agent reports itself online (connected and
// answered by HQ) in a status newer than the call, at most limit. It
// returns "" or a note saying how long it waited or that it gave up.
func (c *chaos) waitOnline(ctx context.Context, limit time.Duration) string {
	since := time.Now()
	for {
		all := true
		for _, a := range c.agents {
			st, at := a.lastStatus()
			if at.Before(since) || st["online"] != "1" {
				all = false
			}
		}
		switch {
		case all && time.Since(since) < 500*time.Millisecond:
			return ""
		case all:
			return fmt.Sprintf(" (waited %s for every store to be online first)", time.Since(since).Round(time.Millisecond))
		case time.Since(since) > limit:
			return fmt.Sprintf(" (not every store was online after %s; paused anyway)", limit)
		}
		if !c.sleep(ctx, 50*time.Millisecond) {
			return ""
		}
	}
}

// brokerDropped is how many messages the embedded broker has dropped
// (in-flight quota and full client queues).
func (c *chaos) brokerDropped() int64 {
	if c.broker == nil {
		return 0
	}
	info := c.broker.Server().Info
	return atomic.LoadInt64(&info.InflightDropped) + atomic.LoadInt64(&info.MessagesDropped)
}

// waitCatchUp waits until every agent reports an empty backlog while
// online, with a status newer than the stop.
func (c *chaos) waitCatchUp(ctx context.Context) error {
	since := time.Now()
	deadline := since.Add(c.cfg.catchup)
	lastReport := time.Now()
	for {
		pending := 0
		for _, a := range c.agents {
			st, at := a.lastStatus()
			if !a.running() {
				return fmt.Errorf("%s is not running", a.name)
			}
			if at.Before(since.Add(300*time.Millisecond)) || st["online"] != "1" || st["backlog"] != "0" {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			c.progress()
			return fmt.Errorf("%d stores not caught up %s after selling stopped", pending, c.cfg.catchup)
		}
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			c.progress()
		}
		if !c.sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// reconcile compares every store's ledger with HQ's database, both closed
// by their processes first.
func (c *chaos) reconcile(ctx context.Context) (reconcile.Result, reconcile.EventResult, error) {
	log := slog.New(slog.DiscardHandler)
	st, err := openHQStore(ctx, c.dir, c.cfg.pg, c.pgSchema, log)
	if err != nil {
		return reconcile.Result{}, reconcile.EventResult{}, err
	}
	defer st.Close(context.WithoutCancel(ctx))
	var terms []reconcile.Terminal
	for _, id := range c.ids {
		db, err := localdb.Open(ctx, filepath.Join(c.dir, id, "pos.db"), localdb.Options{})
		if err != nil {
			return reconcile.Result{}, reconcile.EventResult{}, fmt.Errorf("open %s: %w", id, err)
		}
		defer db.Close(context.WithoutCancel(ctx))
		terms = append(terms, reconcile.Terminal{Store: id, DB: db.Read})
	}
	sales, err := reconcile.Compare(ctx, terms, st)
	if err != nil {
		return sales, reconcile.EventResult{}, err
	}
	events, err := reconcile.CompareEvents(ctx, terms, st)
	return sales, events, err
}

// teardown stops what setup started, whatever state the run ended in, and
// leaves a shared broker and database as they were.
func (c *chaos) teardown(ctx context.Context) {
	for _, p := range append([]*proc{c.hq}, c.agents...) {
		if p != nil && p.running() {
			p.kill()
		}
	}
	if c.monitor != nil {
		c.monitor.Disconnect(250)
	}
	if c.proxy != nil {
		c.proxy.Close()
		if err := c.cleanBroker(); err != nil {
			fmt.Fprintln(c.errOut, "chaos: clean broker:", err)
		}
	}
	if c.broker != nil {
		c.broker.Close()
	}
	if c.pgAdmin != nil {
		if err := c.pgAdmin.close(ctx); err != nil {
			fmt.Fprintln(c.errOut, "chaos:", err)
		}
	}
}

// cleanBroker removes what the run left on a shared broker: HQ's
// persistent session (a clean-session connect with its client id) and the
// terminals' retained status messages.
func (c *chaos) cleanBroker() error {
	o := paho.NewClientOptions().AddBroker(c.direct).SetClientID(c.hqArgs.clientID).SetUsername("hq").SetCleanSession(true).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	cl := paho.NewClient(o)
	t := cl.Connect()
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return errors.Join(errors.New("connect"), t.Error())
	}
	defer cl.Disconnect(250)
	for _, id := range c.ids {
		cl.Publish(c.topics.Status(id, "T1"), 1, true, []byte{}).WaitTimeout(5 * time.Second)
	}
	return nil
}
