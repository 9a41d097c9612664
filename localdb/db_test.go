package localdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func openTest(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "pos.db"), Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close(context.Background()) })
	return db
}

func appendN(tb testing.TB, db *DB, n int) []Event {
	tb.Helper()
	var out []Event
	require.NoError(tb, db.WriteTx(context.Background(), func(tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			ev, err := AppendEvent(context.Background(), tx, "sale.completed", map[string]int{"i": i}, time.Now())
			if err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	}))
	return out
}

func TestOpenSetsPragmas(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	var mode string
	var sync, fk int
	require.NoError(t, db.Write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	require.NoError(t, db.Write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	require.NoError(t, db.Write.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	require.Equal(t, "wal", mode)
	require.Equal(t, 2, sync, "synchronous=FULL")
	require.Equal(t, 1, fk)
	require.NotEmpty(t, db.ID())
	ms, err := Migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), db.SchemaVersion())
}

func TestReopenKeepsIdentityAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pos.db")
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	id := db.ID()
	appendN(t, db, 3)
	require.NoError(t, db.Close(ctx))
	db, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	require.Equal(t, id, db.ID())
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, st.Backlog)
}

func TestOpenRefusesNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pos.db")
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	_, err = db.Write.ExecContext(ctx, "INSERT INTO schema_migrations(version, name, applied_at) VALUES(999, 'future', ?)", time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, db.Close(ctx))
	_, err = Open(ctx, path, Options{})
	require.ErrorIs(t, err, ErrTooNew)
	require.Contains(t, err.Error(), "999")
}

func TestOpenRefusesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pos.db")
	require.NoError(t, os.WriteFile(path, []byte("this is not a sqlite database, just some text that is long enough to matter............................................"), 0o600))
	_, err := Open(context.Background(), path, Options{})
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestOpenRefusesBadSynchronous(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "pos.db"), Options{Synchronous: "OFF; DROP TABLE x"})
	require.Error(t, err)
}

func TestOutboxSeqOrderAckPrune(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	evs := appendN(t, db, 10)
	for i, e := range evs {
		require.EqualValues(t, i+1, e.Seq)
	}
	// A rolled-back transaction consumes no seq.
	err := db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := AppendEvent(ctx, tx, "sale.completed", map[string]int{}, time.Now()); err != nil {
			return err
		}
		return sql.ErrTxDone
	})
	require.Error(t, err)
	next := appendN(t, db, 1)
	require.EqualValues(t, 11, next[0].Seq)

	got, err := db.NextEvents(ctx, 0, 4, 0)
	require.NoError(t, err)
	require.Len(t, got, 4)
	require.EqualValues(t, 1, got[0].Seq)
	require.JSONEq(t, `{"i":0}`, string(got[0].Payload))

	got, err = db.NextEvents(ctx, 0, 100, 20) // each payload is 7 bytes
	require.NoError(t, err)
	require.Len(t, got, 2, "byte bound")

	n, err := db.AckThrough(ctx, 5)
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 6, st.Backlog)
	require.EqualValues(t, 6, st.FirstUnacked)
	require.EqualValues(t, 5, st.AckedSeq)
	require.EqualValues(t, 11, st.LastSeq)
	require.False(t, st.OldestUnacked.IsZero())

	got, err = db.NextEvents(ctx, 0, 100, 0)
	require.NoError(t, err)
	require.EqualValues(t, 6, got[0].Seq)

	pruned, err := db.PruneAcked(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 5, pruned)
	st, err = db.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.AckedSeq, "acked cursor survives pruning")

	_, err = db.AckThrough(ctx, 11)
	require.NoError(t, err)
	_, err = db.PruneAcked(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	next = appendN(t, db, 1)
	require.EqualValues(t, 12, next[0].Seq, "seq never reused after pruning everything")
}

func TestOutboxRebaseForReinstalledTerminal(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	appendN(t, db, 3)
	shift, err := db.Rebase(ctx, 500)
	require.NoError(t, err)
	require.EqualValues(t, 500, shift)
	got, err := db.NextEvents(ctx, 0, 10, 0)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.EqualValues(t, []int64{501, 502, 503}, []int64{got[0].Seq, got[1].Seq, got[2].Seq})
	next := appendN(t, db, 1)
	require.EqualValues(t, 504, next[0].Seq)

	// Rebase on an empty queue only raises the sequence.
	db2 := openTest(t)
	shift, err = db2.Rebase(ctx, 42)
	require.NoError(t, err)
	require.Zero(t, shift)
	require.EqualValues(t, 43, appendN(t, db2, 1)[0].Seq)
}

func TestAckBeyondLastSeqRaisesSequence(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	appendN(t, db, 2)
	_, err := db.AckThrough(ctx, 90) // HQ holds more than this restored file
	require.NoError(t, err)
	require.EqualValues(t, 91, appendN(t, db, 1)[0].Seq)
}

func TestRejectDeadLettersWithoutBlocking(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	appendN(t, db, 3)
	require.NoError(t, db.Reject(ctx, 2, "schema: bad payload"))
	got, err := db.NextEvents(ctx, 0, 10, 0)
	require.NoError(t, err)
	require.Len(t, got, 2)
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Rejected)
	_, err = db.AckThrough(ctx, 3)
	require.NoError(t, err)
	_, err = db.PruneAcked(ctx, time.Now().Add(time.Hour))
	require.NoError(t, err)
	var n int
	require.NoError(t, db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE rejected IS NOT NULL").Scan(&n))
	require.Equal(t, 1, n, "rejected rows are kept for the report")
}

func TestBackupIsAConsistentCopy(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	appendN(t, db, 5)
	dest := filepath.Join(t.TempDir(), "backup.db")
	require.NoError(t, db.Backup(ctx, dest))
	cp, err := Open(ctx, dest, Options{})
	require.NoError(t, err)
	defer cp.Close(ctx)
	st, err := cp.OutboxState(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Backlog)
	require.Equal(t, db.ID(), cp.ID())
	require.Error(t, db.Backup(ctx, db.Path()), "refuses to overwrite itself")
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".*.tmp"))
	require.Empty(t, tmps, "no temp file left behind")
}

func TestOutboxStateBacklogMatchesCount(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	check := func(step string) {
		t.Helper()
		st, err := db.OutboxState(ctx)
		require.NoError(t, err)
		var n int64
		require.NoError(t, db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox WHERE acked = 0").Scan(&n))
		require.Equal(t, n, st.Backlog, step)
	}
	check("empty")
	appendN(t, db, 10)
	check("ten")
	require.NoError(t, db.Reject(ctx, 4, "bad"))
	require.NoError(t, db.Reject(ctx, 9, "bad"))
	check("two rejected")
	_, err := db.AckThrough(ctx, 5)
	require.NoError(t, err)
	check("acked prefix")
	_, err = db.Rebase(ctx, 100)
	require.NoError(t, err)
	check("rebased")
	_, err = db.AckThrough(ctx, 200)
	require.NoError(t, err)
	check("all acked")
	appendN(t, db, 3)
	check("more after")
}

func TestAppendEventRefusesPayloadsHQRefuses(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	for name, raw := range map[string]string{
		"not JSON":        `{"a":`,
		"duplicate name":  `{"a":1,"a":2}`,
		"invalid UTF-8":   "{\"a\":\"\xff\"}",
		"trailing tokens": `{"a":1} 2`,
	} {
		t.Run(name, func(t *testing.T) {
			err := db.WriteTx(ctx, func(tx *sql.Tx) error {
				_, err := AppendEvent(ctx, tx, "sale.completed", json.RawMessage(raw), time.Now())
				return err
			})
			require.ErrorContains(t, err, "not valid JSON")
		})
	}
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.Zero(t, st.LastSeq, "nothing was queued")
}

func TestAckThroughLeavesWriterSynchronousFull(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	appendN(t, db, 3)
	n, err := db.AckThrough(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	var sync int
	require.NoError(t, db.Write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	require.Equal(t, 2, sync, "the relaxed ack commit restores synchronous=FULL for the sales after it")
	st, err := db.OutboxState(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), st.AckedSeq)
	require.Equal(t, int64(1), st.Backlog)
}
