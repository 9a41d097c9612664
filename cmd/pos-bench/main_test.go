package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/internal/testenv"
)

// TestMain lets the test binary play the child roles: the chaos run and
// the footprint scenario re-execute os.Executable(), which in a test is
// this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case roleChaosAgent, roleChaosHQ, roleFootprint:
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// checkJSONFigures checks one JSON object per line with the fields the
// README promises, raw and ratio null exactly where a figure has no raw
// limit, and returns the scenarios seen.
func checkJSONFigures(t *testing.T, out string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		for _, k := range []string{"scenario", "metric", "unit", "ours", "raw", "ratio"} {
			require.Contains(t, m, k, "line %q", sc.Text())
		}
		require.IsType(t, "", m["scenario"])
		require.IsType(t, "", m["metric"])
		require.IsType(t, "", m["unit"])
		require.IsType(t, float64(0), m["ours"])
		if m["raw"] == nil {
			require.Nil(t, m["ratio"], "no raw limit, no ratio: %q", sc.Text())
		} else {
			require.IsType(t, float64(0), m["raw"])
			require.IsType(t, float64(0), m["ratio"])
			require.NotEmpty(t, m["raw_name"], "a raw limit says what it is: %q", sc.Text())
		}
		seen[m["scenario"].(string)]++
	}
	return seen
}

func TestBenchJSONEveryScenario(t *testing.T) {
	code, out, errOut := runCmd(t, "-tiny", "-json", "-build=false", "-dir", t.TempDir())
	require.Equal(t, 0, code, "stderr: %s", errOut)
	seen := checkJSONFigures(t, out)
	for _, s := range scenarioNames {
		require.Positive(t, seen[s], "scenario %s has figures", s)
	}
	// The figures with a raw limit beside them.
	require.Contains(t, out, `"scenario":"sale","metric":"5-line sale commits","unit":"sales/s"`)
	require.Regexp(t, `"scenario":"ingest","metric":"5 stores × 20 events → HQ \(sqlite\)[^"]*","unit":"events/s","ours":[0-9.e+]+,"raw":[0-9.e+]+,"ratio":`, out)
	require.Regexp(t, `"scenario":"catchup","metric":"1000 events outbox→HQ acked","unit":"events/s","ours":[0-9.e+]+,"raw":[0-9.e+]+`, out)
	require.Regexp(t, `"scenario":"scan","metric":"[^"]*p99","unit":"ms","ours":[0-9.e+]+,"raw":null,"ratio":null`, out)
	require.Regexp(t, `"scenario":"footprint","metric":"agent RSS idle[^"]*","unit":"MB","ours":[0-9.e+]+,"raw":null,"ratio":null`, out)
}

func TestBenchIngestOnPostgres(t *testing.T) {
	testenv.PGSchema(t) // skips (or fails under CI) without PostgreSQL
	code, out, errOut := runCmd(t, "-tiny", "-json", "-pg", testenv.PGURL(), "-dir", t.TempDir(), "ingest")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	require.Equal(t, map[string]int{"ingest": 8}, checkJSONFigures(t, out), "sqlite and postgres figures")
	require.Contains(t, out, "(postgres) committed+acked")
}

func TestBenchMarkdownTable(t *testing.T) {
	code, out, errOut := runCmd(t, "-tiny", "-dir", t.TempDir(), "sale", "scan")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, "| scenario | metric | ours | raw limit (same run) | ratio | goal |", lines[0])
	require.Equal(t, "| --- | --- | ---: | --- | ---: | --- |", lines[1])
	require.Len(t, lines, 2+6+2, "six sale figures, two scan figures")
	require.Regexp(t, `^\| sale \| 5-line sale commits \| [0-9.]+ sales/s \| [0-9.]+ sales/s \(bare-row commit, same pragmas\) \| [0-9.]+ \| `, lines[2])
	for _, l := range lines[2:] {
		require.Equal(t, 7, strings.Count(l, "|"), "six columns: %q", l)
	}
	require.Contains(t, errOut, "load before:")
}

func TestBenchBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, `unknown scenario "nosuch"`},
		{[]string{"-quick", "sale", "chaoss"}, `unknown scenario "chaoss"`},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"chaos", "-stores", "0"}, "-stores must be 1..50"},
		{[]string{"chaos", "-stores", "51"}, "-stores must be 1..50"},
		{[]string{"chaos", "-duration", "-1s"}, "must be positive"},
		{[]string{"chaos", "-rate", "0"}, "must be positive"},
		{[]string{"chaos", "-mqtt", "http://127.0.0.1:1883"}, "-mqtt must be tcp://host:port"},
		{[]string{"chaos", "extra"}, "unexpected arguments"},
		{[]string{roleChaosAgent, "-rate", "-1"}, "-rate must be positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.args...)
			require.Equal(t, 2, code, "stdout: %s", out)
			require.Contains(t, errOut, tc.want)
		})
	}
}

// TestChaosShort is the chaos run at CI size on the embedded broker: every
// fault kind happens, and the last line reconciles every sale.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos run takes about 20 s")
	}
	code, out, errOut := runCmd(t, "chaos", "-stores", "2", "-duration", "14s", "-rate", "8")
	t.Log(out)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^sales=(\d+) at_hq=(\d+) duplicates=0 lost=0 quarantined=0$`).FindStringSubmatch(last)
	require.NotNil(t, m, "last line: %q", last)
	require.Equal(t, m[1], m[2])
	require.NotEqual(t, "0", m[1])
	for _, kind := range faultKinds {
		require.Regexp(t, `(?m)^fault t=[0-9.]+s `+kind+`[ :]`, out)
	}
	require.Regexp(t, `(?m)^faults: kill-agent=[1-9]\d* kill-hq=[1-9]\d* restart-broker=[1-9]\d* pause-hq=[1-9]\d*$`, out)
	require.Regexp(t, `(?m)^events=(\d+) at_hq=(\d+) duplicates=0 lost=0 dead_letters=0 \(`, out)
	require.NotContains(t, out, "problem:")
}

func TestProxyCutDropsAndRefusesThenRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p, err := startProxy(ln.Addr().String())
	require.NoError(t, err)
	defer p.Close()
	addr := strings.TrimPrefix(p.URL(), "tcp://")
	echo := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		_, err := io.ReadFull(c, b)
		return err
	}
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, echo(c))

	p.cut(time.Second)
	require.Error(t, echo(c), "a cut drops the open connection")
	c2, err := net.Dial("tcp", addr)
	require.NoError(t, err, "the listener stays: a connect is accepted, then closed")
	require.Error(t, echo(c2), "refused while cut")
	c2.Close()
	require.Eventually(t, func() bool {
		c3, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c3.Close()
		return echo(c3) == nil
	}, 5*time.Second, 50*time.Millisecond, "connections work again after the cut")
}

func TestMissedGoalsJudgesOnlyFiguresWithAGoal(t *testing.T) {
	sale := bench.Figure{Scenario: "sale", Metric: "5-line sale commits", Ours: 2000, Goal: "≥ 0.7 × bare row"}.WithRaw("bare", 5000)
	floor := bench.Figure{Scenario: "sale", Metric: "floor: the ledger's writes, no code (ceiling)", Ours: 2500}.WithRaw("bare", 5000)
	require.Equal(t, []string{"sale: 0.40 of bare-row commits (goal ≥ 0.7)"}, missedGoals([]bench.Figure{sale, floor}))
	fast := bench.Figure{Scenario: "sale", Metric: "5-line sale commits", Ours: 4000, Goal: "≥ 0.7 × bare row"}.WithRaw("bare", 5000)
	require.Empty(t, missedGoals([]bench.Figure{fast, floor}))
}
