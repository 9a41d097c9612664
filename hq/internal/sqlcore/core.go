package sqlcore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// Core implements hq.Store on a Conn.
type Core struct {
	db Conn
	d  Dialect
}

// New returns a Core on db. The schema must already be migrated.
func New(db Conn, d Dialect) *Core { return &Core{db: db, d: d} }

// Close closes the connection.
func (c *Core) Close(ctx context.Context) error { return c.db.Close() }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

type terminalRow struct {
	dbID        string
	acked, high int64
}

// lockTerminal makes sure the terminal's row exists and locks it for the
// transaction.
func (c *Core) lockTerminal(ctx context.Context, tx Tx, store, terminal string) (terminalRow, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO terminals(store, terminal) VALUES(?, ?) ON CONFLICT DO NOTHING", store, terminal); err != nil {
		return terminalRow{}, fmt.Errorf("add terminal: %w", err)
	}
	var r terminalRow
	err := tx.QueryRow(ctx, "SELECT db_id, acked_seq, high_seq FROM terminals WHERE store = ? AND terminal = ?"+c.d.ForUpdate, store, terminal).
		Scan(&r.dbID, &r.acked, &r.high)
	if err != nil {
		return r, fmt.Errorf("lock terminal: %w", err)
	}
	return r, nil
}

// IngestBatch implements hq.Store.
func (c *Core) IngestBatch(ctx context.Context, b *wire.Batch, invalid map[int64]string, now time.Time) (hq.IngestResult, error) {
	var res hq.IngestResult
	// First without looking up every id: an id stored under another key is
	// rare (a buggy or hostile terminal), and the insert's count shows it.
	// Then, if the count fell short, again with the look-up, which sorts
	// such events out as rejected.
	checkIDs := false
	err := c.inTx(ctx, "ingest batch", func(tx Tx) error {
		var err error
		res, err = c.ingest(ctx, tx, b, invalid, now.UTC(), checkIDs)
		if errors.Is(err, errIDsTaken) {
			checkIDs = true
			res, err = hq.IngestResult{}, errRace // rolled back; run again
		}
		return err
	})
	return res, err
}

// errIDsTaken means an insert skipped rows whose seq was free: their id is
// stored already, under another key.
var errIDsTaken = errors.New("event ids already stored")

type pendingReject struct {
	ev     *wire.Event
	reason string
	record bool // write a rejected_events row (counts as handled)
}

func (c *Core) ingest(ctx context.Context, tx Tx, b *wire.Batch, invalid map[int64]string, now time.Time, checkIDs bool) (hq.IngestResult, error) {
	res := hq.IngestResult{}
	term, err := c.lockTerminal(ctx, tx, b.Store, b.Terminal)
	if err != nil {
		return res, err
	}
	if term.dbID != b.DBID {
		if term.dbID != "" && term.high > 0 {
			return res, hq.ErrDBMismatch
		}
		term.dbID = b.DBID
	}
	lo, hi := b.Events[0].Seq, b.Events[len(b.Events)-1].Seq

	stored := map[int64]string{}
	if err := scanEach(ctx, tx, func(r Rows) error {
		var seq int64
		var id string
		if err := r.Scan(&seq, &id); err != nil {
			return err
		}
		stored[seq] = id
		return nil
	}, "SELECT seq, id FROM events WHERE store = ? AND terminal = ? AND seq BETWEEN ? AND ?", b.Store, b.Terminal, lo, hi); err != nil {
		return res, fmt.Errorf("read stored seqs: %w", err)
	}
	rejected := map[int64]string{}
	if err := scanEach(ctx, tx, func(r Rows) error {
		var seq int64
		var reason string
		if err := r.Scan(&seq, &reason); err != nil {
			return err
		}
		rejected[seq] = reason
		return nil
	}, "SELECT seq, reason FROM rejected_events WHERE store = ? AND terminal = ? AND seq BETWEEN ? AND ?", b.Store, b.Terminal, lo, hi); err != nil {
		return res, fmt.Errorf("read rejected seqs: %w", err)
	}
	// Ids stored under any key, for the duplicate-id rule (see IngestBatch).
	knownIDs := map[string]bool{}
	if checkIDs {
		var candidates []string
		for i := range b.Events {
			if _, ok := stored[b.Events[i].Seq]; !ok {
				candidates = append(candidates, b.Events[i].ID)
			}
		}
		if knownIDs, err = c.existingIDs(ctx, tx, candidates); err != nil {
			return res, err
		}
	}

	var (
		rows    []EventRow
		rejects []pendingReject
		inBatch = map[string]bool{}
		fresh   []*wire.Event
	)
	for i := range b.Events {
		e := &b.Events[i]
		if id, ok := stored[e.Seq]; ok {
			if id == e.ID {
				res.Duplicates++
			} else {
				rejects = append(rejects, pendingReject{ev: e, reason: hq.ReasonDuplicateSeq})
			}
			continue
		}
		if reason, ok := rejected[e.Seq]; ok {
			res.Rejected = append(res.Rejected, wire.Rejection{Seq: e.Seq, ID: e.ID, Reason: reason})
			continue
		}
		if reason, ok := invalid[e.Seq]; ok {
			rejects = append(rejects, pendingReject{ev: e, reason: reason, record: true})
			continue
		}
		if knownIDs[e.ID] || inBatch[e.ID] {
			rejects = append(rejects, pendingReject{ev: e, reason: hq.ReasonDuplicateID, record: true})
			continue
		}
		inBatch[e.ID] = true
		rows = append(rows, EventRow{Store: b.Store, Terminal: b.Terminal, Seq: e.Seq, ID: e.ID, Type: e.Type, DBID: b.DBID,
			At: e.At.UTC(), ReceivedAt: now, Payload: e.Payload})
		fresh = append(fresh, e)
	}

	topic := wire.NewTopics("").Events(b.Store, b.Terminal)
	for _, r := range rejects {
		res.Rejected = append(res.Rejected, wire.Rejection{Seq: r.ev.Seq, ID: r.ev.ID, Reason: r.reason})
		if r.record {
			if _, err := tx.Exec(ctx, "INSERT INTO rejected_events(store, terminal, seq, id, type, reason, received_at) VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
				b.Store, b.Terminal, r.ev.Seq, r.ev.ID, r.ev.Type, r.reason, now); err != nil {
				return res, fmt.Errorf("record rejected seq %d: %w", r.ev.Seq, err)
			}
		}
		raw, _ := json.Marshal(r.ev)
		if err := insertQuarantine(ctx, tx, hq.QuarantineEntry{ReceivedAt: now, Topic: topic, Store: b.Store, Terminal: b.Terminal,
			Seq: r.ev.Seq, EventID: r.ev.ID, Reason: r.reason, Size: len(raw), Raw: raw}); err != nil {
			return res, err
		}
	}
	slices.SortFunc(res.Rejected, func(a, b wire.Rejection) int { return cmp.Compare(a.Seq, b.Seq) })

	if len(rows) > 0 {
		insert := c.d.InsertEvents
		if insert == nil {
			insert = InsertEventsMultiRow
		}
		n, err := insert(ctx, tx, rows)
		if err != nil {
			return res, fmt.Errorf("insert events: %w", err)
		}
		if n != int64(len(rows)) {
			if !checkIDs {
				return res, errIDsTaken
			}
			return res, errRace
		}
		res.Stored = len(rows)
		if res.Feed, err = c.project(ctx, tx, b.Store, b.Terminal, fresh, now); err != nil {
			return res, err
		}
	}

	// The cursor moves over every handled seq that follows it. This
	// transaction has read everything handled in [lo, hi] and added the
	// rest, so within the batch's range it walks in memory; the database is
	// asked only about what lies outside it.
	acked := term.acked
	if acked+1 >= lo && acked < hi {
		handled := make(map[int64]bool, len(stored)+len(rejected)+len(rows)+len(rejects))
		for seq := range stored {
			handled[seq] = true
		}
		for seq := range rejected {
			handled[seq] = true
		}
		for i := range rows {
			handled[rows[i].Seq] = true
		}
		for _, r := range rejects {
			if r.record {
				handled[r.ev.Seq] = true
			}
		}
		for acked < hi && handled[acked+1] {
			acked++
		}
	}
	if acked < lo || acked >= hi {
		// Before the batch (a gap below it) or through it: what was stored
		// earlier above may follow on.
		if acked, err = c.advance(ctx, tx, b.Store, b.Terminal, acked); err != nil {
			return res, err
		}
	}
	high := max(term.high, hi)
	if _, err := tx.Exec(ctx, "UPDATE terminals SET db_id = ?, acked_seq = ?, high_seq = ?, last_upload = ?, last_seen = ? WHERE store = ? AND terminal = ?",
		term.dbID, acked, high, now, now, b.Store, b.Terminal); err != nil {
		return res, fmt.Errorf("update terminal cursor: %w", err)
	}
	res.Through, res.High = acked, high
	return res, nil
}

func (c *Core) existingIDs(ctx context.Context, tx Tx, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := "SELECT id FROM events WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + ")"
		if err := scanEach(ctx, tx, func(r Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			known[id] = true
			return nil
		}, q, args...); err != nil {
			return nil, fmt.Errorf("read stored ids: %w", err)
		}
	}
	return known, nil
}

// InsertEventsMultiRow inserts rows with multi-row INSERT … ON CONFLICT DO
// NOTHING and returns how many were inserted. Statements carry 100, 10 or 1
// rows, so however a batch is cut, its statements are one of three texts the
// database has prepared already (SQLite's statement cache, pgx's).
func InsertEventsMultiRow(ctx context.Context, tx Tx, rows []EventRow) (int64, error) {
	var total int64
	for len(rows) > 0 {
		per := 1
		switch {
		case len(rows) >= 100:
			per = 100
		case len(rows) >= 10:
			per = 10
		}
		chunk := rows[:per]
		rows = rows[per:]
		args := make([]any, 0, len(chunk)*9)
		for _, r := range chunk {
			args = append(args, r.Store, r.Terminal, r.Seq, r.ID, r.Type, r.DBID, r.At, r.ReceivedAt, r.Payload)
		}
		n, err := tx.Exec(ctx, insertEventsSQL(per), args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

var insertEventsText = map[int]string{}

func init() {
	for _, per := range []int{1, 10, 100} {
		insertEventsText[per] = "INSERT INTO events(store, terminal, seq, id, type, db_id, at, received_at, payload) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", per), ", ") + " ON CONFLICT DO NOTHING"
	}
}

func insertEventsSQL(per int) string { return insertEventsText[per] }

// advance moves the contiguous cursor over every handled seq (stored or
// rejected) that follows it.
func (c *Core) advance(ctx context.Context, tx Tx, store, terminal string, acked int64) (int64, error) {
	const page = 2000
	for {
		n, stop := 0, false
		err := scanEach(ctx, tx, func(r Rows) error {
			var seq int64
			if err := r.Scan(&seq); err != nil {
				return err
			}
			n++
			if stop {
				return nil
			}
			if seq == acked+1 {
				acked = seq
			} else if seq > acked+1 {
				stop = true
			}
			return nil
		}, `SELECT seq FROM (
			SELECT seq FROM events WHERE store = ? AND terminal = ? AND seq > ?
			UNION ALL
			SELECT seq FROM rejected_events WHERE store = ? AND terminal = ? AND seq > ?) h
			ORDER BY seq LIMIT ?`, store, terminal, acked, store, terminal, acked, page)
		if err != nil {
			return 0, fmt.Errorf("advance cursor: %w", err)
		}
		if stop || n < page {
			return acked, nil
		}
	}
}

func scanEach(ctx context.Context, q Querier, fn func(Rows) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func insertQuarantine(ctx context.Context, q Querier, e hq.QuarantineEntry) error {
	raw := e.Raw
	if len(raw) > hq.MaxQuarantineRaw {
		raw = raw[:hq.MaxQuarantineRaw]
	}
	if raw == nil {
		raw = []byte{}
	}
	_, err := q.Exec(ctx, "INSERT INTO quarantine(received_at, topic, store, terminal, seq, event_id, reason, size, raw) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
		e.ReceivedAt.UTC(), e.Topic, e.Store, e.Terminal, e.Seq, e.EventID, e.Reason, e.Size, raw)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// Quarantine implements hq.Store.
func (c *Core) Quarantine(ctx context.Context, e hq.QuarantineEntry) error {
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = time.Now()
	}
	return c.inTx(ctx, "quarantine", func(tx Tx) error { return insertQuarantine(ctx, tx, e) })
}

// ListQuarantine implements hq.Store.
func (c *Core) ListQuarantine(ctx context.Context, limit int) ([]hq.QuarantineEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []hq.QuarantineEntry{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var e hq.QuarantineEntry
		if err := r.Scan(&e.ID, &e.ReceivedAt, &e.Topic, &e.Store, &e.Terminal, &e.Seq, &e.EventID, &e.Reason, &e.Size, &e.Raw); err != nil {
			return err
		}
		e.ReceivedAt = e.ReceivedAt.UTC()
		out = append(out, e)
		return nil
	}, "SELECT id, received_at, topic, store, terminal, seq, event_id, reason, size, raw FROM quarantine ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	return out, nil
}

// Hello implements hq.Store.
func (c *Core) Hello(ctx context.Context, h *wire.Hello, now time.Time) (hq.HelloResult, error) {
	var res hq.HelloResult
	now = now.UTC()
	err := c.inTx(ctx, "record hello", func(tx Tx) error {
		res = hq.HelloResult{}
		term, err := c.lockTerminal(ctx, tx, h.Store, h.Terminal)
		if err != nil {
			return err
		}
		if term.dbID != h.DBID {
			if term.dbID != "" {
				res.NewDB = true
				if term.high > 0 {
					// A reinstalled terminal: it continues above everything
					// HQ holds; seqs the old install never delivered are gone
					// with it, so the cursor moves too.
					res.Rebase = term.high
					term.acked = term.high
				}
			}
			term.dbID = h.DBID
		}
		res.Through = term.acked
		if res.FeedVersion, err = feedLatest(ctx, tx, h.Store); err != nil {
			return err
		}
		if h.FeedVersion > res.FeedVersion && c.d.RaiseFeed != nil {
			// The terminal has applied versions this database does not
			// have (HQ restored from an older backup): new entries must
			// number above its cursor or it would skip them.
			if err := c.lock(ctx, tx, "feed"); err != nil {
				return err
			}
			if err := c.d.RaiseFeed(ctx, tx, h.FeedVersion); err != nil {
				return fmt.Errorf("raise feed version: %w", err)
			}
		}
		skew := h.Clock.Sub(now).Milliseconds()
		if h.Clock.IsZero() {
			skew = 0
		}
		_, err = tx.Exec(ctx, `UPDATE terminals SET db_id = ?, acked_seq = ?, agent_version = ?, backlog = ?, oldest_unsynced = ?,
			last_seen = ?, clock_skew_ms = ?, feed_version = ? WHERE store = ? AND terminal = ?`,
			term.dbID, term.acked, h.AgentVersion, h.Backlog, nullTime(h.OldestUnsync), now, skew, h.FeedVersion, h.Store, h.Terminal)
		if err != nil {
			return fmt.Errorf("update fleet: %w", err)
		}
		return nil
	})
	return res, err
}

// SetStatus implements hq.Store.
func (c *Core) SetStatus(ctx context.Context, store, terminal string, online bool, at time.Time) error {
	return c.inTx(ctx, "set status", func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO terminals(store, terminal, online, status_at) VALUES(?, ?, ?, ?)
			ON CONFLICT(store, terminal) DO UPDATE SET online = excluded.online, status_at = excluded.status_at`,
			store, terminal, online, at.UTC())
		return err
	})
}

// Fleet implements hq.Store.
func (c *Core) Fleet(ctx context.Context) ([]hq.TerminalStatus, error) {
	out := []hq.TerminalStatus{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var t hq.TerminalStatus
		var statusAt, lastSeen, oldest, lastUpload sql.NullTime
		if err := r.Scan(&t.Store, &t.Terminal, &t.Online, &statusAt, &lastSeen, &t.AgentVersion, &t.DBID, &t.AckedSeq, &t.HighSeq,
			&t.Backlog, &oldest, &t.ClockSkewMS, &lastUpload, &t.FeedVersion); err != nil {
			return err
		}
		t.StatusAt, t.LastSeen, t.OldestUnsynced, t.LastUpload = fromNull(statusAt), fromNull(lastSeen), fromNull(oldest), fromNull(lastUpload)
		out = append(out, t)
		return nil
	}, `SELECT store, terminal, online, status_at, last_seen, agent_version, db_id, acked_seq, high_seq,
		backlog, oldest_unsynced, clock_skew_ms, last_upload, feed_version FROM terminals ORDER BY store, terminal`)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	return out, nil
}

// Stores implements hq.Store.
func (c *Core) Stores(ctx context.Context) ([]string, error) {
	var out []string
	err := scanEach(ctx, c.db, func(r Rows) error {
		var s string
		if err := r.Scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	}, "SELECT DISTINCT store FROM (SELECT store FROM terminals UNION SELECT store FROM change_feed WHERE store <> '*') s ORDER BY store")
	if err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	return out, nil
}

// Sales implements hq.Store.
func (c *Core) Sales(ctx context.Context, store, day string) ([]hq.SalesDay, error) {
	out := []hq.SalesDay{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var s hq.SalesDay
		if err := r.Scan(&s.Store, &s.BusinessDay, &s.Count, &s.Gross, &s.Tax, &s.VoidCount, &s.Voided, &s.ReturnCount, &s.Returned); err != nil {
			return err
		}
		s.Net = s.Gross - s.Voided - s.Returned
		out = append(out, s)
		return nil
	}, `SELECT store, business_day, sales_count, gross, tax, void_count, voided, return_count, returned FROM sales_daily
		WHERE (? = '' OR store = ?) AND (? = '' OR business_day = ?) ORDER BY store, business_day`, store, store, day, day)
	if err != nil {
		return nil, fmt.Errorf("read sales: %w", err)
	}
	return out, nil
}

// Inventory implements hq.Store.
func (c *Core) Inventory(ctx context.Context, store string) ([]hq.InventoryItem, error) {
	out := []hq.InventoryItem{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var it hq.InventoryItem
		if err := r.Scan(&it.Store, &it.SKU, &it.OnHand, &it.Deltas, &it.ReportedAt); err != nil {
			return err
		}
		it.ReportedAt = it.ReportedAt.UTC()
		out = append(out, it)
		return nil
	}, "SELECT store, sku, on_hand, deltas, reported_at FROM inventory WHERE (? = '' OR store = ?) ORDER BY store, sku", store, store)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return out, nil
}

var _ hq.Store = (*Core)(nil)

// isNoRows reports sql.ErrNoRows (adapters map their driver's to it).
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Events implements hq.Store.
func (c *Core) Events(ctx context.Context, store, typ string, fn func(terminal string, e wire.Event) error) error {
	err := scanEach(ctx, c.db, func(r Rows) error {
		var term string
		var e wire.Event
		var payload []byte
		if err := r.Scan(&term, &e.Seq, &e.ID, &e.Type, &e.At, &payload); err != nil {
			return err
		}
		e.At = e.At.UTC()
		e.Payload = payload
		return fn(term, e)
	}, "SELECT terminal, seq, id, type, at, payload FROM events WHERE store = ? AND (? = '' OR type = ?) ORDER BY terminal, seq", store, typ, typ)
	if err != nil {
		return fmt.Errorf("read events of %s: %w", store, err)
	}
	return nil
}
