package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// BenchOpen opens a fresh, empty store for one benchmark iteration.
type BenchOpen func(b *testing.B) hq.Store

// BenchIngest measures IngestBatch alone: n realistic two-line sales of one
// terminal in batches of batchEvents, with the payloads validated first as
// HQ's ingest does (so the projections reuse the decoded structs). It
// reports events/s.
func BenchIngest(b *testing.B, open BenchOpen, n, batchEvents int) {
	ctx := context.Background()
	at := time.Now().UTC()
	var batches []*wire.Batch
	db := uuid.NewString()
	for seq := 1; seq <= n; {
		bt := Batch("S001", "T1", db)
		for k := 0; k < batchEvents && seq <= n; k, seq = k+1, seq+1 {
			p, err := json.Marshal(wire.SaleCompleted{SaleID: NewID(b), Receipt: fmt.Sprintf("T1-%06d", seq), BusinessDay: at.Format(time.DateOnly),
				CompletedAt: at, Cashier: "1001", Currency: "CNY", Subtotal: 1550, Tax: 178, Total: 1550,
				Lines: []wire.SaleLine{
					{Line: 1, SKU: "6901234567892", Name: "Oolong tea 500ml", Qty: 1000, UnitPrice: 450, Tax: 52, Total: 450},
					{Line: 2, SKU: "2000001", Name: "Apples", Qty: 1532, UnitPrice: 718, Tax: 126, Total: 1100},
				},
				Tenders: []wire.Tender{{Kind: "cash", Amount: 2000}}})
			if err != nil {
				b.Fatal(err)
			}
			bt.Events = append(bt.Events, wire.Event{Seq: int64(seq), ID: NewID(b), Type: wire.EventSaleCompleted, At: at, Payload: p})
		}
		batches = append(batches, bt)
	}
	var total, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		s := open(b)
		for _, bt := range batches {
			for i := range bt.Events {
				if err := wire.ValidatePayload(&bt.Events[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for _, bt := range batches {
			if _, err := s.IngestBatch(ctx, bt, nil, at); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		s.Close(ctx)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
	// CPU time is steadier than wall time on a machine others share.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-µs/event")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
