package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFigureRatioAndOutputs(t *testing.T) {
	figs := []Figure{
		Figure{Scenario: "sale", Metric: "throughput", Unit: "sales/s", Ours: 2100}.WithRaw("bare row commit", 3000),
		{Scenario: "sale", Metric: "p99", Unit: "ms", Ours: 1.25, LowerIsBetter: true},
	}
	require.InDelta(t, 0.7, *figs[0].Ratio, 1e-9)
	require.Nil(t, figs[1].Raw)

	var tbl bytes.Buffer
	require.NoError(t, WriteTable(&tbl, figs))
	lines := strings.Split(strings.TrimSpace(tbl.String()), "\n")
	require.Len(t, lines, 4)
	require.Contains(t, lines[2], "| 0.70 |")

	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, figs))
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		rows = append(rows, m)
	}
	require.Len(t, rows, 2)
	require.Equal(t, "sale", rows[0]["scenario"])
	require.Nil(t, rows[1]["raw"], "raw is null where a figure has no raw limit")
	require.Nil(t, rows[1]["ratio"])
	for _, k := range []string{"scenario", "metric", "unit", "ours", "raw", "ratio"} {
		require.Contains(t, rows[1], k)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, Percentile(ds, 50))
	require.Equal(t, 99*time.Millisecond, Percentile(ds, 99))
	require.Equal(t, time.Duration(0), Percentile(nil, 99))
}
