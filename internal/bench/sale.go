package bench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/localdb"
)

// FiveSKUs are the demo products of the benchmark's 5-line sale.
var FiveSKUs = []string{"TEA500", "NOODLE", "MILK1L", "BREAD", "WATER"}

// WarmBare and WarmSales are the commits made before timing starts: enough
// to fill SQLite's WAL to its auto-checkpoint size (1000 pages) once, so the
// timed commits reuse the WAL file as a long-running terminal does instead
// of growing it (each growth also makes the fsync commit the file size).
const (
	WarmBare  = 600 // about 2 WAL pages per bare commit
	WarmSales = 150 // about 9 WAL pages per sale
)

// BareDB is a database opened with localdb.Open's pragmas (WAL,
// synchronous=FULL, immediate write transactions) with one bare table: the
// raw limit beside a sale commit.
type BareDB struct{ db *localdb.DB }

// OpenBare creates the bare database at path and makes WarmBare commits.
func OpenBare(ctx context.Context, path string) (*BareDB, error) {
	db, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		return nil, err
	}
	b := &BareDB{db: db}
	if _, err := db.Write.ExecContext(ctx, "CREATE TABLE bare(id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		db.Close(ctx)
		return nil, fmt.Errorf("bare commits: %w", err)
	}
	for i := 0; i < WarmBare; i++ {
		if _, err := b.Commit(ctx); err != nil {
			db.Close(ctx)
			return nil, err
		}
	}
	return b, nil
}

// Commit commits one bare row in its own transaction and returns how long
// it took.
func (b *BareDB) Commit(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	if err := b.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO bare(v) VALUES(?)", "x")
		return err
	}); err != nil {
		return 0, fmt.Errorf("bare commit: %w", err)
	}
	return time.Since(t0), nil
}

// Close closes the database.
func (b *BareDB) Close(ctx context.Context) error { return b.db.Close(ctx) }

// BareCommits opens a bare database at path (warmed up, see OpenBare) and
// commits n one-row transactions. It returns the time the n commits took
// and each commit's latency.
func BareCommits(ctx context.Context, path string, n int) (time.Duration, []time.Duration, error) {
	b, err := OpenBare(ctx, path)
	if err != nil {
		return 0, nil, err
	}
	defer b.Close(ctx)
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		d, err := b.Commit(ctx)
		if err != nil {
			return 0, nil, err
		}
		lat = append(lat, d)
	}
	return time.Since(start), lat, nil
}

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
}

// Sale measures n 5-line sales through the ledger and, on the same disk in
// the same run, n bare-row commits with the same pragmas. Both databases
// are warmed up first, and the two loops alternate in chunks of 25 so a
// shared machine's load falls on both alike.
func Sale(ctx context.Context, dir string, n int) (SaleResult, error) {
	r := SaleResult{Sales: n, Bare: n}
	bare, err := OpenBare(ctx, filepath.Join(dir, "bare.db"))
	if err != nil {
		return r, err
	}
	defer bare.Close(ctx)
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
func (r SaleResult) Figures() []Figure {
	bare := Rate(r.Bare, r.BareTime)
	return []Figure{
		Figure{Scenario: "sale", Metric: "5-line sale commits", Unit: "sales/s", Ours: Rate(r.Sales, r.Commit), Goal: "≥ 0.7 × bare row"}.
			WithRaw("bare-row commit, same pragmas", bare),
		{Scenario: "sale", Metric: "5-line sales incl. building the cart", Unit: "sales/s", Ours: Rate(r.Sales, r.Elapsed)},
		{Scenario: "sale", Metric: "commit latency p50", Unit: "ms", Ours: Ms(Percentile(r.Lat, 50)), LowerIsBetter: true},
		{Scenario: "sale", Metric: "commit latency p99", Unit: "ms", Ours: Ms(Percentile(r.Lat, 99)), Goal: "≤ 10 ms", LowerIsBetter: true},
		{Scenario: "sale", Metric: "raw: bare-row commit p99", Unit: "ms", Ours: Ms(Percentile(r.BareLat, 99)), LowerIsBetter: true},
	}
}
