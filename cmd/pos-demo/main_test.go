package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/sync/wire"
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
	require.NoError(t, d.start(ctx, demoConfig{Listen: "127.0.0.1:0", HQListen: "127.0.0.1:0"}))
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
			value(hqText, `edgepos_hq_events_total{outcome="stored"}`) >= 1 &&
			value(agentText, `edgepos_agent_print_queue_jobs{state="printed"}`) == 1 &&
			value(agentText, `edgepos_agent_device_up{device="shelf0",kind="shelf",state="idle"}`) == 1
	}, 30*time.Second, 50*time.Millisecond, "agent:\n%s\nhq:\n%s", agentText, hqText)

	require.Equal(t, 1.0, value(agentText, "edgepos_agent_sales_total"))
	require.Greater(t, value(agentText, "edgepos_agent_sales_minor_units_total"), 0.0)
	require.Equal(t, 1.0, value(agentText, "edgepos_agent_sync_online"))
	require.Greater(t, value(agentText, "edgepos_agent_sync_batches_sent_total"), 0.0)
	require.Greater(t, value(agentText, "edgepos_agent_sync_acks_total"), 0.0)
	require.Equal(t, 0.0, value(agentText, `edgepos_agent_print_queue_jobs{state="queued"}`), "the virtual printer printed the receipt")
	require.Equal(t, 1, d.dev.printed())
	for _, dev := range []string{`device="printer0",kind="printer",state="idle"`, `device="scanner0",kind="scanner",state="idle"`, `device="shelf0",kind="shelf",state="idle"`} {
		require.Equal(t, 1.0, value(agentText, "edgepos_agent_device_up{"+dev+"}"), dev)
	}
	require.Contains(t, agentText, `edgepos_agent_shelf_messages_total{shelf="shelf0"}`)
	require.Greater(t, value(hqText, `edgepos_hq_batches_total{outcome="acked"}`), 0.0)
	require.Greater(t, value(hqText, "edgepos_hq_hellos_total"), 0.0)
	require.Equal(t, 1.0, value(hqText, `edgepos_hq_terminal_online{store="S001",terminal="T1"}`))
	require.Greater(t, value(hqText, `edgepos_hq_terminal_acked_seq{store="S001",terminal="T1"}`), 0.0)
	require.Contains(t, hqText, "edgepos_hq_batch_seconds_count")
	require.Contains(t, hqText, "edgepos_hq_quarantined_total 0")
}

// TestDemoShelfFollowsTheTill: the demo's shelf sensor (MQTT on the
// embedded broker) loses what the till sells, which is no shrink; bottles
// taken through <data>/shelf without a sale are a shrink alert in the
// status bar and at HQ.
func TestDemoShelfFollowsTheTill(t *testing.T) {
	ctx := context.Background()
	d := startDemo(t, devOptions{Follow: true, ShrinkWindow: time.Second, SensorInterval: 50 * time.Millisecond})
	events, unsub := d.agent.Hub().Subscribe()
	defer unsub()
	waitCount := func(n int64) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case ev := <-events:
				var e struct {
					Kind  string
					Count int64
				}
				if ev.Type == "shelf" && json.Unmarshal(ev.Data, &e) == nil && e.Kind == "count" && e.Count == n {
					return
				}
			case <-deadline:
				t.Fatalf("the shelf never counted %d", n)
			}
		}
	}
	waitCount(shelfFull)

	l := d.agent.Ledger()
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(t, err)
	s, err = l.AddItem(ctx, s.ID, shelfSKU, 2000)
	require.NoError(t, err)
	s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: s.Total})
	require.NoError(t, err)
	_, err = l.CompleteSale(ctx, s.ID, s.ID)
	require.NoError(t, err)
	waitCount(shelfFull - 2) // the customer took the two bottles paid for

	f, err := os.OpenFile(filepath.Join(d.dir, "shelf"), os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("take 3\n")
	require.NoError(t, errors.Join(err, f.Close()))
	waitCount(shelfFull - 5)

	var alerts []agent.Alert
	require.Eventually(t, func() bool {
		alerts = d.agent.Status(ctx).Alerts
		return len(alerts) > 0
	}, wait, 20*time.Millisecond)
	require.Len(t, alerts, 1, "one shrink: the sold bottles are none")
	require.Equal(t, agent.AlertShrink, alerts[0].Kind)
	require.Equal(t, shelfSKU, alerts[0].SKU)
	require.EqualValues(t, 3, alerts[0].Count)
	require.Eventually(t, func() bool {
		n := 0
		err := d.hqDB.Events(ctx, store, wire.EventShelfAlert, func(_ string, e wire.Event) error {
			if p, err := wire.Payload[wire.ShelfAlert](&e); err == nil && p.Kind == agent.AlertShrink && p.Count == 3 {
				n++
			}
			return nil
		})
		return err == nil && n == 1
	}, wait, 20*time.Millisecond, "HQ holds the shrink alert")
}
