package hq_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	st "github.com/edgepos/edgepos/hq/storetest"
)

func TestMetricsShowIngestAndLag(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-metrics")
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	term.ack()
	b := term.batch(st.Sale(t, 1, "2026-11-23", 1000, 100), st.Sale(t, 2, "2026-11-23", 500, 50))
	term.send(b)
	term.ack()
	term.send(term.batch(b.Events[0])) // redelivered: a duplicate
	term.ack()

	resp, err := http.Get("http://" + svc.Addr() + "/metrics") // no operator token needed
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)
	for _, want := range []string{
		`edgepos_hq_events_total{outcome="stored"} 2`,
		`edgepos_hq_events_total{outcome="duplicate"} 1`,
		`edgepos_hq_batches_total{outcome="acked"} 2`,
		`edgepos_hq_hellos_total 1`,
		`edgepos_hq_terminal_acked_seq{store="S1",terminal="T1"} 2`,
		`edgepos_hq_batch_seconds_count 2`,
	} {
		require.True(t, strings.Contains(text, want), "metrics lack %q", want)
	}
}
