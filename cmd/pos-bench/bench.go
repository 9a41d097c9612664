package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/internal/bench/agentbench"
)

// scenarioNames are the benchmark scenarios in the order they run.
var scenarioNames = []string{"sale", "catchup", "ingest", "scan", "footprint"}

// sizes are how much each scenario does.
type sizes struct {
	name           string
	sales          int
	catchup        int
	ingestStores   int
	ingestEvents   int
	liveFor        time.Duration
	liveRate       float64 // sales/s per store in the live ingest phase
	scans          int
	footSales      int
	footIdle       time.Duration // idle time before the idle RSS reading
	catchupBatches int
}

var (
	sizeFull = sizes{name: "full", sales: 3000, catchup: 100_000, ingestStores: 200, ingestEvents: 300, liveFor: 10 * time.Second, liveRate: 0.5,
		scans: 300, footSales: 10_000, footIdle: 3 * time.Second, catchupBatches: 500}
	// sizeQuick keeps every scenario (and the 200 stores of ingest) but
	// does less of each: the whole run fits in a minute.
	sizeQuick = sizes{name: "quick", sales: 500, catchup: 10_000, ingestStores: 200, ingestEvents: 20, liveFor: 3 * time.Second, liveRate: 1,
		scans: 50, footSales: 1000, footIdle: time.Second, catchupBatches: 500}
	// sizeTiny is for the command's own test: shape, not speed.
	sizeTiny = sizes{name: "tiny", sales: 30, catchup: 1000, ingestStores: 5, ingestEvents: 20, liveFor: time.Second, liveRate: 2,
		scans: 5, footSales: 20, footIdle: 100 * time.Millisecond, catchupBatches: 500}
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pos-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "every scenario at reduced size (under a minute in all)")
	tiny := fs.Bool("tiny", false, "smallest sizes, for tests of the output's shape")
	asJSON := fs.Bool("json", false, "one JSON object per line per figure instead of a Markdown table")
	pgURL := fs.String("pg", "", "also run ingest with HQ on PostgreSQL at this URL (a schema of its own per run)")
	dataDir := fs.String("dir", "", "work directory (default: a temporary one, removed at exit)")
	build := fs.Bool("build", true, "footprint: build pos-agent and hq-ingest to report their sizes (needs the go tool and the source tree)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pos-bench [flags] [%s ...]\n", strings.Join(scenarioNames, "|"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	picked := fs.Args()
	for _, p := range picked {
		if !slices.Contains(scenarioNames, p) {
			fmt.Fprintf(stderr, "pos-bench: unknown scenario %q (have %s, and chaos)\n", p, strings.Join(scenarioNames, ", "))
			return 2
		}
	}
	if len(picked) == 0 {
		picked = scenarioNames
	}
	sz := sizeFull
	switch {
	case *tiny:
		sz = sizeTiny
	case *quick:
		sz = sizeQuick
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "edgepos-bench-")
		if err != nil {
			fmt.Fprintln(stderr, "pos-bench:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var pg *pgAdmin
	if *pgURL != "" && slices.Contains(picked, "ingest") {
		var err error
		if pg, err = newPGAdmin(ctx, *pgURL); err != nil {
			fmt.Fprintln(stderr, "pos-bench:", err)
			return 1
		}
		defer func() {
			if err := pg.close(ctx); err != nil {
				fmt.Fprintln(stderr, "pos-bench:", err)
			}
		}()
	}

	fmt.Fprintf(stderr, "pos-bench: %s run of %s; load before: %s\n", sz.name, strings.Join(picked, ", "), loadAvg())
	all := time.Now()
	var figs []bench.Figure
	status := 0
	for _, name := range picked {
		sdir := filepath.Join(dir, name)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			fmt.Fprintln(stderr, "pos-bench:", err)
			return 1
		}
		t0 := time.Now()
		f, err := runScenario(ctx, name, sdir, sz, pg, *build, stderr)
		figs = append(figs, f...)
		if err != nil {
			fmt.Fprintf(stderr, "pos-bench: %s: %v\n", name, err)
			status = 1
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(stderr, "pos-bench: %s done in %s\n", name, time.Since(t0).Round(time.Millisecond))
	}
	fmt.Fprintf(stderr, "pos-bench: all done in %s; load after: %s\n", time.Since(all).Round(time.Millisecond), loadAvg())
	var err error
	if *asJSON {
		err = bench.WriteJSON(stdout, figs)
	} else {
		err = bench.WriteTable(stdout, figs)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pos-bench:", err)
		return 1
	}
	note := ""
	if sz.name != sizeFull.name {
		note = fmt.Sprintf(" (%s sizes: judge the goals on a full run)", sz.name)
	}
	for _, m := range missedGoals(figs) {
		fmt.Fprintf(stderr, "pos-bench: goal missed: %s%s\n", m, note)
	}
	return status
}

func runScenario(ctx context.Context, name, dir string, sz sizes, pg *pgAdmin, build bool, stderr io.Writer) ([]bench.Figure, error) {
	switch name {
	case "sale":
		r, err := agentbench.Sale(ctx, dir, sz.sales)
		if err != nil {
			return nil, err
		}
		return r.Figures(), nil
	case "catchup":
		r, err := bench.Catchup(ctx, dir, sz.catchup, sz.catchupBatches)
		if err != nil {
			return nil, err
		}
		return r.Figures(), nil
	case "ingest":
		o := bench.IngestOptions{Dir: filepath.Join(dir, "sqlite"), Stores: sz.ingestStores, Events: sz.ingestEvents,
			LiveFor: sz.liveFor, LiveRate: sz.liveRate, Backend: "sqlite",
			Progress: func(format string, args ...any) { fmt.Fprintf(stderr, "pos-bench: "+format+"\n", args...) },
			OpenStore: func(ctx context.Context, name string) (hq.Store, error) {
				return sqlitestore.Open(ctx, filepath.Join(dir, "sqlite", "hq-"+name+".db"), sqlitestore.Options{})
			}}
		r, err := bench.Ingest(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		figs := r.Figures()
		if pg == nil {
			return figs, nil
		}
		o.Dir, o.Backend = filepath.Join(dir, "postgres"), "postgres"
		o.OpenStore = func(ctx context.Context, name string) (hq.Store, error) { return pg.open(ctx, "bench", name) }
		r, err = bench.Ingest(ctx, o)
		if err != nil {
			return figs, fmt.Errorf("postgres: %w", err)
		}
		return append(figs, r.Figures()...), nil
	case "scan":
		r, err := agentbench.ScanToScreen(ctx, dir, sz.scans)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(stderr, "pos-bench: scan wiring:", r.Wiring)
		return r.Figures(), nil
	case "footprint":
		return footprint(ctx, dir, sz, build, stderr)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// missedGoals checks the project's goals against the figures of this run.
func missedGoals(figs []bench.Figure) []string {
	var out []string
	for _, f := range figs {
		switch {
		case f.Scenario == "sale" && f.Goal != "" && f.Raw != nil && *f.Ratio < 0.7:
			out = append(out, fmt.Sprintf("sale: %.2f of bare-row commits (goal ≥ 0.7)", *f.Ratio))
		case f.Scenario == "sale" && f.Metric == "commit latency p99" && f.Ours > 10:
			out = append(out, fmt.Sprintf("sale: p99 %.2f ms (goal ≤ 10 ms)", f.Ours))
		case f.Scenario == "catchup" && f.Raw != nil && *f.Ratio < 0.5:
			out = append(out, fmt.Sprintf("catchup: %.2f of the lower raw limit, %s (goal ≥ 0.5)", *f.Ratio, f.RawName))
		case f.Scenario == "ingest" && f.Raw != nil && *f.Ratio < 0.5:
			out = append(out, fmt.Sprintf("ingest: %s: %.2f of the raw insert (goal ≥ 0.5)", f.Metric, *f.Ratio))
		case f.Scenario == "scan" && strings.HasSuffix(f.Metric, "p99") && f.Ours > 50:
			out = append(out, fmt.Sprintf("scan: p99 %.1f ms (goal ≤ 50 ms)", f.Ours))
		case f.Scenario == "footprint" && strings.HasPrefix(f.Metric, "agent RSS idle") && f.Ours > 40:
			out = append(out, fmt.Sprintf("footprint: agent idle RSS %.1f MB (goal ≤ 40 MB)", f.Ours))
		}
	}
	return out
}

// loadAvg is the machine's load (/proc/loadavg), for the report.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
