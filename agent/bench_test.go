package agent_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/internal/bench/agentbench"
)

// BenchmarkCompleteSale measures completing a 5-line cash sale through the
// ledger (one durable transaction: sale, lines, tender, stock, receipt
// number, print job, outbox event) and, in the same run on the same disk,
// the raw limit: committing one bare row per transaction with the same
// pragmas. It reports both rates, their ratio and the sale's p50/p99
// commit latency. cmd/pos-bench runs the same code (internal/bench/agentbench).
func BenchmarkCompleteSale(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()

	// Raw limit: one bare row per transaction, same localdb.Open pragmas.
	n := max(b.N, 300)
	bareTime, _, err := bench.BareCommits(ctx, filepath.Join(dir, "raw.db"), n)
	if err != nil {
		b.Fatal(err)
	}
	bareRate := bench.Rate(n, bareTime)

	db, l, err := agentbench.OpenSaleLedger(ctx, filepath.Join(dir, "pos.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close(ctx)
	defer l.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		d, err := agentbench.SellFive(ctx, l)
		if err != nil {
			b.Fatal(err)
		}
		busy += d
		lat = append(lat, d)
	}
	b.StopTimer()
	// Commits are sequential, so N over the time spent committing is the
	// commit rate; building the carts (in memory) is reported apart.
	saleRate := bench.Rate(b.N, busy)
	b.ReportMetric(saleRate, "sales/s")
	b.ReportMetric(bench.Rate(b.N, b.Elapsed()), "sales/s-with-cart")
	b.ReportMetric(bareRate, "bare-commits/s")
	b.ReportMetric(saleRate/bareRate, "ratio")
	b.ReportMetric(bench.Ms(bench.Percentile(lat, 50)), "p50-ms")
	b.ReportMetric(bench.Ms(bench.Percentile(lat, 99)), "p99-ms")
}

// BenchmarkBareRowCommit is the raw limit beside BenchmarkCompleteSale:
// one bare row per transaction through the same localdb.Open pragmas
// (WAL, synchronous=FULL, immediate write transactions).
func BenchmarkBareRowCommit(b *testing.B) {
	b.ResetTimer()
	d, lat, err := bench.BareCommits(context.Background(), filepath.Join(b.TempDir(), "raw.db"), b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(bench.Rate(b.N, d), "commits/s")
	b.ReportMetric(bench.Ms(bench.Percentile(lat, 99)), "p99-ms")
}
