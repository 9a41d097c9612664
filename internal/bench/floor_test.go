package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// rows counts the committed sales, their lines and outbox rows.
func (fl *FloorDB) rows(ctx context.Context) (sales, lines, outbox int, err error) {
	err = fl.db.Read.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM fsale), (SELECT count(*) FROM flines), (SELECT count(*) FROM fout)").
		Scan(&sales, &lines, &outbox)
	return sales, lines, outbox, err
}

func TestFloorCommitsWhatItSays(t *testing.T) {
	ctx := context.Background()
	for _, f := range []FloorFeature{0, FloorAsLedger} {
		fl, err := OpenFloor(ctx, filepath.Join(t.TempDir(), "floor.db"), f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fl.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		sales, lines, outbox, err := fl.rows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantLines := 0
		if f&FloorLines != 0 {
			wantLines = 5 * (WarmBare + 1)
		}
		if sales != WarmBare+1 || outbox != WarmBare+1 || lines != wantLines {
			t.Errorf("features %b: %d sales, %d lines, %d outbox rows; want %d, %d, %d", f, sales, lines, outbox, WarmBare+1, wantLines, WarmBare+1)
		}
		fl.Close(ctx)
	}
}

// BenchmarkSaleCommitFloor measures the floor of a 5-line sale commit
// (FloorDB) alone and with each of the ledger's other writes, bare-row
// commits alternating with it in runs of 50 on the same disk. Its ratio is
// the ceiling any code of that shape can reach against the bare row here.
func BenchmarkSaleCommitFloor(b *testing.B) {
	for _, v := range []struct {
		name string
		f    FloorFeature
	}{
		{"floor", 0},
		{"+lines", FloorLines},
		{"+receipt", FloorReceipt},
		{"+print", FloorPrint},
		{"+uuidkey", FloorUUIDKey},
		{"ledger-but-lines", FloorAsLedger &^ FloorLines},
		{"ledger", FloorAsLedger},
	} {
		b.Run(v.name, func(b *testing.B) { floorBench(b, v.f) })
	}
}

func floorBench(b *testing.B, f FloorFeature) {
	ctx := context.Background()
	dir := b.TempDir()
	bare, err := OpenBare(ctx, filepath.Join(dir, "bare.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close(ctx)
	fl, err := OpenFloor(ctx, filepath.Join(dir, "floor.db"), f)
	if err != nil {
		b.Fatal(err)
	}
	defer fl.Close(ctx)
	b.ResetTimer()
	var floorBusy, bareBusy time.Duration
	for done := 0; done < b.N; {
		n := min(50, b.N-done)
		for i := 0; i < n; i++ {
			d, err := fl.Commit(ctx)
			if err != nil {
				b.Fatal(err)
			}
			floorBusy += d
		}
		for i := 0; i < n; i++ {
			d, err := bare.Commit(ctx)
			if err != nil {
				b.Fatal(err)
			}
			bareBusy += d
		}
		done += n
	}
	b.StopTimer()
	fr, br := Rate(b.N, floorBusy), Rate(b.N, bareBusy)
	b.ReportMetric(fr, "floor-sales/s")
	b.ReportMetric(br, "bare-commits/s")
	b.ReportMetric(fr/br, "ratio")
}
