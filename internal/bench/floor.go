package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/edgepos/edgepos/localdb"
)

// FloorFeature is one of the writes a real sale commit adds to the floor
// (see OpenFloor).
type FloorFeature uint

const (
	FloorLines   FloorFeature = 1 << iota // the lines in a table of their own, one row each
	FloorReceipt                          // a unique index on the receipt number (returns look sales up by it)
	FloorPrint                            // the receipt's print job in a queue table
	FloorUUIDKey                          // the sale keyed by its UUID text, not a rowid

	// FloorAsLedger is the shape of the ledger's sale commit (migration
	// 0006): every feature above.
	FloorAsLedger = FloorLines | FloorReceipt | FloorPrint | FloorUUIDKey
)

// FloorDB measures the least work a 5-line sale commit can do while keeping
// issue 2's rule that the sale, its lines and tenders, the stock movement
// and the outbox event are written in one transaction: one sale row
// (lines and tenders as JSON), one UPDATE of the five stock rows, one
// outbox row, through prepared statements, with every payload built before
// the clock starts. Features add the ledger's other writes one by one. It
// runs on localdb.Open's pragmas, like the bare row. No application code
// runs, so the rate of a shape is the ceiling of any code with that shape
// on modernc.org/sqlite on the machine measured.
type FloorDB struct {
	db                        *localdb.DB
	f                         FloorFeature
	insSale, updStock, insOut *sql.Stmt
	insLines, insPrint        *sql.Stmt
	sale                      string
	skus                      []any
	seq                       int
}

// OpenFloor creates a floor database with the features f at path and makes
// WarmBare commits, as OpenBare does.
func OpenFloor(ctx context.Context, path string, f FloorFeature) (*FloorDB, error) {
	db, err := localdb.Open(ctx, path, localdb.Options{})
	if err != nil {
		return nil, err
	}
	fl := &FloorDB{db: db, f: f, skus: []any{"MILK1L", "BREAD", "EGGS12", "APPLE", "RICE5"}}
	if err := fl.setUp(ctx); err != nil {
		db.Close(ctx)
		return nil, fmt.Errorf("floor: %w", err)
	}
	for i := 0; i < WarmBare; i++ {
		if _, err := fl.Commit(ctx); err != nil {
			db.Close(ctx)
			return nil, err
		}
	}
	return fl, nil
}

func (fl *FloorDB) setUp(ctx context.Context) error {
	w := fl.db.Write
	sale := "CREATE TABLE fsale(id INTEGER PRIMARY KEY, receipt TEXT, v TEXT NOT NULL)"
	if fl.f&FloorUUIDKey != 0 {
		sale = "CREATE TABLE fsale(id TEXT PRIMARY KEY, receipt TEXT, v TEXT NOT NULL) WITHOUT ROWID"
	}
	ddl := []string{sale,
		"CREATE TABLE finv(sku TEXT PRIMARY KEY, on_hand INTEGER NOT NULL) WITHOUT ROWID",
		"CREATE TABLE fout(seq INTEGER PRIMARY KEY, v TEXT NOT NULL)",
		`CREATE TABLE flines(sale, line INTEGER, sku TEXT, name TEXT, qty INTEGER, price INTEGER, total INTEGER, tax INTEGER,
			PRIMARY KEY(sale, line)) WITHOUT ROWID`,
		"CREATE TABLE fprint(pos INTEGER PRIMARY KEY, id, receipt TEXT, kind TEXT, created TEXT)",
	}
	if fl.f&FloorReceipt != 0 {
		ddl = append(ddl, "CREATE UNIQUE INDEX fsale_receipt ON fsale(receipt)")
	}
	for _, q := range ddl {
		if _, err := w.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for _, s := range fl.skus {
		if _, err := w.ExecContext(ctx, "INSERT INTO finv VALUES(?, 1000000000)", s); err != nil {
			return err
		}
	}
	var lines []string
	for i, s := range fl.skus {
		lines = append(lines, fmt.Sprintf(`{"line":%d,"sku":%q,"name":"Product %d","qty":1000,"unit_price":1299,"discount":0,"tax":118,"total":1299}`, i+1, s, i))
	}
	// About the size of the ledger's sale.completed payload.
	fl.sale = `{"sale_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","receipt":"T1-000123","business_day":"2026-12-01",` +
		`"completed_at":"2026-12-01T10:00:00Z","cashier":"c1","currency":"CNY","subtotal":6495,"discount":0,"tax":590,"total":6495,"lines":[` +
		strings.Join(lines, ",") + `],"tenders":[{"kind":"cash","amount":7000},{"kind":"change","amount":-505}]}`
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&fl.insSale, "INSERT INTO fsale(id, receipt, v) VALUES(?, ?, ?)"},
		{&fl.updStock, "UPDATE finv SET on_hand = on_hand - 1000 WHERE sku IN (?, ?, ?, ?, ?)"},
		{&fl.insOut, "INSERT INTO fout(v) VALUES(?)"},
		{&fl.insLines, "INSERT INTO flines VALUES" + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", 5), ", ")},
		{&fl.insPrint, "INSERT INTO fprint(id, receipt, kind, created) VALUES(?, ?, 'receipt', ?)"},
	} {
		st, err := w.PrepareContext(ctx, p.q)
		if err != nil {
			return err
		}
		*p.dst = st
	}
	return nil
}

// Commit commits one floor sale in its own transaction and returns how long
// it took. The ids and receipt text are made before the clock starts.
func (fl *FloorDB) Commit(ctx context.Context) (time.Duration, error) {
	fl.seq++
	var id any = fl.seq
	if fl.f&FloorUUIDKey != 0 {
		id = fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", fl.seq)
	}
	receipt := fmt.Sprintf("T1-%09d", fl.seq)
	var lines []any
	if fl.f&FloorLines != 0 {
		lines = make([]any, 0, 40)
		for i, s := range fl.skus {
			lines = append(lines, id, i+1, s, "Product name", 1000, 1299, 1299, 118)
		}
	}
	t0 := time.Now()
	err := fl.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, fl.insSale).ExecContext(ctx, id, receipt, fl.sale); err != nil {
			return err
		}
		if lines != nil {
			if _, err := tx.StmtContext(ctx, fl.insLines).ExecContext(ctx, lines...); err != nil {
				return err
			}
		}
		if _, err := tx.StmtContext(ctx, fl.updStock).ExecContext(ctx, fl.skus...); err != nil {
			return err
		}
		if fl.f&FloorPrint != 0 {
			if _, err := tx.StmtContext(ctx, fl.insPrint).ExecContext(ctx, id, receipt, "2026-12-01 10:00:00"); err != nil {
				return err
			}
		}
		_, err := tx.StmtContext(ctx, fl.insOut).ExecContext(ctx, fl.sale)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("floor commit: %w", err)
	}
	return time.Since(t0), nil
}

// Close closes the database.
func (fl *FloorDB) Close(ctx context.Context) error { return fl.db.Close(ctx) }
