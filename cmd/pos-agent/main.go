// Command pos-agent is the edgepos store agent: one per terminal. It reads
// /etc/edgepos/agent.yaml (see configs/agent.yaml), keeps the terminal's
// sales in a local SQLite file, and syncs them to HQ.
//
//	pos-agent [--config FILE] [--set key=value ...] COMMAND
//
//	run                       run the agent until SIGINT/SIGTERM
//	check-config              load and validate the config, print a summary; connects nowhere
//	users add --id ID --name NAME --role cashier|manager (--pin-stdin | --pin PIN)
//	catalog import FILE.csv   import or update products
//	backup FILE               write a consistent copy of the database to FILE
//	version                   print the version
//
// The config file is --config, else $EDGEPOS_CONFIG, else
// /etc/edgepos/agent.yaml. EDGEPOS_<KEY> variables override the file and
// --set key=value overrides both.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/devset"
	"github.com/edgepos/edgepos/internal/config"
	"github.com/edgepos/edgepos/localdb"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// Seams for tests: where the PIN is read from and how signals arrive.
var (
	stdin         io.Reader = os.Stdin
	notifySignals           = func(c chan<- os.Signal) func() {
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		return func() { signal.Stop(c) }
	}
)

// shutdownTimeout bounds the final flush after the first signal; a second
// signal cuts it short.
const shutdownTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals are the flags every command takes.
type globals struct {
	config string
	set    setFlag
}

// setFlag collects repeated --set key=value.
type setFlag map[string]string

func (s setFlag) String() string { return "" }

func (s setFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, e.g. log.level=debug")
	}
	s[k] = val
	return nil
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "config file (env EDGEPOS_CONFIG)")
	fs.Var(g.set, "set", "override a config key, key=value (repeatable)")
}

const usage = `usage: pos-agent [--config FILE] [--set key=value] COMMAND
commands:
  run                      run the agent until SIGINT/SIGTERM
  check-config             validate the config and print a summary (connects nowhere)
  users add --id ID --name NAME --role cashier|manager --pin-stdin
  catalog import FILE.csv  import or update products from CSV
  backup FILE              write a consistent copy of the database to FILE
  version                  print the version`

// run is main without os.Exit: the exit code is returned.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{config: os.Getenv("EDGEPOS_CONFIG"), set: setFlag{}}
	if g.config == "" {
		g.config = config.DefaultPath
	}
	fs := flag.NewFlagSet("pos-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "pos-agent %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "check-config":
		return checkConfig(g, rest, stdout, stderr)
	case "run":
		return runAgent(g, rest, stderr)
	case "users":
		return users(g, rest, stdout, stderr)
	case "catalog":
		return catalog(g, rest, stdout, stderr)
	case "backup":
		return backup(g, rest, stdout, stderr)
	case "help":
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	}
	fmt.Fprintf(stderr, "pos-agent: unknown command %q\n", cmd)
	fs.Usage()
	return 2
}

// subFlags parses a command's flags; the global flags are accepted after
// the command too.
func subFlags(g *globals, name string, args []string, stderr io.Writer, define func(fs *flag.FlagSet)) (*flag.FlagSet, bool) {
	fs := flag.NewFlagSet("pos-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		return fs, false
	}
	return fs, true
}

func load(g *globals, stderr io.Writer) (*config.Agent, *slog.Logger, bool) {
	cfg, err := config.Load(g.config, os.Environ(), g.set)
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return nil, nil, false
	}
	log := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	return cfg, log, true
}

func newLogger(cfg *config.Agent, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level)) // validated by config.Load
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if cfg.Log.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("store", cfg.StoreID, "terminal", cfg.TerminalID)
}

func checkConfig(g *globals, args []string, stdout, stderr io.Writer) int {
	fs, ok := subFlags(g, "check-config", args, stderr, nil)
	if !ok || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: pos-agent [--config FILE] check-config")
		return 2
	}
	cfg, err := config.Load(g.config, os.Environ(), g.set)
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	// The same translation run does, so what passes here also starts;
	// it opens no device.
	if do, err := deviceOptions(cfg, nil); err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	} else if _, err := devset.New(do); err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	d := cfg.Devices
	printer := "none"
	if p := d.Printer; p != nil {
		printer = fmt.Sprintf("%s %s %s%s (%d mm, %s, qr %s, status %s, drawer %t)", p.Name, p.Transport, p.Path, p.Address, p.Width, p.Encoding, p.QR, p.Status, p.DrawerOnCash)
	}
	layouts := len(cfg.Barcode.Layouts)
	layoutNote := ""
	if layouts == 0 {
		layoutNote = " (defaults)"
	}
	fmt.Fprintf(stdout, "config %s ok\n", cfg.File)
	fmt.Fprintf(stdout, "  store %s, terminal %s\n", cfg.StoreID, cfg.TerminalID)
	fmt.Fprintf(stdout, "  database %s\n", cfg.Database)
	fmt.Fprintf(stdout, "  money %s (%d minor digits), tax inclusive %t, time zone %s, locale %s\n",
		cfg.Currency, cfg.MinorDigits, cfg.TaxInclusive, cfg.Timezone, cfg.Locale)
	fmt.Fprintf(stdout, "  http %s, sessions %s\n", cfg.HTTP.Listen, cfg.HTTP.SessionTTL)
	fmt.Fprintf(stdout, "  sync %s as %s, password %s, prefix %s\n", cfg.Sync.Broker, cfg.Sync.Username, passwordSource(cfg), cfg.Sync.TopicPrefix)
	fmt.Fprintf(stdout, "  coupon keys %d, offline cap %d, barcode layouts %d%s\n", len(cfg.CouponKeys), cfg.CouponOfflineCap, layouts, layoutNote)
	fmt.Fprintf(stdout, "  devices: %d scanner(s), printer %s, %d shelf/shelves\n", len(d.Scanners), printer, len(d.Shelves))
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stdout, "  warning:", w)
	}
	return 0
}

func passwordSource(cfg *config.Agent) string {
	switch {
	case cfg.Sync.PasswordFile != "":
		return "from " + cfg.Sync.PasswordFile
	case cfg.Sync.Password != "":
		return "set"
	}
	return "none"
}

// runAgent is the daemon: config → agent.Open, until the first signal;
// then agent.Close, which a second signal cuts short.
func runAgent(g *globals, args []string, stderr io.Writer) int {
	fs, ok := subFlags(g, "run", args, stderr, nil)
	if !ok || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: pos-agent [--config FILE] run")
		return 2
	}
	cfg, log, ok := load(g, stderr)
	if !ok {
		return 1
	}
	sigs := make(chan os.Signal, 2)
	stop := notifySignals(sigs)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first signal cancels ctx; a second one cancels the shutdown
	// context, cutting the final flush short.
	shutdown, abort := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer abort()
	finished := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case s := <-sigs:
			log.Info("stopping", "signal", s.String())
			cancel()
		case <-finished:
			return
		}
		select {
		case s := <-sigs:
			log.Warn("second signal: aborting the final flush", "signal", s.String())
			abort()
		case <-finished:
		}
	}()
	defer wg.Wait()
	defer close(finished)

	opts, err := agentOptions(cfg, log)
	if err != nil {
		log.Error("config", "err", err)
		return 1
	}
	a := agent.New(opts)
	if err := a.Open(ctx); err != nil {
		log.Error("start", "err", err)
		return 1
	}
	log.Info("ready", "database", cfg.Database, "http", a.Addr(), "version", version)
	<-ctx.Done()
	if err := a.Close(shutdown); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// openLedger opens the configured database and a Ledger over it.
func openLedger(ctx context.Context, cfg *config.Agent, log *slog.Logger) (*agent.Ledger, func() error, error) {
	db, err := localdb.Open(ctx, cfg.Database, localdb.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	lcfg, err := ledgerConfig(cfg, log)
	if err != nil {
		return nil, nil, errors.Join(err, db.Close(ctx))
	}
	l, err := agent.NewLedger(db, lcfg)
	if err != nil {
		return nil, nil, errors.Join(err, db.Close(ctx))
	}
	closeAll := func() error { return errors.Join(l.Close(), db.Close(context.WithoutCancel(ctx))) }
	return l, closeAll, nil
}

func users(g *globals, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: pos-agent users add --id ID --name NAME --role cashier|manager --pin-stdin")
		return 2
	}
	var id, name, role, pin string
	var pinStdin bool
	fs, ok := subFlags(g, "users add", args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "user id (login)")
		fs.StringVar(&name, "name", "", "display name")
		fs.StringVar(&role, "role", agent.RoleCashier, "cashier or manager")
		fs.StringVar(&pin, "pin", "", "PIN, 4-12 digits (visible to other users in ps: prefer --pin-stdin)")
		fs.BoolVar(&pinStdin, "pin-stdin", false, "read the PIN from the first line of standard input")
	})
	if !ok || fs.NArg() != 0 {
		return 2
	}
	if id == "" || name == "" {
		fmt.Fprintln(stderr, "pos-agent users add: --id and --name are required")
		return 2
	}
	if pinStdin == (pin != "") {
		fmt.Fprintln(stderr, "pos-agent users add: give the PIN with exactly one of --pin-stdin or --pin")
		return 2
	}
	if pinStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			fmt.Fprintln(stderr, "pos-agent users add: read PIN from stdin:", err)
			return 1
		}
		pin = strings.TrimRight(line, "\r\n")
	}
	cfg, log, ok := load(g, stderr)
	if !ok {
		return 1
	}
	ctx := context.Background()
	l, closeAll, err := openLedger(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	err = l.AddUser(ctx, id, name, role, pin)
	if cerr := closeAll(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	fmt.Fprintf(stdout, "user %s (%s) saved\n", id, role)
	return 0
}

func catalog(g *globals, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintln(stderr, "usage: pos-agent catalog import FILE.csv")
		return 2
	}
	fs, ok := subFlags(g, "catalog import", args[1:], stderr, nil)
	if !ok || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: pos-agent catalog import FILE.csv")
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	defer f.Close()
	cfg, log, ok := load(g, stderr)
	if !ok {
		return 1
	}
	ctx := context.Background()
	l, closeAll, err := openLedger(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	n, err := l.ImportCatalogCSV(ctx, f)
	if cerr := closeAll(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "pos-agent: import %s: %v\n", fs.Arg(0), err)
		return 1
	}
	fmt.Fprintf(stdout, "imported %d products from %s\n", n, fs.Arg(0))
	return 0
}

func backup(g *globals, args []string, stdout, stderr io.Writer) int {
	fs, ok := subFlags(g, "backup", args, stderr, nil)
	if !ok || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: pos-agent backup FILE")
		return 2
	}
	cfg, log, ok := load(g, stderr)
	if !ok {
		return 1
	}
	// Opening would create an empty database: a backup of nothing is a
	// mistake worth stopping on.
	if _, err := os.Stat(cfg.Database); err != nil {
		fmt.Fprintf(stderr, "pos-agent: backup: database %s: %v\n", cfg.Database, err)
		return 1
	}
	ctx := context.Background()
	db, err := localdb.Open(ctx, cfg.Database, localdb.Options{Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	err = db.Backup(ctx, fs.Arg(0))
	if cerr := db.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(stderr, "pos-agent:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup of %s written to %s\n", cfg.Database, fs.Arg(0))
	return 0
}
