package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
)

// PrintJob is an entry of the durable print queue. A job is queued in the
// transaction of what it prints (CompleteSale queues the receipt with the
// sale), so a crash never loses a receipt; the printer driver takes jobs
// with NextQueued and reports with MarkPrinted or MarkAttempt.
//
// Pending jobs live in print_queue, a table that stays a page or two while
// the printer keeps up, so queueing a receipt costs the sale's commit one
// page (the old single table cost it about three: its rows and a partial
// index, both splitting as history grew). A job moves to print_history when
// it is printed or given up, in the print worker's transaction. The view
// print_jobs shows both, as the table used to (migration 0006).
type PrintJob struct {
	ID     string `json:"id"`
	SaleID string `json:"sale_id,omitempty"`
	// Receipt is the sale's receipt number; for a "return" job the
	// return's number, for a "pickup" job the order's pickup code, for a
	// "report" job the business day whose Z report to print (see ZReport).
	Receipt   string    `json:"receipt,omitempty"`
	Kind      string    `json:"kind"` // PrintReceipt, PrintCopy, PrintReturn, PrintReport or PrintPickup
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	PrintedAt time.Time `json:"printed_at,omitzero"`
}

func scanJobs(rows *sql.Rows) ([]PrintJob, error) {
	defer rows.Close()
	var out []PrintJob
	for rows.Next() {
		var j PrintJob
		var sale, receipt sql.NullString
		var printed sql.NullTime
		if err := rows.Scan(&j.ID, &sale, &receipt, &j.Kind, &j.State, &j.Attempts, &j.LastError, &j.CreatedAt, &printed); err != nil {
			return nil, err
		}
		j.SaleID, j.Receipt = sale.String, receipt.String
		j.CreatedAt = j.CreatedAt.UTC()
		if printed.Valid {
			j.PrintedAt = printed.Time.UTC()
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

const jobCols = "id, sale_id, receipt, kind, state, attempts, last_error, created_at, printed_at"

// queueCols are jobCols of a print_queue row.
const queueCols = "id, sale_id, receipt, kind, 'queued', attempts, last_error, created_at, NULL"

// queuedPos finds a pending job's queue position. The queue is small and
// has no index on id (one would be another page per sale); the scan runs
// in queue order and stops at the first match, so the job at the head,
// the one the print worker just printed, is found at once.
const queuedPos = "(SELECT pos FROM print_queue WHERE id = ? ORDER BY pos LIMIT 1)"

// QueuedPrintJobs returns queued jobs, oldest first: a restarted agent
// resumes them.
func (l *Ledger) QueuedPrintJobs(ctx context.Context, limit int) ([]PrintJob, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+queueCols+" FROM print_queue ORDER BY pos LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	return scanJobs(rows)
}

// NextQueued returns the oldest queued job, or ErrNotFound when the queue
// is empty.
func (l *Ledger) NextQueued(ctx context.Context) (PrintJob, error) {
	js, err := l.QueuedPrintJobs(ctx, 1)
	if err != nil {
		return PrintJob{}, fmt.Errorf("next print job: %w", err)
	}
	if len(js) == 0 {
		return PrintJob{}, fmt.Errorf("next print job: %w", ErrNotFound)
	}
	return js[0], nil
}

// Enqueue queues a print job inside tx, the transaction that records what
// it prints. kind is one of the Print kinds (slips.go); the job gets a new
// id.
func (l *Ledger) Enqueue(ctx context.Context, tx *sql.Tx, kind, saleID, receipt string) (PrintJob, error) {
	return l.enqueue(ctx, tx, kind, saleID, receipt)
}

func (l *Ledger) enqueue(ctx context.Context, tx *sql.Tx, kind, saleID, receipt string) (PrintJob, error) {
	return l.enqueueAs(ctx, tx, uuid.Must(uuid.NewV7()).String(), kind, saleID, receipt)
}

// enqueueAs queues a job with the id of the record it prints (a return
// slip has its return's id, a pickup slip its hand-over's), so the record
// finds its slip's state by key. Such ids are UUIDv7s, unique as every
// job id must be.
func (l *Ledger) enqueueAs(ctx context.Context, tx *sql.Tx, id, kind, saleID, receipt string) (PrintJob, error) {
	now := l.now()
	j := PrintJob{ID: id, SaleID: saleID, Receipt: receipt, Kind: kind, State: "queued", CreatedAt: now}
	_, err := tx.ExecContext(ctx, insQueueSQL, j.ID, nullStr(saleID), nullStr(receipt), kind, now, now)
	if err != nil {
		return PrintJob{}, fmt.Errorf("enqueue %s print job: %w", kind, err)
	}
	return j, nil
}

// insQueueSQL queues a job (kind is checked by the table).
const insQueueSQL = "INSERT INTO print_queue(id, sale_id, receipt, kind, created_at, updated_at) VALUES(?, ?, ?, ?, ?, ?)"

// PrintJobs returns the newest jobs first.
//
// Both tables are read in one read transaction (one snapshot, so a job
// moving between them is seen once) and merged here: through the print_jobs
// view the driver would see the times as text.
func (l *Ledger) PrintJobs(ctx context.Context, limit int) ([]PrintJob, error) {
	tx, err := l.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var out []PrintJob
	for _, q := range []string{
		"SELECT " + queueCols + " FROM print_queue ORDER BY pos DESC LIMIT ?",
		"SELECT " + jobCols + " FROM print_history ORDER BY created_at DESC LIMIT ?",
	} {
		rows, err := tx.QueryContext(ctx, q, limit)
		if err != nil {
			return nil, err
		}
		js, err := scanJobs(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, js...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out[:min(len(out), max(limit, 0))], nil
}

// MarkPrinted records that the printer confirmed job id. It is called only
// after the printer reported a healthy state after the job. A queued job
// moves to the history; one already there (printed, or given up) is marked
// printed where it is.
func (l *Ledger) MarkPrinted(ctx context.Context, id string) error {
	now := l.now()
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		moved, err := l.unqueue(ctx, tx, id, "printed", "", now, now)
		if err != nil || moved {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE print_history SET state = 'printed', attempts = attempts + 1, printed_at = ?, updated_at = ?, last_error = '' WHERE id = ?", now, now, id)
		return jobUpdated(res, err, id)
	})
}

// unqueue moves pending job id to the history in state with one more
// attempt; moved is false when id is not queued.
func (l *Ledger) unqueue(ctx context.Context, tx *sql.Tx, id, state, lastError string, now time.Time, printedAt any) (moved bool, err error) {
	var p sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT "+queuedPos, id).Scan(&p); err != nil {
		return false, fmt.Errorf("print job %s: %w", id, err)
	}
	if !p.Valid {
		return false, nil
	}
	pos := p.Int64
	_, err = tx.ExecContext(ctx, `INSERT INTO print_history(id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at)
		SELECT id, sale_id, receipt, kind, ?, attempts + 1, ?, created_at, ?, ? FROM print_queue WHERE pos = ?`, state, lastError, now, printedAt, pos)
	if err != nil {
		return false, fmt.Errorf("print job %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM print_queue WHERE pos = ?", pos); err != nil {
		return false, fmt.Errorf("print job %s: %w", id, err)
	}
	return true, nil
}

// MarkAttempt is MarkPrintAttempt.
func (l *Ledger) MarkAttempt(ctx context.Context, id string, cause error, failed bool) error {
	return l.MarkPrintAttempt(ctx, id, cause, failed)
}

// MarkPrintAttempt records a failed attempt; the job stays queued unless
// failed is true (a job that can never print, e.g. its sale is gone), when
// it moves to the history as failed. A job already in the history is
// marked there, or, with failed false, queued again at the end.
func (l *Ledger) MarkPrintAttempt(ctx context.Context, id string, cause error, failed bool) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	now := l.now()
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if failed {
			moved, err := l.unqueue(ctx, tx, id, "failed", msg, now, nil)
			if err != nil || moved {
				return err
			}
			res, err := tx.ExecContext(ctx, "UPDATE print_history SET state = 'failed', attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?", msg, now, id)
			return jobUpdated(res, err, id)
		}
		res, err := tx.ExecContext(ctx, "UPDATE print_queue SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE pos = "+queuedPos, msg, now, id)
		if err != nil {
			return fmt.Errorf("print job %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO print_queue(id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at)
			SELECT id, sale_id, receipt, kind, attempts + 1, ?, created_at, ? FROM print_history WHERE id = ?`, msg, now, id)
		if err := jobUpdated(res, err, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM print_history WHERE id = ?", id)
		return err
	})
}

func jobUpdated(res sql.Result, err error, id string) error {
	if err != nil {
		return fmt.Errorf("print job %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("print job %s: %w", id, ErrNotFound)
	}
	return nil
}

// Reprint queues a copy of a sale's receipt.
func (l *Ledger) Reprint(ctx context.Context, saleID string) (PrintJob, error) {
	s, err := l.getStored(ctx, saleID)
	if err != nil {
		return PrintJob{}, err
	}
	if s.Receipt == "" {
		return PrintJob{}, fmt.Errorf("reprint %s: %w: not completed", saleID, ErrSaleState)
	}
	var j PrintJob
	err = l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		j, err = l.enqueue(ctx, tx, "copy", saleID, s.Receipt)
		return err
	})
	if err != nil {
		return PrintJob{}, fmt.Errorf("reprint %s: %w", saleID, err)
	}
	return j, nil
}

// PrintJob returns one job.
func (l *Ledger) PrintJob(ctx context.Context, id string) (PrintJob, error) {
	tx, err := l.db.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return PrintJob{}, err
	}
	defer tx.Rollback()
	for _, q := range []string{
		"SELECT " + queueCols + " FROM print_queue WHERE pos = " + queuedPos,
		"SELECT " + jobCols + " FROM print_history WHERE id = ?",
	} {
		rows, err := tx.QueryContext(ctx, q, id)
		if err != nil {
			return PrintJob{}, err
		}
		js, err := scanJobs(rows)
		if err != nil {
			return PrintJob{}, err
		}
		if len(js) > 0 {
			return js[0], nil
		}
	}
	return PrintJob{}, errors.Join(ErrNotFound, fmt.Errorf("print job %s", id))
}
