package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// complete sells one TEA500 for cash on l and returns its receipt.
func (f *fixture) completeOn(tb testing.TB, l *Ledger) string {
	tb.Helper()
	ctx := context.Background()
	s, err := l.OpenSale(ctx, DemoCashier)
	require.NoError(tb, err)
	s, err = l.AddItem(ctx, s.ID, "TEA500", 1000)
	require.NoError(tb, err)
	s, err = l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: s.Total})
	require.NoError(tb, err)
	done, err := l.CompleteSale(ctx, s.ID, "")
	require.NoError(tb, err)
	return done.Receipt
}

func (f *fixture) receiptCounter(tb testing.TB) int64 {
	tb.Helper()
	var v int64
	require.NoError(tb, f.db.Read.QueryRow("SELECT value FROM counters WHERE name = 'receipt'").Scan(&v))
	return v
}

// TestReceiptNumbersConsecutiveAcrossBlocksAndRestarts: receipts run 1, 2,
// 3… with no gap across reserved blocks and restarts (a new Ledger reads
// the last number back from the sales), and the counters row is written
// once per block, not per sale.
func TestReceiptNumbersConsecutiveAcrossBlocksAndRestarts(t *testing.T) {
	f := newFixture(t)
	l := f.l
	for i := 1; i <= 2*receiptBlock+3; i++ {
		if i == 5 || i == receiptBlock || i == receiptBlock+1 || i == 2*receiptBlock {
			// A restart at and around block ends.
			var err error
			l, err = NewLedger(f.db, f.l.Config())
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
		}
		require.Equal(t, l.receipts.text(int64(i)), f.completeOn(t, l))
		require.EqualValues(t, (int64(i)/receiptBlock+1)*receiptBlock-1, f.receiptCounter(t), "block of %d reserved", i)
	}
}

// TestReceiptNumbersFromAnOlderFile: a file whose counters row holds the
// last number itself (the schema-4 code's way) carries on after it, also
// where the printed number widens.
func TestReceiptNumbersFromAnOlderFile(t *testing.T) {
	for _, last := range []int64{0, 1, 57, 99, 100, 999_999, 1_000_000} {
		f := newFixture(t)
		if last > 0 {
			_, err := f.db.Write.Exec("INSERT INTO counters(name, value) VALUES('receipt', ?)", last)
			require.NoError(t, err)
			// The last sale the old code recorded, and an older one.
			_, err = f.db.Write.Exec("INSERT INTO sales(id, state, receipt, cashier, created_at) VALUES('old-1', 'completed', ?, '1001', '2026-11-01'), ('old-2', 'voided', ?, '1001', '2026-11-01')",
				f.l.receipts.text(last), f.l.receipts.text(max(last-1, 0)))
			require.NoError(t, err)
		}
		l, err := NewLedger(f.db, f.l.Config())
		require.NoError(t, err)
		require.Equal(t, l.receipts.text(last+1), f.completeOn(t, l), "after %d", last)
		require.Equal(t, l.receipts.text(last+2), f.completeOn(t, l), "after %d", last)
		l.Close()
	}
}

// TestReceiptNumbersTwoLedgersOnOneFile: a second Ledger (or process) on
// the same file makes the first one's remembered number stale; the unique
// receipt index refuses the stale number and the sale takes the next free
// one, so receipts stay unique and consecutive.
func TestReceiptNumbersTwoLedgersOnOneFile(t *testing.T) {
	f := newFixture(t)
	l2, err := NewLedger(f.db, f.l.Config())
	require.NoError(t, err)
	defer l2.Close()
	var got []string
	for i, l := range []*Ledger{f.l, f.l, l2, f.l, l2, l2, f.l} {
		got = append(got, f.completeOn(t, l))
		require.Equal(t, f.l.receipts.text(int64(i+1)), got[i])
	}
}

// TestReceiptNumberNotTakenByAFailedSale: a sale that fails inside its
// transaction (here: completed twice behind the ledger's back) takes no
// number.
func TestReceiptNumberNotTakenByAFailedSale(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.Equal(t, "T1-000001", f.completeOn(t, f.l))
	s := f.pay(t, f.sale(t, "TEA500"))
	_, err := f.db.Write.Exec("INSERT INTO sales(id, state, cashier, created_at) VALUES(?, 'completed', '1001', '2026-11-01')", s.ID)
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, s.ID, "")
	require.ErrorIs(t, err, ErrSaleState)
	require.Equal(t, "T1-000002", f.completeOn(t, f.l))
}

// TestReceiptNumbersAfterTerminalRename: a renamed terminal finds none of
// its receipts in the reserved block and carries on above the block, so no
// number is issued twice.
func TestReceiptNumbersAfterTerminalRename(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 3; i++ {
		f.completeOn(t, f.l)
	}
	cfg := f.l.Config()
	cfg.Terminal = "T9"
	l, err := NewLedger(f.db, cfg)
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, "T9-000100", f.completeOn(t, l))
	require.Equal(t, "T9-000101", f.completeOn(t, l))
}
