package wire

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchBatch is a batch of n realistic sale.completed events (about 400
// bytes each), as the link sends it.
func benchBatch(tb testing.TB, n int) []byte {
	tb.Helper()
	at := time.Now().UTC()
	b := &Batch{V: SchemaVersion, Store: "S001", Terminal: "T1", DBID: uuid.NewString(), SentAt: at}
	for i := 1; i <= n; i++ {
		p, err := json.Marshal(SaleCompleted{
			SaleID: uuid.Must(uuid.NewV7()).String(), Receipt: fmt.Sprintf("T1-%06d", i),
			BusinessDay: at.Format(time.DateOnly), CompletedAt: at, Cashier: "1001", Currency: "CNY",
			Subtotal: 1550, Tax: 178, Total: 1550,
			Lines: []SaleLine{
				{Line: 1, SKU: "6901234567892", Name: "Oolong tea 500ml", Qty: 1000, UnitPrice: 450, Tax: 52, Total: 450},
				{Line: 2, SKU: "2000001", Name: "Apples", Qty: 1532, UnitPrice: 718, Tax: 126, Total: 1100},
			},
			Tenders: []Tender{{Kind: "cash", Amount: 2000}},
		})
		if err != nil {
			tb.Fatal(err)
		}
		b.Events = append(b.Events, Event{Seq: int64(i), ID: uuid.Must(uuid.NewV7()).String(), Type: EventSaleCompleted, At: at, Payload: p})
	}
	data, err := EncodeBatch(b)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkDecodeBatch is HQ's per-batch CPU before the database: decode a
// gzipped batch of 500 sales and validate every payload.
func BenchmarkDecodeBatch(b *testing.B) {
	data := benchBatch(b, 500)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		bt, err := DecodeBatch(data)
		if err != nil {
			b.Fatal(err)
		}
		for i := range bt.Events {
			if err := ValidatePayload(&bt.Events[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncodeBatch is the link's per-batch CPU: encode and gzip 500 sales.
func BenchmarkEncodeBatch(b *testing.B) {
	data := benchBatch(b, 500)
	bt, err := DecodeBatch(data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeBatch(bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
