package agent

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/localdb"
)

// BenchmarkCompleteSale measures completing a 5-line cash sale through the
// ledger (one durable transaction: sale, lines, tender, stock, receipt
// number, print job, outbox event) and, in the same run on the same disk,
// the raw limit: committing one bare row per transaction with the same
// pragmas. It reports both rates, their ratio and the sale's p50/p99
// commit latency.
func BenchmarkCompleteSale(b *testing.B) { benchCompleteSale(b, false) }

// BenchmarkCompleteSaleWithKey is BenchmarkCompleteSale as the POS API
// completes a sale: with an Idempotency-Key (its unique index is one more
// b-tree the commit writes).
func BenchmarkCompleteSaleWithKey(b *testing.B) { benchCompleteSale(b, true) }

func benchCompleteSale(b *testing.B, withKey bool) {
	ctx := context.Background()
	dir := b.TempDir()

	// Raw limit: one bare row per transaction, same localdb.Open pragmas.
	n := max(b.N, 300)
	bareRate := bench.Rate(n, bareCommits(b, filepath.Join(dir, "raw.db"), n, nil))

	l := benchLedger(b, filepath.Join(dir, "pos.db"))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	var busy time.Duration
	for i := 0; i < b.N; i++ {
		s := benchCart(b, l)
		key := ""
		if withKey {
			key = "checkout-" + s.ID
		}
		t0 := time.Now()
		if _, err := l.CompleteSale(ctx, s.ID, key); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
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
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	d := bareCommits(b, filepath.Join(b.TempDir(), "raw.db"), b.N, &lat)
	b.StopTimer()
	b.ReportMetric(bench.Rate(b.N, d), "commits/s")
	b.ReportMetric(bench.Ms(bench.Percentile(lat, 99)), "p99-ms")
}

// bareCommits commits n one-row transactions to a new database at path and
// returns the time they took, recording each commit's latency in lat.
func bareCommits(b *testing.B, path string, n int, lat *[]time.Duration) time.Duration {
	b.Helper()
	ctx := context.Background()
	raw, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Write.Exec("CREATE TABLE bare(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := raw.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO bare(v) VALUES(?)", "x")
			return err
		}); err != nil {
			b.Fatal(err)
		}
		if lat != nil {
			*lat = append(*lat, time.Since(t0))
		}
	}
	return time.Since(start)
}

// BenchmarkCompleteSaleInterleaved is BenchmarkCompleteSale with the raw
// limit measured in the same moments: each iteration commits one bare row
// (its own database, same localdb.Open pragmas) and then one 5-line sale.
// On a shared machine the disk's fsync time swings within seconds, so a
// ratio of two rates taken one after the other swings with it; taken
// alternately, both see the same disk. (Alternating files makes the bare
// commit slower than it is alone, so this ratio reads higher than
// BenchmarkCompleteSale's; use it to compare changes, not as the goal.)
// It also reports the thread time each commit took (getrusage, user +
// system; on this VM the system part includes time inside fsync, so it is
// not pure CPU).
func BenchmarkCompleteSaleInterleaved(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	raw, err := localdb.Open(ctx, filepath.Join(dir, "raw.db"), localdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Write.Exec("CREATE TABLE bare(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		b.Fatal(err)
	}
	l := benchLedger(b, filepath.Join(dir, "pos.db"))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	saleLat := make([]time.Duration, 0, b.N)
	bareLat := make([]time.Duration, 0, b.N)
	var saleBusy, bareBusy, saleCPU, bareCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := benchCart(b, l)
		t0, c0 := time.Now(), threadCPU()
		if err := raw.WriteTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO bare(v) VALUES(?)", "x")
			return err
		}); err != nil {
			b.Fatal(err)
		}
		t1, c1 := time.Now(), threadCPU()
		if _, err := l.CompleteSale(ctx, s.ID, ""); err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), threadCPU()
		bareLat, saleLat = append(bareLat, t1.Sub(t0)), append(saleLat, t2.Sub(t1))
		bareBusy, saleBusy = bareBusy+t1.Sub(t0), saleBusy+t2.Sub(t1)
		bareCPU, saleCPU = bareCPU+c1-c0, saleCPU+c2-c1
	}
	b.StopTimer()
	saleRate, bareRate := bench.Rate(b.N, saleBusy), bench.Rate(b.N, bareBusy)
	b.ReportMetric(saleRate, "sales/s")
	b.ReportMetric(bareRate, "bare-commits/s")
	b.ReportMetric(saleRate/bareRate, "ratio")
	b.ReportMetric(bench.Ms(bench.Percentile(saleLat, 50)), "p50-ms")
	b.ReportMetric(bench.Ms(bench.Percentile(saleLat, 99)), "p99-ms")
	b.ReportMetric(bench.Ms(bench.Percentile(bareLat, 50)), "bare-p50-ms")
	b.ReportMetric(float64(saleCPU.Microseconds())/float64(b.N), "cpu-us/sale")
	b.ReportMetric(float64(bareCPU.Microseconds())/float64(b.N), "cpu-us/bare")
}

// benchLedger opens a ledger with the demo catalog on a new database.
func benchLedger(b *testing.B, path string) *Ledger {
	b.Helper()
	ctx := context.Background()
	db, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close(ctx) })
	l, err := NewLedger(db, LedgerConfig{Store: "S001", Terminal: "T1", TaxInclusive: true, BcryptCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if err := SeedDemoCatalog(ctx, l); err != nil {
		b.Fatal(err)
	}
	return l
}

// benchCart builds the benchmarks' paid 5-line cash cart (in memory).
func benchCart(b *testing.B, l *Ledger) *Sale {
	b.Helper()
	ctx := context.Background()
	s, err := l.OpenSale(ctx, DemoCashier)
	if err != nil {
		b.Fatal(err)
	}
	for _, sku := range []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER"} {
		if s, err = l.AddItem(ctx, s.ID, sku, 1000); err != nil {
			b.Fatal(err)
		}
	}
	if s, err = l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: s.Total}); err != nil {
		b.Fatal(err)
	}
	return s
}
