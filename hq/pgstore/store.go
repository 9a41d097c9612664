// Package pgstore is hq.Store on PostgreSQL (jackc/pgx v5, native protocol), for
// a chain big enough to run several hq-ingest processes on one database:
// every write transaction locks the terminal row (SELECT … FOR UPDATE), the
// coupon and feed writers take transaction-scoped advisory locks, and large
// batches are loaded with COPY into a temporary table followed by one
// INSERT … SELECT … ON CONFLICT DO NOTHING.
package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Options tune Open.
type Options struct {
	// Schema, if set, is the search_path of every connection (tests use a
	// schema of their own). It must exist.
	Schema string
	// MaxConns caps the connections; default 8.
	MaxConns int
	// Logger receives migration messages; default discards.
	Logger *slog.Logger
}

// Store is hq.Store on PostgreSQL.
type Store struct {
	*sqlcore.Core
	pool *pool
}

var _ hq.Store = (*Store)(nil)

// copyThreshold is the batch size from which COPY beats a multi-row INSERT.
const copyThreshold = 64

// Open connects to url (postgres://…), migrates the schema and returns the
// store.
func Open(ctx context.Context, url string, o Options) (_ *Store, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open hq postgres: %w", err)
	}
	if o.Schema != "" {
		cfg.RuntimeParams["search_path"] = o.Schema
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	pool := newPool(cfg, o.MaxConns)
	defer func() {
		if err != nil {
			pool.close()
		}
	}()
	if err := migrate(ctx, pool, o.Logger); err != nil {
		return nil, fmt.Errorf("open hq postgres: %w", err)
	}
	c := &conn{pool: pool}
	d := sqlcore.Dialect{
		Name:         "postgres",
		ForUpdate:    " FOR UPDATE",
		InsertEvents: insertEvents,
		// pgx sends a timestamptz as whole microseconds, truncated.
		TimeResolution: time.Microsecond,
		Lock: func(ctx context.Context, tx sqlcore.Tx, name string) error {
			_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", name)
			return err
		},
		RaiseFeed: func(ctx context.Context, tx sqlcore.Tx, v int64) error {
			_, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('change_feed', 'version'), ?::bigint)
				WHERE ?::bigint > (SELECT COALESCE(MAX(version), 0) FROM change_feed)`, v, v)
			return err
		},
		Retryable: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
		},
	}
	return &Store{Core: sqlcore.New(c, d), pool: pool}, nil
}

func migrate(ctx context.Context, p *pool, log *slog.Logger) (err error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	c, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.release(c)
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// One migrator at a time when several hq-ingest processes start together.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('edgepos-hq-migrate', 0))"); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&cur); err != nil {
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
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migration %d (%s): %w", v, name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES($1, $2, $3)", v, name, time.Now().UTC()); err != nil {
			return fmt.Errorf("migration %d (%s): %w", v, name, err)
		}
		log.Info("applied hq migration", "version", v, "name", name)
	}
	return tx.Commit(ctx)
}

func insertEvents(ctx context.Context, tx sqlcore.Tx, rows []sqlcore.EventRow) (int64, error) {
	if len(rows) < copyThreshold {
		return sqlcore.InsertEventsMultiRow(ctx, tx, rows)
	}
	ptx := tx.(*pgTx).tx
	if _, err := ptx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS events_in
		(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`); err != nil {
		return 0, fmt.Errorf("temp table: %w", err)
	}
	cols := []string{"store", "terminal", "seq", "id", "type", "db_id", "at", "received_at", "payload"}
	_, err := ptx.CopyFrom(ctx, pgx.Identifier{"events_in"}, cols, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		return []any{r.Store, r.Terminal, r.Seq, r.ID, r.Type, r.DBID, r.At, r.ReceivedAt, r.Payload}, nil
	}))
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	tag, err := ptx.Exec(ctx, "INSERT INTO events("+strings.Join(cols, ", ")+") SELECT "+strings.Join(cols, ", ")+" FROM events_in ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, err
	}
	if _, err := ptx.Exec(ctx, "TRUNCATE events_in"); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// rebind turns '?' placeholders into $1, $2, … (the core's SQL has no '?'
// inside literals).
var rebindCache sync.Map

func rebind(q string) string {
	if v, ok := rebindCache.Load(q); ok {
		return v.(string)
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(r)
	}
	out := sb.String()
	if len(q) < 4096 { // do not cache the generated multi-row inserts
		rebindCache.Store(q, out)
	}
	return out
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type base struct{ q querier }

func (b base) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := b.q.Exec(ctx, rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (b base) Query(ctx context.Context, q string, args ...any) (sqlcore.Rows, error) {
	rows, err := b.q.Query(ctx, rebind(q), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{rows}, nil
}

func (b base) QueryRow(ctx context.Context, q string, args ...any) sqlcore.Row {
	return pgRow{b.q.QueryRow(ctx, rebind(q), args...)}
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return r.Rows.Err() }

type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// conn runs reads on a pooled connection each, and write transactions on
// a connection held until commit or rollback.
type conn struct{ pool *pool }

func (c *conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	pc, err := c.pool.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.pool.release(pc)
	return base{pc}.Exec(ctx, q, args...)
}

func (c *conn) Query(ctx context.Context, q string, args ...any) (sqlcore.Rows, error) {
	pc, err := c.pool.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := pc.Query(ctx, rebind(q), args...)
	if err != nil {
		c.pool.release(pc)
		return nil, err
	}
	return &pooledRows{pgRows: pgRows{rows}, release: func() { c.pool.release(pc) }}, nil
}

func (c *conn) QueryRow(ctx context.Context, q string, args ...any) sqlcore.Row {
	return &lazyRow{c: c, ctx: ctx, sql: q, args: args}
}

func (c *conn) Begin(ctx context.Context) (sqlcore.Tx, error) {
	pc, err := c.pool.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := pc.Begin(ctx)
	if err != nil {
		c.pool.release(pc)
		return nil, err
	}
	return &pgTx{base: base{tx}, tx: tx, done: func() { c.pool.release(pc) }}, nil
}

func (c *conn) Close() error { c.pool.close(); return nil }

type pooledRows struct {
	pgRows
	release func()
	closed  bool
}

func (r *pooledRows) Close() error {
	err := r.pgRows.Close()
	if !r.closed {
		r.closed = true
		r.release()
	}
	return err
}

// lazyRow runs its query when scanned, holding a connection only for that.
type lazyRow struct {
	c    *conn
	ctx  context.Context
	sql  string
	args []any
}

func (r *lazyRow) Scan(dest ...any) error {
	pc, err := r.c.pool.acquire(r.ctx)
	if err != nil {
		return err
	}
	defer r.c.pool.release(pc)
	return base{pc}.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
}

type pgTx struct {
	base
	tx   pgx.Tx
	once sync.Once
	done func()
}

// Commit commits and gives the connection back; a Rollback after it (the
// core rolls back when Commit fails) is a no-op.
func (t *pgTx) Commit(ctx context.Context) error {
	defer t.once.Do(t.done)
	return t.tx.Commit(ctx)
}

func (t *pgTx) Rollback(ctx context.Context) error {
	defer t.once.Do(t.done)
	return t.tx.Rollback(ctx)
}
