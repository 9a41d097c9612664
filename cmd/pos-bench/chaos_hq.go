package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
	"github.com/edgepos/edgepos/hq/sqlitestore"
)

// roleChaosHQ is the child running HQ for the chaos run.
const roleChaosHQ = "chaos-hq"

// hqArgs are what the parent passes to a chaos HQ child.
type hqArgs struct {
	dir, broker, prefix, clientID, pg, schema, token string
}

func (a hqArgs) list() []string {
	return []string{roleChaosHQ, "-dir", a.dir, "-broker", a.broker, "-prefix", a.prefix, "-client-id", a.clientID,
		"-pg", a.pg, "-schema", a.schema, "-token", a.token}
}

// openHQStore opens the chaos run's HQ database: PostgreSQL in schema when
// pg is set, else SQLite in dir.
func openHQStore(ctx context.Context, dir, pg, schema string, log *slog.Logger) (hq.Store, error) {
	if pg != "" {
		return pgstore.Open(ctx, pg, pgstore.Options{Schema: schema, Logger: log})
	}
	return sqlitestore.Open(ctx, filepath.Join(dir, "hq.db"), sqlitestore.Options{Logger: log})
}

// chaosHQMain runs HQ as hq-ingest does (hq.New → Open with its store
// opened by the service), prints "ready api=ADDR" once it is subscribed,
// and closes on SIGTERM.
func chaosHQMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(roleChaosHQ, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a hqArgs
	fs.StringVar(&a.dir, "dir", "", "data directory (SQLite database, coupon keys)")
	fs.StringVar(&a.broker, "broker", "", "MQTT broker URL")
	fs.StringVar(&a.prefix, "prefix", "", "topic prefix")
	fs.StringVar(&a.clientID, "client-id", "hq-ingest", "stable MQTT client id")
	fs.StringVar(&a.pg, "pg", "", "PostgreSQL URL (default SQLite)")
	fs.StringVar(&a.schema, "schema", "", "PostgreSQL schema")
	fs.StringVar(&a.token, "token", "", "operator API token")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("svc", "hq")
	svc := hq.New(hq.Options{
		OpenStore: func(ctx context.Context) (hq.Store, error) { return openHQStore(ctx, a.dir, a.pg, a.schema, log) },
		DataDir:   filepath.Join(a.dir, "hq"),
		Broker:    a.broker, Username: "hq", ClientID: a.clientID, TopicPrefix: a.prefix,
		APIListen: "127.0.0.1:0", APITokens: []string{a.token},
		Version: "chaos", Logger: log,
	})
	if err := svc.Open(ctx); err != nil {
		fmt.Fprintln(stderr, "chaos hq:", err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := svc.Close(cctx); err != nil {
			fmt.Fprintln(stderr, "chaos hq: close:", err)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for !svc.Ready() {
		if time.Now().After(deadline) {
			fmt.Fprintln(stderr, "chaos hq: not subscribed after a minute")
			return 1
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(stdout, "ready api=%s\n", svc.Addr())
	<-ctx.Done()
	return 0
}
