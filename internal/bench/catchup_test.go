package bench

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"testing"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
	"github.com/edgepos/edgepos/internal/testenv"
)

// Profiling one phase alone: go test's -cpuprofile covers the whole run,
// outbox filling and both raw limits included, which hides where catch-up
// itself spends its time.
var (
	catchupPG      = flag.Bool("catchup.pg", false, "BenchmarkCatchup: HQ on PostgreSQL (EDGEPOS_PG_URL) instead of SQLite")
	catchupPhase   = flag.String("catchup.phase", "catchup", "BenchmarkCatchup: phase the -catchup.*profile flags cover (catchup, raw-insert, raw-publish)")
	catchupCPUProf = flag.String("catchup.cpuprofile", "", "BenchmarkCatchup: write a CPU profile of -catchup.phase to this file")
	catchupMemProf = flag.String("catchup.memprofile", "", "BenchmarkCatchup: write an allocation profile of -catchup.phase to this file")
	catchupBatch   = flag.Int("catchup.batch", 500, "BenchmarkCatchup: events per batch, for the link and both raw limits (500 is the link's default)")
	catchupWindow  = flag.Int("catchup.window", 8, "BenchmarkCatchup: the link's window of batches in flight")
	catchupTrace   = flag.String("catchup.trace", "", "BenchmarkCatchup: write an execution trace of -catchup.phase to this file")
)

// BenchmarkCatchup reports a terminal's catch-up of 100k queued events to
// HQ beside the two raw limits measured in the same run. Run it with
// -benchtime=1x: one iteration is the whole 100k. -catchup.pg runs HQ on
// PostgreSQL (both the service and raw limit b).
func BenchmarkCatchup(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for i := 0; i < b.N; i++ {
		o := CatchupOptions{Events: n, BatchEvents: *catchupBatch, Window: *catchupWindow, Phase: profilePhase(b)}
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		if *catchupPG || os.Getenv("EDGEPOS_BENCH_PG") == "1" {
			o.OpenStore = pgStores(b)
		}
		r, err := CatchupWith(context.Background(), b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		f := r.Figures()
		b.ReportMetric(f[0].Ours, "events/s")
		b.ReportMetric(*f[0].Raw, "raw-events/s")
		b.ReportMetric(*f[0].Ratio, "ratio")
		b.ReportMetric(r.Ours.Seconds(), "catchup-s")
		b.ReportMetric(Rate(n, r.RawPublish), "paho-events/s")
		b.ReportMetric(Rate(n, r.RawInsert), "insert-events/s")
		b.ReportMetric(float64(r.OursCPU.Microseconds())/float64(n), "cpu-µs/event")
		b.ReportMetric(float64(r.RawInsertCPU.Microseconds())/float64(n), "insert-cpu-µs/event")
	}
}

// pgStores opens each HQ store of a run in a schema of its own.
func pgStores(tb testing.TB) func(ctx context.Context, name string) (hq.Store, error) {
	return func(ctx context.Context, name string) (hq.Store, error) {
		url, schema := testenv.PGSchema(tb)
		return pgstore.Open(ctx, url, pgstore.Options{Schema: schema})
	}
}

func profilePhase(tb testing.TB) func(string) func() {
	if *catchupCPUProf == "" && *catchupMemProf == "" && *catchupTrace == "" {
		return nil
	}
	return func(name string) func() {
		if name != *catchupPhase {
			return func() {}
		}
		if *catchupMemProf != "" {
			// The allocs profile counts from program start: write a base to
			// subtract (go tool pprof -diff_base FILE.base FILE).
			writeAllocs(tb, *catchupMemProf+".base")
		}
		var cpu *os.File
		if *catchupCPUProf != "" {
			f, err := os.Create(*catchupCPUProf)
			if err != nil {
				tb.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				tb.Fatal(err)
			}
			cpu = f
		}
		var tr *os.File
		if *catchupTrace != "" {
			f, err := os.Create(*catchupTrace)
			if err != nil {
				tb.Fatal(err)
			}
			if err := trace.Start(f); err != nil {
				tb.Fatal(err)
			}
			tr = f
		}
		return func() {
			if tr != nil {
				trace.Stop()
				tr.Close()
			}
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			if *catchupMemProf != "" {
				writeAllocs(tb, *catchupMemProf)
			}
		}
	}
}

func writeAllocs(tb testing.TB, path string) {
	runtime.GC() // the profile shows allocations as of the last GC
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

func TestCatchupSmall(t *testing.T) {
	r, err := Catchup(context.Background(), t.TempDir(), 2000, 500)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ours <= 0 || r.RawPublish <= 0 || r.RawInsert <= 0 {
		t.Fatalf("missing figures: %+v", r)
	}
}
