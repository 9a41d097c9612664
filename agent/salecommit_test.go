package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// walPagesPerSale completes warm then n 5-line sales on f and returns, from
// the WAL's frame headers, how many pages the n sale commits wrote in all
// and by b-tree (dbstat names; page 1 is the file header). Automatic
// checkpoints are off for the measured sales so the WAL holds all their
// frames.
func walPagesPerSale(t *testing.T, f *fixture, warm, n int) (total float64, by map[string]float64) {
	t.Helper()
	ctx := context.Background()
	sale := func() {
		s := f.sale(t, "TEA500", "NOODLE", "MILK1L", "BREAD", "WATER")
		_, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
		require.NoError(t, err)
	}
	for i := 0; i < warm; i++ {
		sale()
	}
	// The write pool is one connection, so the pragmas stick to it.
	_, err := f.db.Write.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	require.NoError(t, err)
	_, err = f.db.Write.Exec("PRAGMA wal_autocheckpoint = 0")
	require.NoError(t, err)
	t.Cleanup(func() { f.db.Write.Exec("PRAGMA wal_autocheckpoint = 1000") })
	for i := 0; i < n; i++ {
		sale()
	}
	var pageSize int64
	require.NoError(t, f.db.Write.QueryRow("PRAGMA page_size").Scan(&pageSize))
	wal, err := os.ReadFile(f.path + "-wal")
	require.NoError(t, err)
	owner := map[uint32]string{1: "page1"}
	rows, err := f.db.Write.Query("SELECT name, pageno FROM dbstat WHERE pageno > 1")
	require.NoError(t, err)
	for rows.Next() {
		var name string
		var pg uint32
		require.NoError(t, rows.Scan(&name, &pg))
		owner[pg] = name
	}
	require.NoError(t, rows.Err())
	rows.Close()
	by = map[string]float64{}
	commits := 0
	// WAL format: a 32-byte header, then frames of a 24-byte header (page
	// number, then the database size in pages on a commit's last frame)
	// and the page.
	for off := int64(32); off+24+pageSize <= int64(len(wal)); off += 24 + pageSize {
		name := owner[binary.BigEndian.Uint32(wal[off:])]
		if name == "" {
			name = "(freed)"
		}
		by[name]++
		total++
		if binary.BigEndian.Uint32(wal[off+4:]) != 0 {
			commits++
		}
	}
	require.Equal(t, n, commits, "one commit per sale")
	for k := range by {
		by[k] /= float64(n)
	}
	return total / float64(n), by
}

// TestSaleCommitPages pins what a 5-line cash sale's commit writes to the
// WAL: the sale, its receipt index entry, its lines, stock, the outbox row,
// the print queue, and page 1 when the file grows. The sqlite_sequence
// page, the counters row, the unacked and queued indexes and the tenders
// table are gone from it (migration 0006); 15 pages a sale before, about 9
// now. The budget leaves room for split timing only.
func TestSaleCommitPages(t *testing.T) {
	f := newFixture(t)
	total, by := walPagesPerSale(t, f, 300, 200)
	names := make([]string, 0, len(by))
	for k := range by {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
	for _, k := range names {
		t.Logf("%-26s %.2f pages/sale", k, by[k])
	}
	t.Logf("total %.2f pages/sale", total)
	for _, gone := range []string{"sqlite_sequence", "outbox_unacked", "print_jobs_queued", "print_history", "sale_tenders", "meta"} {
		require.Zero(t, by[gone], "%s is not written by a sale", gone)
	}
	require.Less(t, by["counters"], 0.05, "the receipt counter is written once per %d sales", receiptBlock)
	require.LessOrEqual(t, total, 9.6)
}

// TestCompleteSaleRefusesATenderTheTableWouldHave: what sale_tenders'
// CHECKs refused is refused before anything is written.
func TestCompleteSaleRefusesATenderTheTableWouldHave(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, bad := range []Tender{{Kind: "cheque", Amount: 100}, {Kind: TenderCash, Amount: 0}, {Kind: TenderCash, Amount: -5}} {
		s := f.sale(t, "TEA500")
		f.l.mu.Lock()
		// Paid in full with the bad tender among the payments.
		f.l.carts[s.ID].Tenders = []Tender{{Kind: TenderCash, Amount: s.Total - min(bad.Amount, 0)}, bad}
		f.l.mu.Unlock()
		_, err := f.l.CompleteSale(ctx, s.ID, "")
		require.Error(t, err, "%+v", bad)
		if bad.Amount <= 0 {
			require.ErrorIs(t, err, ErrBadAmount)
		} else {
			require.ErrorContains(t, err, `kind "cheque"`)
		}
		var n int
		require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sales").Scan(&n))
		require.Zero(t, n, "nothing recorded")
	}
}

// TestPrintQueueMovesJobsOut: pending jobs live in print_queue and leave it
// for the history when printed or given up; every reader (PrintJobs,
// PrintJob, the sale's print state, the print_jobs view) sees one job in
// one place throughout, and a job given up can be queued again.
func TestPrintQueueMovesJobsOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var sales []*Sale
	for i := 0; i < 3; i++ {
		done, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "TEA500")).ID, "")
		require.NoError(t, err)
		sales = append(sales, done)
		f.now = f.now.Add(time.Second)
	}
	where := func(id string) (queued, history, view int) {
		require.NoError(t, f.db.Read.QueryRow("SELECT (SELECT COUNT(*) FROM print_queue WHERE id = ?1), (SELECT COUNT(*) FROM print_history WHERE id = ?1), (SELECT COUNT(*) FROM print_jobs WHERE id = ?1)", id).
			Scan(&queued, &history, &view))
		return
	}
	state := func(s *Sale) string {
		got, err := f.l.GetSale(ctx, s.ID)
		require.NoError(t, err)
		return got.PrintState
	}

	// The worker prints the head of the queue: it moves out.
	j, err := f.l.NextQueued(ctx)
	require.NoError(t, err)
	require.Equal(t, sales[0].ID, j.ID)
	require.NoError(t, f.l.MarkPrinted(ctx, j.ID))
	q, h, v := where(j.ID)
	require.Equal(t, [3]int{0, 1, 1}, [3]int{q, h, v})
	require.Equal(t, "printed", state(sales[0]))
	got, err := f.l.PrintJob(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "printed", got.State)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, f.now.UTC(), got.PrintedAt)

	// A failed attempt keeps the job queued, in place; giving up moves it.
	require.NoError(t, f.l.MarkPrintAttempt(ctx, sales[2].ID, errors.New("paper out"), false))
	q, h, _ = where(sales[2].ID)
	require.Equal(t, [2]int{1, 0}, [2]int{q, h})
	require.NoError(t, f.l.MarkPrintAttempt(ctx, sales[2].ID, errors.New("cutter jammed"), true))
	q, h, _ = where(sales[2].ID)
	require.Equal(t, [2]int{0, 1}, [2]int{q, h})
	got, err = f.l.PrintJob(ctx, sales[2].ID)
	require.NoError(t, err)
	require.Equal(t, "failed", got.State)
	require.Equal(t, 2, got.Attempts)
	require.Equal(t, "cutter jammed", got.LastError)
	require.Equal(t, "failed", state(sales[2]))

	// A job given up, retried (failed = false), is queued again at the end.
	require.NoError(t, f.l.MarkPrintAttempt(ctx, sales[2].ID, errors.New("retry"), false))
	queued, err := f.l.QueuedPrintJobs(ctx, 10)
	require.NoError(t, err)
	require.Len(t, queued, 2)
	require.Equal(t, []string{sales[1].ID, sales[2].ID}, []string{queued[0].ID, queued[1].ID})
	require.Equal(t, 3, queued[1].Attempts)
	require.Equal(t, "queued", state(sales[2]))

	// PrintJobs: every job once, newest first, queue and history merged.
	all, err := f.l.PrintJobs(ctx, 10)
	require.NoError(t, err)
	var ids []string
	for _, j := range all {
		ids = append(ids, j.ID)
	}
	require.Equal(t, []string{sales[2].ID, sales[1].ID, sales[0].ID}, ids)
	two, err := f.l.PrintJobs(ctx, 2)
	require.NoError(t, err)
	require.Len(t, two, 2)

	// A printed job printed again (a stale confirmation) stays in the
	// history; an unknown job is refused.
	require.NoError(t, f.l.MarkPrinted(ctx, sales[0].ID))
	got, err = f.l.PrintJob(ctx, sales[0].ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Attempts)
	require.ErrorIs(t, f.l.MarkPrinted(ctx, "no-such-job"), ErrNotFound)
	require.ErrorIs(t, f.l.MarkPrintAttempt(ctx, "no-such-job", nil, true), ErrNotFound)
	_, err = f.l.PrintJob(ctx, "no-such-job")
	require.ErrorIs(t, err, ErrNotFound)
}
