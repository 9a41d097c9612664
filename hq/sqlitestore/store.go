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
	"sync"
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
		// The checkpointer copies the WAL back off the commit path; the
		// writer checkpoints itself only if it falls far behind.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopPages))
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
	ck, err := sql.Open("sqlite", dsn(abs, o, false))
	if err != nil {
		return nil, fmt.Errorf("open hq db %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	conn := &conn{w: w, r: r, ckpt: newCheckpointer(ck, o.Logger)}
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
type conn struct {
	w, r  *sql.DB
	stmts stmtCache
	ckpt  *checkpointer
}

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
	return &txn{tx: tx, c: c}, nil
}

func (c *conn) Close() error {
	ckErr := c.ckpt.close()
	c.stmts.close()
	return errors.Join(ckErr, c.r.Close(), c.w.Close())
}

// Checkpointing. With SQLite's default, the commit that takes the WAL past
// 1000 pages copies them into the database file and syncs it before it
// returns: a catch-up of 100k events paid that on the ingest path about
// fifteen times, a third of its commit time. The checkpointer does it on a
// connection of its own a moment after commits (PASSIVE: it never blocks
// the writer or readers), as litestream does; durability is the WAL's,
// synced at each commit, and does not depend on it.
const (
	checkpointDelay = 200 * time.Millisecond
	// backstopPages is the WAL size at which the writer checkpoints itself
	// after all (16 MiB of 4 KiB pages): if the checkpointer cannot keep
	// up, the WAL still stays bounded.
	backstopPages = 4000
)

// checkpointer runs PASSIVE checkpoints after commits. New → (runs) → close.
type checkpointer struct {
	db     *sql.DB
	log    *slog.Logger
	dirty  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, log: log, dirty: make(chan struct{}, 1), cancel: cancel}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.loop(ctx)
	}()
	return c
}

// committed tells the checkpointer the WAL has grown. It never blocks.
func (c *checkpointer) committed() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop(ctx context.Context) {
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.dirty:
		}
		// Let a run of commits (a catch-up) gather before copying them.
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkpointDelay):
		}
		var busy, logFrames, done int
		err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			c.log.Warn("hq db checkpoint failed; the writer checkpoints past the backstop", "err", err)
			failing = true
		case err == nil && failing:
			c.log.Info("hq db checkpoint recovered")
			failing = false
		}
	}
}

func (c *checkpointer) close() error {
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}

// stmtCache holds the writer's prepared statements. modernc parses a
// statement's SQL on every unprepared call, which cost more than running it
// for most of the ingest transaction's statements. A statement is prepared
// after the first transaction that runs it has ended: preparing needs the
// writer's only connection, which that transaction holds.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds the cache; statements past it run unprepared.
const maxStmts = 256

func (sc *stmtCache) get(q string) *sql.Stmt {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.m[q]
}

// prepare prepares the statements qs on w (its connection must be free).
// A statement that fails to prepare is left to run unprepared: it has just
// run that way.
func (sc *stmtCache) prepare(ctx context.Context, w *sql.DB, qs []string) {
	for _, q := range qs {
		sc.mu.Lock()
		_, have := sc.m[q]
		full := len(sc.m) >= maxStmts
		sc.mu.Unlock()
		if have || full {
			continue
		}
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		sc.mu.Lock()
		if sc.m == nil {
			sc.m = map[string]*sql.Stmt{}
		}
		if _, have := sc.m[q]; have {
			st.Close()
		} else {
			sc.m[q] = st
		}
		sc.mu.Unlock()
	}
}

func (sc *stmtCache) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, st := range sc.m {
		st.Close()
	}
	sc.m = nil
}

type txn struct {
	tx     *sql.Tx
	c      *conn
	missed []string // statements run unprepared, to prepare after the end
}

// stmt returns q prepared for this transaction, or nil (and remembers q).
func (t *txn) stmt(ctx context.Context, q string) *sql.Stmt {
	if st := t.c.stmts.get(q); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	t.missed = append(t.missed, q)
	return nil
}

func (t *txn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := t.stmt(ctx, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = t.tx.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *txn) Query(ctx context.Context, q string, args ...any) (sqlcore.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *txn) QueryRow(ctx context.Context, q string, args ...any) sqlcore.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t *txn) Commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.done(ctx)
	if err == nil {
		t.c.ckpt.committed()
	}
	return err
}

func (t *txn) Rollback(ctx context.Context) error {
	err := t.tx.Rollback()
	t.done(ctx)
	return err
}

func (t *txn) done(ctx context.Context) {
	if len(t.missed) > 0 {
		t.c.stmts.prepare(context.WithoutCancel(ctx), t.c.w, t.missed)
		t.missed = nil
	}
}

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
