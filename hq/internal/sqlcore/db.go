// Package sqlcore is the SQL behind both HQ stores (hq/sqlitestore and
// hq/pgstore): the ingest transaction, the projections and the queries,
// written once against a small database seam so the two implementations
// cannot drift. Each store supplies its connection adapter and a Dialect for
// what really differs (bulk insert, locking).
//
// SQL here uses '?' placeholders and only syntax SQLite 3.35+ and
// PostgreSQL 13+ share (ON CONFLICT, RETURNING). The PostgreSQL adapter
// rewrites placeholders to $n.
package sqlcore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Rows is a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// Row is a single-row result; Scan returns sql.ErrNoRows when there is none.
type Row interface {
	Scan(dest ...any) error
}

// Querier runs statements.
type Querier interface {
	Exec(ctx context.Context, q string, args ...any) (int64, error)
	Query(ctx context.Context, q string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) Row
}

// Tx is a write transaction.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Conn is a database: reads go through its Querier, writes through Begin.
type Conn interface {
	Querier
	Begin(ctx context.Context) (Tx, error)
	Close() error
}

// EventRow is one event to insert.
type EventRow struct {
	Store, Terminal string
	Seq             int64
	ID, Type, DBID  string
	At, ReceivedAt  any // time.Time
	Payload         []byte
}

// Dialect is what differs between the databases.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// ForUpdate is appended to a SELECT that locks the terminal row ("" for
	// SQLite, whose single writer already serializes).
	ForUpdate string
	// InsertEvents inserts rows, skipping conflicts, and returns how many
	// were inserted. Nil means multi-row INSERT … ON CONFLICT DO NOTHING.
	InsertEvents func(ctx context.Context, tx Tx, rows []EventRow) (int64, error)
	// Lock takes a transaction-scoped lock on name (a coupon, the feed), so
	// concurrent ingest processes serialize on it. Nil: no locking needed.
	Lock func(ctx context.Context, tx Tx, name string) error
	// RaiseFeed makes the next change-feed version greater than v (HQ
	// restored from a backup older than what a terminal has applied).
	RaiseFeed func(ctx context.Context, tx Tx, v int64) error
	// TimeResolution is how finely the database keeps a timestamp (0:
	// exactly). The projections compare times in Go where the database
	// would compare them, so they round the same way.
	TimeResolution time.Duration
	// Retryable reports an error after which the transaction may simply be
	// run again (serialization failure, deadlock, a lost insert race).
	Retryable func(error) bool
}

// errRace means a concurrent writer inserted what this transaction had
// checked was absent; the transaction is retried.
var errRace = errors.New("concurrent insert race")

// inTx runs fn in a transaction, retrying a few times when the dialect says
// the failure was a race.
func (c *Core) inTx(ctx context.Context, op string, fn func(tx Tx) error) error {
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = c.once(ctx, fn)
		if err == nil {
			return nil
		}
		if !(errors.Is(err, errRace) || (c.d.Retryable != nil && c.d.Retryable(err))) || ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (c *Core) once(ctx context.Context, fn func(tx Tx) error) (err error) {
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (c *Core) lock(ctx context.Context, tx Tx, name string) error {
	if c.d.Lock == nil {
		return nil
	}
	return c.d.Lock(ctx, tx, name)
}
