package bench

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/edgepos/edgepos/localdb"
)

// WarmBare is how many commits OpenBare makes before timing starts: enough
// (about 2 WAL pages each) to fill SQLite's WAL to its auto-checkpoint size
// (1000 pages) once, so the timed commits reuse the WAL file as a
// long-running terminal does instead of growing it (each growth also makes
// the fsync commit the file size).
const WarmBare = 600

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
