package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/internal/bench/agentbench"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/sync/link"
)

// roleFootprint is the child that runs a real store agent whose memory the
// parent reads from /proc: RSS of a process of its own, not of the
// benchmark that holds the broker and HQ.
const roleFootprint = "footprint-agent"

// footprint measures the agent's resident memory idle and after
// sz.footSales sales, and the sizes of the stripped binaries.
func footprint(ctx context.Context, dir string, sz sizes, build bool, stderr io.Writer) ([]bench.Figure, error) {
	broker, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	if err != nil {
		return nil, err
	}
	defer broker.Close()
	svc := hq.New(hq.Options{
		OpenStore: func(ctx context.Context) (hq.Store, error) {
			return sqlitestore.Open(ctx, filepath.Join(dir, "hq.db"), sqlitestore.Options{})
		},
		DataDir: filepath.Join(dir, "hq"), Broker: broker.URL(), Username: "hq",
	})
	if err := svc.Open(ctx); err != nil {
		return nil, err
	}
	defer svc.Close(context.WithoutCancel(ctx))

	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, roleFootprint, "-db", filepath.Join(dir, "pos.db"), "-broker", broker.URL())
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(outPipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		in.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	expect := func(prefix string, limit time.Duration) error {
		timer := time.NewTimer(limit)
		defer timer.Stop()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return fmt.Errorf("footprint agent exited before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return nil
				}
			case <-timer.C:
				return fmt.Errorf("footprint agent: no %q within %s", prefix, limit)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := expect("ready", time.Minute); err != nil {
		return nil, err
	}
	// Idle: open, synced, nothing to do. Give it a moment to settle.
	select {
	case <-time.After(sz.footIdle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	pid := cmd.Process.Pid
	idle, err := procKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(in, "sell %d\n", sz.footSales); err != nil {
		return nil, err
	}
	if err := expect("sold", 10*time.Minute); err != nil {
		return nil, err
	}
	after, err := procKB(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	peak, err := procKB(pid, "VmHWM")
	if err != nil {
		return nil, err
	}
	figs := []bench.Figure{
		{Scenario: "footprint", Metric: "agent RSS idle (sync link + HTTP API)", Unit: "MB", Ours: mb(idle), Goal: "≤ 40 MB", LowerIsBetter: true},
		{Scenario: "footprint", Metric: fmt.Sprintf("agent RSS after %d sales", sz.footSales), Unit: "MB", Ours: mb(after), LowerIsBetter: true},
		{Scenario: "footprint", Metric: "agent peak RSS (VmHWM)", Unit: "MB", Ours: mb(peak), LowerIsBetter: true},
	}
	if !build {
		return figs, nil
	}
	sizes, err := binarySizes(ctx, filepath.Join(dir, "bin"), "pos-agent", "hq-ingest")
	if err != nil {
		return figs, fmt.Errorf("binary sizes: %w", err)
	}
	for _, s := range sizes {
		figs = append(figs, bench.Figure{Scenario: "footprint", Metric: s.name + " binary (CGO_ENABLED=0, -trimpath, -s -w)", Unit: "MB",
			Ours: float64(s.bytes) / 1e6, LowerIsBetter: true})
	}
	return figs, nil
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// procKB reads a "Name:   123 kB" field of /proc/<pid>/status.
func procKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

type binSize struct {
	name  string
	bytes int64
}

// binarySizes builds ./cmd/<name> of the source tree around the working
// directory as a release would (static, stripped, no local paths).
func binarySizes(ctx context.Context, out string, names ...string) ([]binSize, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	var sizes []binSize
	for _, n := range names {
		st, err := os.Stat(filepath.Join(out, n))
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, binSize{n, st.Size()})
	}
	return sizes, nil
}

// moduleRoot finds the edgepos source tree from the working directory up.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/edgepos/edgepos\n")) {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("not inside the edgepos source tree (run from it, or pass -build=false)")
		}
		d = up
	}
}

// footprintMain is the child: a store agent as pos-agent runs it (database,
// ledger, sync link to the parent's broker and HQ, HTTP API), which prints
// "ready" once open and "sold N" after each "sell N" read from stdin, and
// closes cleanly at the end of stdin.
func footprintMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(roleFootprint, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "agent database")
	broker := fs.String("broker", "", "MQTT broker URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var api *agent.API
	a := agent.New(agent.Options{
		Database:   *db,
		Ledger:     agent.LedgerConfig{Store: "S001", Terminal: "T1", Currency: "CNY", MinorDigits: 2, TaxInclusive: true},
		Link:       link.Options{Broker: *broker},
		HTTPListen: "127.0.0.1:0",
		Logger:     log,
		APIHandler: func(a *agent.Agent) (http.Handler, error) {
			var err error
			if api, err = agent.NewAPI(agent.APIConfig{Ledger: a.Ledger(), Hub: a.Hub(), Status: a, Logger: log}); err != nil {
				return nil, err
			}
			return api.Handler(), nil
		},
	})
	if err := a.Open(ctx); err != nil {
		fmt.Fprintln(stderr, "footprint agent:", err)
		return 1
	}
	defer func() {
		if api != nil {
			api.Close()
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		a.Close(cctx)
	}()
	l := a.Ledger()
	if err := agent.SeedDemoCatalog(ctx, l); err != nil {
		fmt.Fprintln(stderr, "footprint agent:", err)
		return 1
	}
	if err := agent.SeedDemoUsers(ctx, l); err != nil {
		fmt.Fprintln(stderr, "footprint agent:", err)
		return 1
	}
	fmt.Fprintln(stdout, "ready")
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "sell %d", &n); err != nil {
			fmt.Fprintf(stderr, "footprint agent: unknown command %q\n", sc.Text())
			return 2
		}
		for i := 0; i < n; i++ {
			if _, err := agentbench.SellFive(ctx, l); err != nil {
				fmt.Fprintf(stderr, "footprint agent: sale %d: %v\n", i+1, err)
				return 1
			}
		}
		fmt.Fprintf(stdout, "sold %d\n", n)
	}
	return 0
}
