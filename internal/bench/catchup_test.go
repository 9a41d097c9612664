package bench

import (
	"context"
	"testing"
)

// BenchmarkCatchup reports a terminal's catch-up of 100k queued events to
// HQ beside the two raw limits measured in the same run. Run it with
// -benchtime=1x: one iteration is the whole 100k.
func BenchmarkCatchup(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for i := 0; i < b.N; i++ {
		r, err := Catchup(context.Background(), b.TempDir(), n, 500)
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
