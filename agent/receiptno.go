package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// receiptBlock is how many receipt numbers the counters row reserves at a
// time. It divides every power of ten from 10^6 up, so a block never
// straddles a change of width of the printed number (999999 → 1000000) and
// the numbers of one block sort as text in numeric order.
const receiptBlock = 100

// receiptSeq hands out a terminal's receipt numbers: consecutive, never
// reused, in the sale's transaction. The old way, one UPDATE of the
// counters row per sale, cost every sale commit one more page; now the row
// holds the end of a reserved block of receiptBlock numbers and is written
// once per block. The last number issued is kept in memory and, when
// unknown (start, or after a failed transaction), read back from the sales
// themselves: it is the highest receipt of the reserved block, one index
// seek on the receipt's unique index.
//
// Invariant: counters 'receipt' (R) ≥ every number issued, and the highest
// number issued lies in R's block [R − R mod B, R]: a sale either takes a
// number ≤ R, or moves R to the end of its number's block in its own
// transaction. A file from before this scheme holds the last number itself,
// which satisfies both. The fields are guarded by Ledger.mu, which
// CompleteSale holds across its transaction.
type receiptSeq struct {
	terminal string
	known    bool
	last     int64 // last number committed
	end      int64 // R, as last read or written
	// pendingEnd is R after the open transaction, applied by commit.
	pendingEnd int64
}

// text is the printed receipt number.
func (r *receiptSeq) text(n int64) string { return fmt.Sprintf("%s-%06d", r.terminal, n) }

// next returns the number for the sale being written in tx, reserving the
// next block in tx when it runs past the reserved one.
func (r *receiptSeq) next(ctx context.Context, tx *sql.Tx) (int64, error) {
	if !r.known {
		if err := r.recover(ctx, tx); err != nil {
			return 0, fmt.Errorf("receipt number: %w", err)
		}
	}
	n := r.last + 1
	r.pendingEnd = r.end
	if n > r.end {
		r.pendingEnd = n - n%receiptBlock + receiptBlock - 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters(name, value) VALUES('receipt', ?)
			ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)`, r.pendingEnd); err != nil {
			return 0, fmt.Errorf("receipt number: %w", err)
		}
	}
	return n, nil
}

// recover reads the last number issued from the database (in tx, so no
// other writer moves it meanwhile).
func (r *receiptSeq) recover(ctx context.Context, tx *sql.Tx) error {
	var end int64
	err := tx.QueryRowContext(ctx, "SELECT value FROM counters WHERE name = 'receipt'").Scan(&end)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	last := end // no receipt of ours in the block: carry on above it
	if end > 0 {
		lo, hi := r.text(end-end%receiptBlock), r.text(end)
		var got string
		err := tx.QueryRowContext(ctx, "SELECT receipt FROM sales WHERE receipt >= ? AND receipt <= ? AND length(receipt) = ? ORDER BY receipt DESC LIMIT 1",
			lo, hi, len(hi)).Scan(&got)
		switch {
		case err == nil:
			v, perr := strconv.ParseInt(strings.TrimPrefix(got, r.terminal+"-"), 10, 64)
			if perr != nil {
				return fmt.Errorf("receipt %q: %w", got, perr)
			}
			last = v
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	r.last, r.end, r.known = last, end, true
	return nil
}

// commit records that the transaction that took n committed.
func (r *receiptSeq) commit(n int64) { r.last, r.end = n, r.pendingEnd }

// forget makes the next call read the numbers back from the database: the
// transaction failed, or another writer on the file took the number.
func (r *receiptSeq) forget() { r.known = false }

// taken reports whether err is the receipt's unique index refusing a
// number (another Ledger or process on the same file issued it).
func receiptTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: sales.receipt")
}
