// Package agentbench holds the measurements that drive the store agent
// (agent.Ledger, agent.Agent and its HTTP API), shared by the agent's
// benchmarks and cmd/pos-bench. It is apart from internal/bench so that
// package stays importable from the agent's own (internal) tests.
package agentbench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/localdb"
)

// WarmSales is how many sales Sale makes before timing starts: about 9 WAL
// pages each, enough to fill the WAL once (see bench.WarmBare).
const WarmSales = 150

// FiveSKUs are the demo products of the benchmark's 5-line sale.
var FiveSKUs = []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER"}

// OpenSaleLedger opens a terminal database at path and a tax-inclusive
// ledger over it, seeded with the demo catalog. The caller closes both.
func OpenSaleLedger(ctx context.Context, path string) (*localdb.DB, *agent.Ledger, error) {
	db, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		return nil, nil, err
	}
	l, err := agent.NewLedger(db, agent.LedgerConfig{Store: "S001", Terminal: "T1", TaxInclusive: true, BcryptCost: bcrypt.MinCost})
	if err != nil {
		db.Close(ctx)
		return nil, nil, err
	}
	if err := agent.SeedDemoCatalog(ctx, l); err != nil {
		l.Close()
		db.Close(ctx)
		return nil, nil, err
	}
	return db, l, nil
}

// SellFive rings up a 5-line cash sale through the ledger (OpenSale,
// AddItem ×5, AddTender, CompleteSale) and returns how long CompleteSale
// took: the one durable commit (sale, lines, tender, stock, receipt number,
// print job and outbox event in one transaction). The cart is in memory.
func SellFive(ctx context.Context, l *agent.Ledger) (time.Duration, error) {
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	if err != nil {
		return 0, err
	}
	for _, sku := range FiveSKUs {
		if s, err = l.AddItem(ctx, s.ID, sku, 1000); err != nil {
			return 0, err
		}
	}
	if s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: s.Total}); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if _, err := l.CompleteSale(ctx, s.ID, ""); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// SaleResult holds the figures of one sale run.
type SaleResult struct {
	Sales    int
	Commit   time.Duration   // time spent in CompleteSale (sequential)
	Elapsed  time.Duration   // whole loop, carts included
	Lat      []time.Duration // each CompleteSale
	Bare     int
	BareTime time.Duration
	BareLat  []time.Duration
	// Floor is the time n commits of bench.FloorDB with the ledger's shape
	// (bench.FloorAsLedger) took: the same writes with no application code.
	Floor time.Duration
}

// Sale measures n 5-line sales through the ledger and, on the same disk in
// the same run, n bare-row commits with the same pragmas and n floor
// commits (bench.FloorDB: the ledger's writes without its code). All three
// databases are warmed up first, and the loops alternate in chunks of 25
// so a shared machine's load falls on them alike.
func Sale(ctx context.Context, dir string, n int) (SaleResult, error) {
	r := SaleResult{Sales: n, Bare: n}
	bare, err := bench.OpenBare(ctx, filepath.Join(dir, "bare.db"))
	if err != nil {
		return r, err
	}
	defer bare.Close(ctx)
	floor, err := bench.OpenFloor(ctx, filepath.Join(dir, "floor.db"), bench.FloorAsLedger)
	if err != nil {
		return r, err
	}
	defer floor.Close(ctx)
	db, l, err := OpenSaleLedger(ctx, filepath.Join(dir, "pos.db"))
	if err != nil {
		return r, err
	}
	defer db.Close(ctx)
	defer l.Close()
	for i := 0; i < WarmSales; i++ {
		if _, err := SellFive(ctx, l); err != nil {
			return r, fmt.Errorf("warm-up sale %d: %w", i+1, err)
		}
	}
	r.Lat = make([]time.Duration, 0, n)
	r.BareLat = make([]time.Duration, 0, n)
	const chunk = 25
	for done := 0; done < n; done += chunk {
		k := min(chunk, n-done)
		t0 := time.Now()
		for i := 0; i < k; i++ {
			d, err := bare.Commit(ctx)
			if err != nil {
				return r, err
			}
			r.BareLat = append(r.BareLat, d)
		}
		r.BareTime += time.Since(t0)
		for i := 0; i < k; i++ {
			d, err := floor.Commit(ctx)
			if err != nil {
				return r, err
			}
			r.Floor += d
		}
		t0 = time.Now()
		for i := 0; i < k; i++ {
			d, err := SellFive(ctx, l)
			if err != nil {
				return r, fmt.Errorf("sale %d: %w", done+i+1, err)
			}
			r.Commit += d
			r.Lat = append(r.Lat, d)
		}
		r.Elapsed += time.Since(t0)
	}
	return r, nil
}

// Figures turns a sale result into report figures. The rate is sales over
// the time spent committing, since commits are sequential and the carts
// are built in memory; the rate with cart building is reported beside it.
func (r SaleResult) Figures() []bench.Figure {
	bare := bench.Rate(r.Bare, r.BareTime)
	return []bench.Figure{
		bench.Figure{Scenario: "sale", Metric: "5-line sale commits", Unit: "sales/s", Ours: bench.Rate(r.Sales, r.Commit), Goal: "≥ 0.7 × bare row"}.
			WithRaw("bare-row commit, same pragmas", bare),
		bench.Figure{Scenario: "sale", Metric: "floor: the ledger's writes, no code (ceiling)", Unit: "sales/s", Ours: bench.Rate(r.Sales, r.Floor)}.
			WithRaw("bare-row commit, same pragmas", bare),
		{Scenario: "sale", Metric: "5-line sales incl. building the cart", Unit: "sales/s", Ours: bench.Rate(r.Sales, r.Elapsed)},
		{Scenario: "sale", Metric: "commit latency p50", Unit: "ms", Ours: bench.Ms(bench.Percentile(r.Lat, 50)), LowerIsBetter: true},
		{Scenario: "sale", Metric: "commit latency p99", Unit: "ms", Ours: bench.Ms(bench.Percentile(r.Lat, 99)), Goal: "≤ 10 ms", LowerIsBetter: true},
		{Scenario: "sale", Metric: "raw: bare-row commit p99", Unit: "ms", Ours: bench.Ms(bench.Percentile(r.BareLat, 99)), LowerIsBetter: true},
	}
}
