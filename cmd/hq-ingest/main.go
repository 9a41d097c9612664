// Command hq-ingest is the edgepos HQ service: it consumes every store
// terminal's uploads from MQTT into SQLite or PostgreSQL, publishes the
// change feed, and serves the operator API and dashboard.
//
//	hq-ingest [-config /etc/edgepos/hq.yaml] run|check-config|version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/edgepos/edgepos/hq"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hq-ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (YAML); env EDGEPOS_HQ_* overrides")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hq-ingest [-config FILE] run|check-config|version")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Arg(0)
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "hq-ingest", version)
		return 0
	case "check-config", "run":
	default:
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "hq-ingest:", err)
		return 1
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts, err := cfg.options(log)
	if err != nil {
		fmt.Fprintln(stderr, "hq-ingest:", err)
		return 1
	}
	if cmd == "check-config" {
		fmt.Fprintf(stdout, "config ok: database %s, broker %s, client id %s, api %s (%d tokens)\n",
			redact(cfg.Database), cfg.Broker, cfg.ClientID, cfg.API.Listen, len(opts.APITokens))
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := hq.Run(ctx, opts); err != nil {
		log.Error("hq-ingest stopped", "err", err)
		return 1
	}
	return 0
}
