package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHeadlessDemoLosesNothingAcrossAnOutage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-headless", "-sales", "300", "-outage", "700ms", "-data", t.TempDir()}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	require.Equal(t, "sales=300 at_hq=300 duplicates=0 lost=0 conflicts=0", last)
	require.Contains(t, out.String(), "broker down after 100 sales")
}

func TestDemoRefusesBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-sales", "-1"}, &out, &errOut))
	require.Equal(t, 2, run(context.Background(), []string{"-nope"}, &out, &errOut))
}

// TestDemoMetricsAfterASale is the "curl /metrics on a running demo" check:
// after one sale the agent's and HQ's figures are there and non-zero.
func TestDemoMetricsAfterASale(t *testing.T) {
	ctx := context.Background()
	d := &demo{dir: t.TempDir(), out: io.Discard, log: slog.New(slog.DiscardHandler)}
	require.NoError(t, d.start(ctx, "127.0.0.1:0", "127.0.0.1:0"))
	t.Cleanup(d.stop)
	require.Eventually(t, func() bool { return d.agent.Status(ctx).Sync.Online }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, sellRandom(ctx, d.agent.Ledger(), ""))

	scrape := func(addr string) string {
		res, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return string(b)
	}
	// value returns the sample of the metric line starting with prefix.
	value := func(text, prefix string) float64 {
		for _, l := range strings.Split(text, "\n") {
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				v, err := strconv.ParseFloat(rest, 64)
				require.NoError(t, err, l)
				return v
			}
		}
		return -1
	}
	var agentText, hqText string
	require.Eventually(t, func() bool {
		agentText, hqText = scrape(d.agent.Addr()), scrape(d.hq.Addr())
		return value(agentText, "edgepos_agent_outbox_backlog_events") == 0 &&
			value(hqText, `edgepos_hq_events_total{outcome="stored"}`) >= 1
	}, 30*time.Second, 50*time.Millisecond, "agent:\n%s\nhq:\n%s", agentText, hqText)

	require.Equal(t, 1.0, value(agentText, "edgepos_agent_sales_total"))
	require.Greater(t, value(agentText, "edgepos_agent_sales_minor_units_total"), 0.0)
	require.Equal(t, 1.0, value(agentText, "edgepos_agent_sync_online"))
	require.Greater(t, value(agentText, "edgepos_agent_sync_batches_sent_total"), 0.0)
	require.Greater(t, value(agentText, "edgepos_agent_sync_acks_total"), 0.0)
	require.GreaterOrEqual(t, value(agentText, `edgepos_agent_print_queue_jobs{state="queued"}`), 1.0, "the receipt waits for a printer")
	require.Greater(t, value(hqText, `edgepos_hq_batches_total{outcome="acked"}`), 0.0)
	require.Greater(t, value(hqText, "edgepos_hq_hellos_total"), 0.0)
	require.Equal(t, 1.0, value(hqText, `edgepos_hq_terminal_online{store="S001",terminal="T1"}`))
	require.Greater(t, value(hqText, `edgepos_hq_terminal_acked_seq{store="S001",terminal="T1"}`), 0.0)
	require.Contains(t, hqText, "edgepos_hq_batch_seconds_count")
	require.Contains(t, hqText, "edgepos_hq_quarantined_total 0")
}
