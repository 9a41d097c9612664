// Command pos-bench measures edgepos beside the raw limits of the machine it
// runs on, and runs the chaos test.
//
//	pos-bench [-quick] [-json] [-pg URL] [scenario ...]
//	pos-bench chaos [-stores 5] [-duration 60s] [-mqtt tcp://host:1883] [-pg URL]
//
// Scenarios (default all): sale, catchup, ingest, scan, footprint. Each
// figure is printed beside the raw limit measured in the same run and their
// ratio, as one Markdown table, or with -json as one JSON object per line
// per figure: {"scenario", "metric", "unit", "ours", "raw", "ratio"} with
// raw and ratio null where a figure has no raw limit.
//
// chaos runs store agents and HQ as child processes of this binary
// (pos-bench chaos-agent, pos-bench chaos-hq: the real agent.Open and
// hq.Open code), sells continuously while a fault injector kills and
// restarts them, restarts the broker and pauses HQ past the broker's
// queue, then waits for catch-up, reconciles every store's ledger with HQ
// and prints, last,
//
//	sales=N at_hq=N duplicates=0 lost=0 quarantined=0
//
// exiting 0 only when nothing was lost or duplicated.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches on the first argument: a child role, chaos, or the
// benchmark scenarios.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "chaos":
			return runChaos(ctx, args[1:], stdout, stderr)
		case roleChaosAgent:
			return chaosAgentMain(ctx, args[1:], stdin, stdout, stderr)
		case roleChaosHQ:
			return chaosHQMain(ctx, args[1:], stdout, stderr)
		case roleFootprint:
			return footprintMain(ctx, args[1:], stdin, stdout, stderr)
		case "help", "-h", "-help", "--help":
			fmt.Fprintln(stdout, "usage: pos-bench [-quick] [-json] [-pg URL] [sale|catchup|ingest|scan|footprint ...]")
			fmt.Fprintln(stdout, "       pos-bench chaos [-stores N] [-duration D] [-mqtt URL] [-pg URL]")
			return 0
		}
	}
	return runBench(ctx, args, stdout, stderr)
}
