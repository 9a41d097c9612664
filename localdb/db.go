// Package localdb is the store terminal's SQLite file: it opens it with the
// pragmas a sales ledger needs (WAL, synchronous=FULL, foreign keys, busy
// timeout, immediate write transactions), applies the embedded numbered
// migrations, and holds the transactional outbox that sync drains.
//
// There is one writer: every write goes through DB.Write, a pool of one
// connection whose transactions begin IMMEDIATE, so a read-then-write
// transaction never hits SQLITE_BUSY half way. Reads use DB.Read, a small
// pool of connections that see WAL snapshots.
package localdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors returned by Open.
var (
	// ErrTooNew means the file was written by a newer edgepos than this one.
	ErrTooNew = errors.New("database schema is newer than this binary")
	// ErrCorrupt means SQLite's quick_check found damage.
	ErrCorrupt = errors.New("database file is corrupt")
)

// Options tune Open. The zero value is what a terminal runs with.
type Options struct {
	// BusyTimeout is how long a connection waits for a lock. Default 5s.
	BusyTimeout time.Duration
	// Synchronous is FULL (default) or NORMAL. FULL is what makes a
	// completed sale survive power loss; NORMAL is for benchmarks only.
	Synchronous string
	// ReadConns caps the read pool. Default 4.
	ReadConns int
	// Logger receives migration and maintenance messages. Default discards.
	Logger *slog.Logger
}

// DB is an open terminal database.
type DB struct {
	// Write is the single-connection write pool. Use DB.WriteTx.
	Write *sql.DB
	// Read is the read pool.
	Read *sql.DB

	path    string
	id      string
	version int
	sync    string // the synchronous setting of every commit but relaxed ones
	log     *slog.Logger

	// appendStmt is the outbox insert, prepared at Open: preparing inside a
	// transaction would wait for the one write connection it holds.
	appendStmt *sql.Stmt
}

// dsn builds a file: URI; a plain path would silently drop the parameters.
func dsn(path string, o Options, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_time_format", "sqlite")
	if write {
		q.Add("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Open opens (creating if needed) the database at path, checks it, and
// brings its schema up to date.
func Open(ctx context.Context, path string, o Options) (_ *DB, err error) {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	o.Synchronous = strings.ToUpper(o.Synchronous)
	switch o.Synchronous {
	case "":
		o.Synchronous = "FULL"
	case "FULL", "NORMAL", "EXTRA":
	default:
		return nil, fmt.Errorf("open %s: synchronous %q is not FULL, NORMAL or EXTRA", path, o.Synchronous)
	}
	if o.ReadConns <= 0 {
		o.ReadConns = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{path: abs, log: o.Logger, sync: o.Synchronous}
	db.Write, err = sql.Open("sqlite", dsn(abs, o, true))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.Write.SetMaxOpenConns(1)
	db.Write.SetMaxIdleConns(1)
	db.Write.SetConnMaxLifetime(0)
	defer func() {
		if err != nil {
			db.Write.Close()
			if db.Read != nil {
				db.Read.Close()
			}
		}
	}()

	var mode string
	if err := db.Write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, classify(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("open %s: journal_mode is %q, want wal (is the file on a filesystem without shared memory?)", path, mode)
	}
	var check string
	if err := db.Write.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, classify(err))
	}
	if check != "ok" {
		return nil, fmt.Errorf("open %s: %w: %s", path, ErrCorrupt, check)
	}
	if err := db.migrate(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Write.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'db_id'").Scan(&db.id); err != nil {
		return nil, fmt.Errorf("open %s: read db id: %w", path, err)
	}
	if db.appendStmt, err = db.Write.PrepareContext(ctx, appendSQL); err != nil {
		return nil, fmt.Errorf("open %s: prepare outbox insert: %w", path, err)
	}

	db.Read, err = sql.Open("sqlite", dsn(abs, o, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.Read.SetMaxOpenConns(o.ReadConns)
	if err := db.Read.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// classify turns SQLite's "not a database" into ErrCorrupt.
func classify(err error) error {
	if err != nil && (strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "malformed")) {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}

// Close closes both pools. WAL content is checkpointed by SQLite when the
// last connection closes.
func (db *DB) Close(ctx context.Context) error {
	var errs []error
	if db.appendStmt != nil {
		errs = append(errs, db.appendStmt.Close())
	}
	return errors.Join(append(errs, db.Read.Close(), db.Write.Close())...)
}

// Path is the database file's absolute path.
func (db *DB) Path() string { return db.path }

// ID is this database's identity, a UUID made when the file was created. A
// reinstalled terminal has a new one; HQ uses it to tell the two apart.
func (db *DB) ID() string { return db.id }

// SchemaVersion is the highest migration applied.
func (db *DB) SchemaVersion() int { return db.version }

// WriteTx runs fn in an IMMEDIATE transaction on the writer and commits it;
// any error from fn (or a panic) rolls back.
func (db *DB) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return runTx(tx, fn)
}

// runTx runs fn in tx and commits; an error from fn, or a panic, rolls back.
func runTx(tx *sql.Tx, fn func(tx *sql.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// writeTxRelaxed is WriteTx with the commit not synced to disk by itself
// (synchronous=NORMAL for this one transaction), for a write a power cut
// may undo without harm because it is redone: marking events acked (HQ
// answers their resend with the same ack; it stores by seq and id, so the
// resend adds nothing). Durability of everything else is untouched: the WAL
// is written and synced in order, so the next FULL commit — any sale —
// syncs this one too, and a power cut can only take it together with
// everything committed after it. The cost saved is an fsync per ack, which
// on a terminal catching up stalled its upload loop.
func (db *DB) writeTxRelaxed(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if db.sync == "NORMAL" {
		return db.WriteTx(ctx, fn)
	}
	c, err := db.Write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous=NORMAL"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if _, rerr := c.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous="+db.sync); rerr != nil {
			// The writer must not go on with the weaker setting: discard
			// the connection (the pool opens a new one from the DSN).
			c.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("restore synchronous=%s: %w", db.sync, rerr))
		}
	}()
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return runTx(tx, fn)
}

// Meta reads a value from the meta table; ok is false when unset.
func (db *DB) Meta(ctx context.Context, key string) (value string, ok bool, err error) {
	err = db.Read.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read meta %s: %w", key, err)
	}
	return value, true, nil
}

// SetMeta writes a value to the meta table inside tx.
func SetMeta(ctx context.Context, tx *sql.Tx, key, value string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value)
	if err != nil {
		return fmt.Errorf("write meta %s: %w", key, err)
	}
	return nil
}

// Backup writes a consistent copy of the live database to dest with VACUUM
// INTO, through a temporary file that is fsynced and renamed, so dest is
// either the old file or a complete new one.
func (db *DB) Backup(ctx context.Context, dest string) error {
	dest, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if dest == db.path {
		return fmt.Errorf("backup: destination is the live database")
	}
	dir := filepath.Dir(dest)
	tmp := filepath.Join(dir, "."+filepath.Base(dest)+"."+uuid.NewString()+".tmp")
	defer os.Remove(tmp)
	// VACUUM INTO takes a file name, not a bound parameter.
	if _, err := db.Read.ExecContext(ctx, "VACUUM INTO "+quote(tmp)); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := syncFile(dir); err != nil {
		return fmt.Errorf("backup to %s: sync dir: %w", dest, err)
	}
	return nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
