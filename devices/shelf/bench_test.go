package shelf

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
)

// BenchmarkDecodeReadings decodes a multi-slot message of 8 readings.
func BenchmarkDecodeReadings(b *testing.B) {
	var rs []string
	for i := range 8 {
		rs = append(rs, fmt.Sprintf(`{"slot":%d,"weight_g":%d}`, i, 1200+i*37))
	}
	msg := []byte(`{"at":"2026-03-01T09:00:00Z","readings":[` + strings.Join(rs, ",") + `]}`)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := DecodeReadings(msg, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCounterObserve is the engine's cost per reading on a steady
// slot (window, stability check, count rule).
func BenchmarkCounterObserve(b *testing.B) {
	r := rules{stableReadings: 3, offlineAfter: time.Hour, shrinkWindow: time.Minute, lowStockMargin: 1, maxG: 500_000, alertRepeat: time.Minute, salesTimeout: time.Second}
	c := newCounter("s", r, []Slot{{Slot: 0, SKU: "A", TareG: 120, UnitG: 550, ToleranceG: 25}}, nil, t0, func(Event) {}, func(string, error) {})
	now := t0
	i := int64(0)
	for b.Loop() {
		now = now.Add(time.Millisecond)
		i++
		if err := c.observe(now, 0, 120+5*550+i%7); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRTUReadHolding is one function 03 exchange of 2 registers with
// the simulated indicator over a pseudo-terminal (no baud-rate limit: it
// measures our framing and the t3.5 gap at 115200 baud, not the line).
func BenchmarkRTUReadHolding(b *testing.B) {
	in, err := shelfsim.NewIndicator(filepath.Join(b.TempDir(), "shelf0"), 1)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	in.SetWeight(0, 12345, shelfsim.HighFirst)
	port, err := serialport.Open(serialport.Config{Path: in.Path(), Baud: 115200})
	if err != nil {
		b.Fatal(err)
	}
	c := NewRTUClient(port, 115200, time.Second)
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.ReadHolding(ctx, 1, 0, 2); err != nil {
			b.Fatal(err)
		}
	}
}
