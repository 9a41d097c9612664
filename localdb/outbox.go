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

// appendSQL gives the event the next seq: one above both the highest row
// and the floor (meta outbox_floor, the highest seq ever handed out or
// raised to; see raiseSequence). It runs in the single writer's IMMEDIATE
// transaction, so no other insert can take the same seq, and a rolled-back
// transaction takes none: seq stays monotonic and gapless. (AUTOINCREMENT
// did the same but wrote the sqlite_sequence page on every insert, one more
// page per sale commit.) Both look-ups are one b-tree seek each.
const appendSQL = `INSERT INTO outbox(seq, id, type, payload, created_at) VALUES(
	1 + MAX(COALESCE((SELECT MAX(seq) FROM outbox), 0), ` + floorSQL + `), ?, ?, ?, ?)`

// floorSQL and ackedSQL read the sequence floor and the acked cursor.
const (
	floorSQL = `COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'outbox_floor'), 0)`
	ackedSQL = `COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'acked_seq'), 0)`
)

func appendEvent(ctx context.Context, tx *sql.Tx, st *sql.Stmt, typ string, payload any, at time.Time) (Event, error) {
	var raw []byte
	given := true // bytes from the caller, to check
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		// json.Marshal's output is valid JSON (it checks what MarshalJSON
		// methods return): checking it again cost the sale commit a pass.
		given = false
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			return Event{}, fmt.Errorf("append %s event: %w", typ, err)
		}
	}
	// HQ decodes by RFC 7493 (I-JSON): no duplicate member names, valid
	// UTF-8. A payload it would refuse must not get into the queue, where
	// it would hold up every event behind it. (json.Marshal's output is
	// that already: it replaces invalid UTF-8 and never repeats a name.)
	if given && !jsontext.Value(raw).IsValid() {
		return Event{}, fmt.Errorf("append %s event: payload is not valid JSON (RFC 7493: no duplicate names, valid UTF-8)", typ)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("append %s event: %w", typ, err)
	}
	ev := Event{ID: id.String(), Type: typ, Payload: raw, CreatedAt: at.UTC()}
	// seq is the rowid, so the insert's last rowid is the seq it chose: an
	// Exec, cheaper in database/sql and the driver than reading a row back.
	var res sql.Result
	if st != nil {
		res, err = tx.StmtContext(ctx, st).ExecContext(ctx, ev.ID, typ, string(raw), ev.CreatedAt)
	} else {
		res, err = tx.ExecContext(ctx, appendSQL, ev.ID, typ, string(raw), ev.CreatedAt)
	}
	if err == nil {
		ev.Seq, err = res.LastInsertId()
	}
	if err != nil {
		return Event{}, fmt.Errorf("append %s event: %w", typ, err)
	}
	return ev, nil
}

// NextEvents returns up to maxCount unacked events with seq above afterSeq,
// in seq order, stopping before the total payload would pass maxBytes (but
// always returning at least one event if there is one).
//
// Every unacked row lies above the acked cursor (acks are a prefix, see
// AckThrough), so the read starts there by primary key; only dead letters
// above the cursor are stepped over. No index of unacked rows is kept: it
// was one more page written by every sale.
func (db *DB) NextEvents(ctx context.Context, afterSeq int64, maxCount, maxBytes int) ([]Event, error) {
	rows, err := db.Read.QueryContext(ctx,
		"SELECT seq, id, type, payload, created_at FROM outbox WHERE seq > MAX(?, "+ackedSQL+") AND acked = 0 ORDER BY seq LIMIT ?",
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
// It keeps the invariant the queue is read by: every row with acked = 0
// has seq > meta acked_seq. The rows it acks and the cursor move in one
// transaction; the cursor only rises; the floor is raised with it, so a
// later event's seq is above the cursor; Rebase only moves rows up.
//
// The commit is not synced by itself (see writeTxRelaxed): a power cut may
// undo it (rows and cursor together), and then the events go again and HQ
// acks them again. The sequence jump is safe too: it can only be lost
// together with every event written after it, and the next hello brings it
// back before any upload.
func (db *DB) AckThrough(ctx context.Context, through int64) (int64, error) {
	var n int64
	err := db.writeTxRelaxed(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE outbox SET acked = 1, acked_at = ? WHERE seq > "+ackedSQL+" AND seq <= ? AND acked = 0",
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

// raiseSequence makes the next seq at least floor+1 (meta outbox_floor
// only rises). A no-op raise writes nothing.
func raiseSequence(ctx context.Context, tx *sql.Tx, floor int64) error {
	if floor <= 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('outbox_floor', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value
		WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)`, strconv.FormatInt(floor, 10))
	return err
}

// seqRefs are the ledger's columns holding an outbox seq (migrations 0002,
// 0003, 0005), shifted by Rebase with the events they point at.
var seqRefs = []struct{ table, column string }{
	{"sales", "outbox_seq"},
	{"coupon_redemptions", "outbox_seq"},
	{"pickup_handovers", "outbox_seq"},
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
		if err := tx.QueryRowContext(ctx, "SELECT (SELECT seq FROM outbox WHERE seq > "+ackedSQL+" AND acked = 0 ORDER BY seq LIMIT 1)").Scan(&minSeq); err != nil {
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
			// Rows that remember the seq of their event (to tell what HQ
			// has confirmed: coupon budget, points cap, hand-overs) move
			// with it, or they would count as confirmed too early.
			for _, ref := range seqRefs {
				if _, err := tx.ExecContext(ctx, "UPDATE "+ref.table+" SET "+ref.column+" = "+ref.column+" + ? WHERE "+ref.column+" >= ?", shift, minSeq.Int64); err != nil {
					return fmt.Errorf("%s.%s: %w", ref.table, ref.column, err)
				}
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
// returns how many went. The floor is raised to the highest seq first, in
// the same transaction, so deleting the newest rows never lets a seq be
// handed out again.
func (db *DB) PruneAcked(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		var maxSeq sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(seq) FROM outbox").Scan(&maxSeq); err != nil {
			return err
		}
		if err := raiseSequence(ctx, tx, maxSeq.Int64); err != nil {
			return err
		}
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
	err := db.Read.QueryRowContext(ctx, `WITH f(first) AS (SELECT (SELECT seq FROM outbox WHERE seq > `+ackedSQL+` AND acked = 0 ORDER BY seq LIMIT 1))
		SELECT
		(SELECT first FROM f),
		(SELECT MAX(seq) FROM outbox),
		MAX(COALESCE((SELECT MAX(seq) FROM outbox), 0), `+floorSQL+`),
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
