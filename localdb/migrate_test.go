package localdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// createAtVersion makes a database at path that stops at schema version v,
// the way a terminal running an older edgepos left it.
func createAtVersion(t *testing.T, path string, v int) *sql.DB {
	t.Helper()
	ms, err := Migrations()
	require.NoError(t, err)
	raw, err := sql.Open("sqlite", dsn(path, Options{BusyTimeout: 5 * time.Second, Synchronous: "FULL"}, true))
	require.NoError(t, err)
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	_, err = raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)`)
	require.NoError(t, err)
	for _, m := range ms[:v] {
		_, err := raw.Exec(m.SQL)
		require.NoError(t, err, "migration %d", m.Version)
		_, err = raw.Exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)", m.Version, m.Name, time.Now().UTC())
		require.NoError(t, err)
	}
	_, err = raw.Exec("INSERT INTO meta(key, value) VALUES('db_id', 'old-terminal')")
	require.NoError(t, err)
	return raw
}

// TestMigration6UpgradesASchema4Terminal upgrades a file written by the
// schema-4 code: an outbox with AUTOINCREMENT, an acked prefix, a dead
// letter, a pruned tail and no acked cursor yet; a print queue with
// queued, printed and failed jobs; sales with tenders. Nothing is lost, seq
// carries on where AUTOINCREMENT left it, and the queue and the tenders
// read as before.
func TestMigration6UpgradesASchema4Terminal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pos.db")
	raw := createAtVersion(t, path, 4)
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i := 1; i <= 12; i++ {
		_, err := raw.Exec("INSERT INTO outbox(id, type, payload, created_at) VALUES(?, 'sale.completed', ?, ?)",
			fmt.Sprintf("ev-%d", i), fmt.Sprintf(`{"i":%d}`, i), now.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
	}
	// HQ acked 1-4 (before the acked cursor existed) and refused 6 for
	// good; 1 was pruned, and 11 and 12 are gone too (a restored file whose
	// tail only AUTOINCREMENT remembers).
	_, err := raw.Exec("UPDATE outbox SET acked = 1, acked_at = ? WHERE seq <= 4", now)
	require.NoError(t, err)
	_, err = raw.Exec("UPDATE outbox SET acked = 1, acked_at = ?, rejected = 'bad' WHERE seq = 6", now)
	require.NoError(t, err)
	_, err = raw.Exec("DELETE FROM outbox WHERE seq IN (1, 11, 12)")
	require.NoError(t, err)
	for _, j := range []struct{ id, state, kind string }{
		{"job-printed", "printed", "receipt"}, {"job-q2", "queued", "copy"}, {"job-failed", "failed", "report"}, {"job-q1", "queued", "receipt"},
	} {
		at := now
		if j.id == "job-q2" {
			at = now.Add(time.Minute) // queued after job-q1
		}
		_, err := raw.Exec("INSERT INTO print_jobs(id, sale_id, receipt, kind, state, attempts, created_at, updated_at) VALUES(?, 'sale-1', 'T1-000001', ?, ?, 2, ?, ?)",
			j.id, j.kind, j.state, at, at)
		require.NoError(t, err)
	}
	// A completed sale paid by card and cash, one with no tender (a sale
	// discounted to zero) and a suspended one.
	_, err = raw.Exec(`INSERT INTO sales(id, state, receipt, cashier, created_at) VALUES
		('sale-1', 'completed', 'T1-000001', '1001', ?), ('sale-0', 'completed', 'T1-000002', '1001', ?), ('sale-s', 'suspended', NULL, '1001', ?)`, now, now, now)
	require.NoError(t, err)
	_, err = raw.Exec(`INSERT INTO sale_tenders(sale_id, seq, kind, amount, ref) VALUES
		('sale-1', 2, 'cash', 500, ''), ('sale-1', 1, 'card', 1200, 'AUTH-77')`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	ms, _ := Migrations()
	require.Equal(t, len(ms), db.SchemaVersion())
	require.Equal(t, "old-terminal", db.ID(), "identity kept")

	// Outbox: same rows, no AUTOINCREMENT left, the cursor where the acked
	// prefix ends, the floor where AUTOINCREMENT was.
	var autoinc, unackedIdx int
	require.NoError(t, db.Read.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'outbox' AND sql LIKE '%AUTOINCREMENT%'").Scan(&autoinc))
	require.NoError(t, db.Read.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'outbox_unacked'").Scan(&unackedIdx))
	require.Zero(t, autoinc)
	require.Zero(t, unackedIdx)
	var rows, rejected int
	require.NoError(t, db.Read.QueryRow("SELECT COUNT(*), COUNT(rejected) FROM outbox").Scan(&rows, &rejected))
	require.Equal(t, 9, rows)
	require.Equal(t, 1, rejected)
	cur, ok, err := db.Meta(ctx, "acked_seq")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "4", cur)

	evs, err := db.NextEvents(ctx, 0, 100, 0)
	require.NoError(t, err)
	var seqs []int64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	require.Equal(t, []int64{5, 7, 8, 9, 10}, seqs)
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Backlog)
	require.EqualValues(t, 5, st.FirstUnacked)
	require.EqualValues(t, 4, st.AckedSeq)
	require.EqualValues(t, 12, st.LastSeq, "the pruned tail still counts")
	require.EqualValues(t, 1, st.Rejected)
	require.Equal(t, now.Add(5*time.Second), st.OldestUnacked)

	next := appendN(t, db, 2)
	require.EqualValues(t, 13, next[0].Seq, "seq carries on above what AUTOINCREMENT handed out")
	require.EqualValues(t, 14, next[1].Seq)
	n, err := db.AckThrough(ctx, 14)
	require.NoError(t, err)
	require.EqualValues(t, 7, n)
	st, err = db.OutboxState(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Backlog)
	require.EqualValues(t, 14, st.AckedSeq)

	// Print queue: pending jobs in queue order, done ones in the history,
	// and the print_jobs view shows all four as the table did.
	type job struct {
		id, state string
		attempts  int
	}
	read := func(q string) []job {
		rs, err := db.Read.Query(q)
		require.NoError(t, err)
		defer rs.Close()
		var out []job
		for rs.Next() {
			var j job
			require.NoError(t, rs.Scan(&j.id, &j.state, &j.attempts))
			out = append(out, j)
		}
		require.NoError(t, rs.Err())
		return out
	}
	require.Equal(t, []job{{"job-q1", "queued", 2}, {"job-q2", "queued", 2}}, read("SELECT id, 'queued', attempts FROM print_queue ORDER BY pos"))
	require.Equal(t, []job{{"job-failed", "failed", 2}, {"job-printed", "printed", 2}}, read("SELECT id, state, attempts FROM print_history ORDER BY id"))
	require.Equal(t, []job{{"job-failed", "failed", 2}, {"job-printed", "printed", 2}, {"job-q1", "queued", 2}, {"job-q2", "queued", 2}},
		read("SELECT id, state, attempts FROM print_jobs ORDER BY id"))
	// Tenders: in their sale's row now, read through the sale_tenders view
	// as from the table, in seq order.
	type tender struct {
		sale   string
		seq    int
		kind   string
		amount int64
		ref    string
	}
	var ts []tender
	rs, err := db.Read.Query("SELECT sale_id, seq, kind, amount, ref FROM sale_tenders ORDER BY sale_id, seq")
	require.NoError(t, err)
	for rs.Next() {
		var tn tender
		require.NoError(t, rs.Scan(&tn.sale, &tn.seq, &tn.kind, &tn.amount, &tn.ref))
		ts = append(ts, tn)
	}
	require.NoError(t, rs.Err())
	rs.Close()
	require.Equal(t, []tender{{"sale-1", 1, "card", 1200, "AUTH-77"}, {"sale-1", 2, "cash", 500, ""}}, ts)
	var kind string
	require.NoError(t, db.Read.QueryRow("SELECT type FROM sqlite_master WHERE name = 'sale_tenders'").Scan(&kind))
	require.Equal(t, "view", kind)
	_, err = db.Write.Exec("UPDATE sales SET tenders = '{}' WHERE id = 'sale-0'")
	require.ErrorContains(t, err, "CHECK constraint failed", "tenders are a JSON array")

	var ck string
	require.NoError(t, db.Read.QueryRow("PRAGMA integrity_check").Scan(&ck))
	require.Equal(t, "ok", ck)
}

// TestMigration7AddsPickupSlips upgrades a schema-6 file with pending and
// done print jobs: the queue keeps its order and positions, the history
// its rows, the print_jobs view reads all of them as before, a 'pickup'
// job can be queued and moved to the history, and an unknown kind is
// still refused by the queue.
func TestMigration7AddsPickupSlips(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pos.db")
	raw := createAtVersion(t, path, 6)
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for i, j := range []struct{ id, kind string }{{"q-a", "receipt"}, {"q-b", "return"}, {"q-c", "copy"}} {
		_, err := raw.Exec("INSERT INTO print_queue(pos, id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at) VALUES(?, ?, NULL, 'T1-000001', ?, 1, 'paper out', ?, ?)",
			10+i, j.id, j.kind, now.Add(-time.Duration(i)*time.Minute), now) // created_at steps back: pos is the order
		require.NoError(t, err)
	}
	_, err := raw.Exec("INSERT INTO print_history(id, sale_id, receipt, kind, state, attempts, created_at, updated_at, printed_at) VALUES('h-1', 'sale-1', 'T1-000001', 'receipt', 'printed', 1, ?, ?, ?)", now, now, now)
	require.NoError(t, err)
	_, err = raw.Exec("INSERT INTO print_queue(id, kind, created_at, updated_at) VALUES('x', 'pickup', ?, ?)", now, now)
	require.ErrorContains(t, err, "CHECK constraint failed", "schema 6 has no pickup kind")
	require.NoError(t, raw.Close())

	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	ms, _ := Migrations()
	require.Equal(t, len(ms), db.SchemaVersion(), "and on through the later migrations")

	type row struct {
		pos            int
		id, kind, last string
	}
	var q []row
	rs, err := db.Read.Query("SELECT pos, id, kind, last_error FROM print_queue ORDER BY pos")
	require.NoError(t, err)
	for rs.Next() {
		var r row
		require.NoError(t, rs.Scan(&r.pos, &r.id, &r.kind, &r.last))
		q = append(q, r)
	}
	require.NoError(t, rs.Err())
	rs.Close()
	require.Equal(t, []row{{10, "q-a", "receipt", "paper out"}, {11, "q-b", "return", "paper out"}, {12, "q-c", "copy", "paper out"}}, q)
	var printedAt time.Time
	var state string
	require.NoError(t, db.Read.QueryRow("SELECT state FROM print_jobs WHERE id = 'h-1'").Scan(&state))
	require.Equal(t, "printed", state)
	require.NoError(t, db.Read.QueryRow("SELECT printed_at FROM print_history WHERE id = 'h-1'").Scan(&printedAt))
	require.True(t, now.Equal(printedAt), "times kept as times")
	var n int
	require.NoError(t, db.Read.QueryRow("SELECT COUNT(*) FROM print_jobs").Scan(&n))
	require.Equal(t, 4, n)

	_, err = db.Write.Exec("INSERT INTO print_queue(id, kind, created_at, updated_at) VALUES('p-1', 'pickup', ?, ?)", now, now)
	require.NoError(t, err)
	var pos int
	require.NoError(t, db.Read.QueryRow("SELECT pos FROM print_queue WHERE id = 'p-1'").Scan(&pos))
	require.Equal(t, 13, pos, "queued behind the jobs that were waiting")
	_, err = db.Write.Exec(`INSERT INTO print_history(id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at)
		SELECT id, sale_id, receipt, kind, 'printed', attempts + 1, '', created_at, ?, ? FROM print_queue WHERE id = 'p-1'`, now, now)
	require.NoError(t, err, "a pickup slip moves to the history when printed")
	_, err = db.Write.Exec("INSERT INTO print_queue(id, kind, created_at, updated_at) VALUES('p-2', 'label', ?, ?)", now, now)
	require.ErrorContains(t, err, "CHECK constraint failed", "the queue still checks the kind")

	var ck string
	require.NoError(t, db.Read.QueryRow("PRAGMA integrity_check").Scan(&ck))
	require.Equal(t, "ok", ck)
}

// TestMigration8AddsReturnPoints upgrades a schema-7 file with a return:
// it moved no points (it was recorded before returns moved any) and HQ has
// nothing to confirm for it.
func TestMigration8AddsReturnPoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pos.db")
	raw := createAtVersion(t, path, 7)
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	_, err := raw.Exec("INSERT INTO returns(id, receipt, channel, cashier, business_day, total, created_at) VALUES('r1', 'T1-R00001', 'blind', '1001', '2026-11-20', 500, ?)", now)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	require.GreaterOrEqual(t, db.SchemaVersion(), 8)
	var member sql.NullString
	var taken, given int64
	var seq sql.NullInt64
	require.NoError(t, db.Read.QueryRow("SELECT member, points_taken, points_given, outbox_seq FROM returns WHERE id = 'r1'").Scan(&member, &taken, &given, &seq))
	require.False(t, member.Valid)
	require.Zero(t, taken+given)
	require.False(t, seq.Valid)
}
