// Package sqlitestore is HQ's default store: one SQLite file
// (modernc.org/sqlite, pure Go) opened with the same pragmas as the
// terminal's database (WAL, synchronous=FULL, busy timeout, immediate write
// transactions) and one writer. Enough for a pilot or a small chain; use
// hq/pgstore when several hq-ingest processes share the load.
package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a connection waits for a lock; default 5s.
	BusyTimeout time.Duration
	// ReadConns caps the read pool; default 4.
	ReadConns int
	// Logger receives migration messages; default discards.
	Logger *slog.Logger
}

// Store is hq.Store on SQLite.
type Store struct {
	*sqlcore.Core
	path string
}

var _ hq.Store = (*Store)(nil)

func dsn(path string, o Options, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_time_format", "sqlite")
	if write {
		q.Add("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Open opens (creating if needed) the HQ database at path and migrates it.
func Open(ctx context.Context, path string, o Options) (_ *Store, err error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", dsn(abs, o, true))
	if err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	w.SetMaxOpenConns(1) // one writer
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	var r *sql.DB
	defer func() {
		if err != nil {
			w.Close()
			if r != nil {
				r.Close()
			}
		}
	}()
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("open hq db %s: journal_mode is %q, want wal", path, mode)
	}
	if err := migrate(ctx, w, o.Logger); err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	r, err = sql.Open("sqlite", dsn(abs, o, false))
	if err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	if err := r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	conn := &conn{w: w, r: r}
	return &Store{Core: sqlcore.New(conn, sqlcore.Dialect{Name: "sqlite", RaiseFeed: raiseFeed}), path: abs}, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func migrate(ctx context.Context, w *sql.DB, log *slog.Logger) error {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := w.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ents) {
		return fmt.Errorf("hq database is at schema %d, this binary knows up to %d", cur, len(ents))
	}
	for i, e := range ents[cur:] {
		v := cur + i + 1
		num, name, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		if n, err := strconv.Atoi(num); err != nil || n != v {
			return fmt.Errorf("migration file %q: numbers must run 1, 2, 3…", e.Name())
		}
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return err
		}
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d (%s): %w", v, name, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)", v, name, time.Now().UTC()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d (%s): %w", v, name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d (%s): %w", v, name, err)
		}
		log.Info("applied hq migration", "version", v, "name", name)
	}
	return nil
}

// conn adapts database/sql to sqlcore.Conn: reads on the read pool, writes
// on the single-connection writer.
type conn struct{ w, r *sql.DB }

func (c *conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.w.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c *conn) Query(ctx context.Context, q string, args ...any) (sqlcore.Rows, error) {
	return c.r.QueryContext(ctx, q, args...)
}

func (c *conn) QueryRow(ctx context.Context, q string, args ...any) sqlcore.Row {
	return c.r.QueryRowContext(ctx, q, args...)
}

func (c *conn) Begin(ctx context.Context) (sqlcore.Tx, error) {
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &txn{tx}, nil
}

func (c *conn) Close() error { return errors.Join(c.r.Close(), c.w.Close()) }

type txn struct{ tx *sql.Tx }

func (t *txn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *txn) Query(ctx context.Context, q string, args ...any) (sqlcore.Rows, error) {
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *txn) QueryRow(ctx context.Context, q string, args ...any) sqlcore.Row {
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t *txn) Commit(context.Context) error   { return t.tx.Commit() }
func (t *txn) Rollback(context.Context) error { return t.tx.Rollback() }

// raiseFeed moves change_feed's AUTOINCREMENT counter to at least v.
func raiseFeed(ctx context.Context, tx sqlcore.Tx, v int64) error {
	n, err := tx.Exec(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = 'change_feed' AND seq < ?", v, v)
	if err != nil || n > 0 {
		return err
	}
	var exists int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'change_feed'").Scan(&exists); err != nil {
		return err
	}
	if exists == 0 {
		_, err = tx.Exec(ctx, "INSERT INTO sqlite_sequence(name, seq) VALUES('change_feed', ?)", v)
	}
	return err
}
