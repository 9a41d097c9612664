package localdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// Event is one outbox row.
type Event struct {
	Seq       int64
	ID        string
	Type      string
	Payload   json.RawMessage
	CreatedAt time.Time
}

// AppendEvent writes an event to the outbox inside the caller's transaction,
// so the event exists exactly when the change it records does. payload is
// marshalled to JSON unless it already is a json.RawMessage or []byte.
func AppendEvent(ctx context.Context, tx *sql.Tx, typ string, payload any, at time.Time) (Event, error) {
	return appendEvent(ctx, tx, nil, typ, payload, at)
}

// AppendEvent is the package's AppendEvent with the insert prepared once on
// the writer: a sale commit is a handful of statements, and modernc's
// prepare costs more than the insert itself. tx must come from db.
func (db *DB) AppendEvent(ctx context.Context, tx *sql.Tx, typ string, payload any, at time.Time) (Event, error) {
	return appendEvent(ctx, tx, db.appendStmt, typ, payload, at)
}

const appendSQL = "INSERT INTO outbox(id, type, payload, created_at) VALUES(?, ?, ?, ?) RETURNING seq"

func appendEvent(ctx context.Context, tx *sql.Tx, st *sql.Stmt, typ string, payload any, at time.Time) (Event, error) {
	var raw []byte
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			return Event{}, fmt.Errorf("append %s event: %w", typ, err)
		}
	}
	// HQ decodes by RFC 7493 (I-JSON): no duplicate member names, valid
	// UTF-8. A payload it would refuse must not get into the queue, where
	// it would hold up every event behind it.
	if !jsontext.Value(raw).IsValid() {
		return Event{}, fmt.Errorf("append %s event: payload is not valid JSON (RFC 7493: no duplicate names, valid UTF-8)", typ)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("append %s event: %w", typ, err)
	}
	ev := Event{ID: id.String(), Type: typ, Payload: raw, CreatedAt: at.UTC()}
	var row *sql.Row
	if st != nil {
		row = tx.StmtContext(ctx, st).QueryRowContext(ctx, ev.ID, typ, string(raw), ev.CreatedAt)
	} else {
		row = tx.QueryRowContext(ctx, appendSQL, ev.ID, typ, string(raw), ev.CreatedAt)
	}
	if err := row.Scan(&ev.Seq); err != nil {
		return Event{}, fmt.Errorf("append %s event: %w", typ, err)
	}
	return ev, nil
}

// NextEvents returns up to maxCount unacked events with seq above afterSeq,
// in seq order, stopping before the total payload would pass maxBytes (but
// always returning at least one event if there is one).
func (db *DB) NextEvents(ctx context.Context, afterSeq int64, maxCount, maxBytes int) ([]Event, error) {
	rows, err := db.Read.QueryContext(ctx,
		"SELECT seq, id, type, payload, created_at FROM outbox WHERE acked = 0 AND seq > ? ORDER BY seq LIMIT ?",
		afterSeq, maxCount)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []Event
	size := 0
	for rows.Next() {
		var e Event
		var p string
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &p, &e.CreatedAt); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if len(out) > 0 && maxBytes > 0 && size+len(p) > maxBytes {
			break
		}
		size += len(p)
		e.Payload = json.RawMessage(p)
		e.CreatedAt = e.CreatedAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// AckThrough marks every event with seq <= through acked, as HQ said it
// durably stored them, and returns how many rows changed. If through is past
// the last seq this database wrote (a terminal restored from an older
// backup), the sequence jumps past it so new events never reuse a seq HQ
// already holds.
//
// The commit is not synced by itself (see writeTxRelaxed): a power cut may
// undo it, and then the events go again and HQ acks them again. The
// sequence jump is safe too: it can only be lost together with every event
// written after it, and the next hello brings it back before any upload.
func (db *DB) AckThrough(ctx context.Context, through int64) (int64, error) {
	var n int64
	err := db.writeTxRelaxed(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE outbox SET acked = 1, acked_at = ? WHERE acked = 0 AND seq <= ?",
			time.Now().UTC(), through)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		// The acked cursor lives in meta so reading it never scans the table.
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('acked_seq', ?)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value
			WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)`, strconv.FormatInt(through, 10)); err != nil {
			return err
		}
		return raiseSequence(ctx, tx, through)
	})
	if err != nil {
		return 0, fmt.Errorf("ack outbox through %d: %w", through, err)
	}
	return n, nil
}

// raiseSequence makes the next seq at least floor+1.
func raiseSequence(ctx context.Context, tx *sql.Tx, floor int64) error {
	res, err := tx.ExecContext(ctx, "UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox' AND seq < ?", floor, floor)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var exists int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'outbox'").Scan(&exists); err != nil {
		return err
	}
	if exists == 0 && floor > 0 {
		_, err = tx.ExecContext(ctx, "INSERT INTO sqlite_sequence(name, seq) VALUES('outbox', ?)", floor)
	}
	return err
}

// Rebase renumbers unacked events so that all of them, and every event
// written later, have seq above after. HQ asks for it when this database is
// new to it but it already holds events up to after for this terminal (a
// reinstalled terminal). It returns the shift applied (0 if none was
// needed). Relative order and gaplessness are kept.
func (db *DB) Rebase(ctx context.Context, after int64) (int64, error) {
	var shift int64
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		var minSeq sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MIN(seq) FROM outbox WHERE acked = 0").Scan(&minSeq); err != nil {
			return err
		}
		if minSeq.Valid && minSeq.Int64 <= after {
			shift = after + 1 - minSeq.Int64
			// Move every row from the first unacked one up, rejected ones
			// among them too, so seq stays gapless. Two steps, so no row's
			// new seq collides with a row not yet moved.
			if _, err := tx.ExecContext(ctx, "UPDATE outbox SET seq = -seq WHERE seq >= ?", minSeq.Int64); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE outbox SET seq = -seq + ? WHERE seq < 0", shift); err != nil {
				return err
			}
			var maxSeq int64
			if err := tx.QueryRowContext(ctx, "SELECT MAX(seq) FROM outbox").Scan(&maxSeq); err != nil {
				return err
			}
			return raiseSequence(ctx, tx, maxSeq)
		}
		return raiseSequence(ctx, tx, after)
	})
	if err != nil {
		return 0, fmt.Errorf("rebase outbox after %d: %w", after, err)
	}
	return shift, nil
}

// Reject dead-letters one event HQ refused for good: it leaves the queue
// (so it never blocks the events behind it) but stays in the table with
// the reason, for the store's report. Pruning keeps rejected rows.
func (db *DB) Reject(ctx context.Context, seq int64, reason string) error {
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE outbox SET acked = 1, acked_at = ?, rejected = ? WHERE seq = ?",
			time.Now().UTC(), reason, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("reject outbox seq %d: %w", seq, err)
	}
	return nil
}

// PruneAcked deletes acked (not rejected) events acked before cutoff and
// returns how many went. The AUTOINCREMENT counter keeps seq monotonic.
func (db *DB) PruneAcked(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM outbox WHERE acked = 1 AND rejected IS NULL AND acked_at < ?", cutoff.UTC())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return n, nil
}

// OutboxState summarises the queue for sync's hello and the status bar.
type OutboxState struct {
	Backlog       int64     // unacked events
	FirstUnacked  int64     // lowest unacked seq, 0 when none
	LastSeq       int64     // highest seq ever written (or raised to), 0 when none
	AckedSeq      int64     // highest acked seq, 0 when none
	OldestUnacked time.Time // created_at of the oldest unacked event, zero when none
	Rejected      int64     // dead-lettered events
}

// OutboxState reads the queue's summary. Every part is an index or meta
// look-up, so it is cheap to call on each ack and status poll.
func (db *DB) OutboxState(ctx context.Context) (OutboxState, error) {
	var s OutboxState
	var first sql.NullInt64
	var acked sql.NullString
	var oldest sql.NullString
	// Counting unacked rows would walk the whole backlog on every call.
	// Instead: acks are a prefix (AckThrough) plus single rejected rows, and
	// seq is gapless, so every row from the first unacked one to the last
	// row is unacked except the rejected ones among them.
	var maxRow sql.NullInt64
	var rejectedAbove int64
	err := db.Read.QueryRowContext(ctx, `WITH f(first) AS (SELECT MIN(seq) FROM outbox WHERE acked = 0)
		SELECT
		(SELECT first FROM f),
		(SELECT MAX(seq) FROM outbox),
		(SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)),
		(SELECT value FROM meta WHERE key = 'acked_seq'),
		(SELECT created_at FROM outbox WHERE seq = (SELECT first FROM f)),
		(SELECT COUNT(*) FROM outbox WHERE rejected IS NOT NULL),
		(SELECT COUNT(*) FROM outbox WHERE rejected IS NOT NULL AND seq >= (SELECT first FROM f))`).
		Scan(&first, &maxRow, &s.LastSeq, &acked, &oldest, &s.Rejected, &rejectedAbove)
	if err != nil {
		return s, fmt.Errorf("read outbox state: %w", err)
	}
	s.FirstUnacked = first.Int64
	if first.Valid {
		s.Backlog = maxRow.Int64 - first.Int64 + 1 - rejectedAbove
	}
	if acked.Valid {
		s.AckedSeq, _ = strconv.ParseInt(acked.String, 10, 64)
	}
	if oldest.Valid {
		// A column read through a sub-select loses its declared type, so
		// the driver hands back the text it stored.
		t, err := parseSQLiteTime(oldest.String)
		if err != nil {
			return s, fmt.Errorf("read outbox state: oldest event time %q: %w", oldest.String, err)
		}
		s.OldestUnacked = t
	}
	if s.FirstUnacked > 0 && s.AckedSeq < s.FirstUnacked-1 {
		// Seq is gapless: everything below the first unacked is acked
		// (after a rebase, or in a file older than the acked cursor).
		s.AckedSeq = s.FirstUnacked - 1
	}
	if s.Backlog == 0 && s.AckedSeq < s.LastSeq {
		s.AckedSeq = s.LastSeq
	}
	return s, nil
}

// parseSQLiteTime parses the text modernc writes with _time_format=sqlite.
func parseSQLiteTime(v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time format")
}
