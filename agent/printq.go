package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// PrintJob is an entry of the durable print queue. A job is queued in the
// transaction of what it prints (CompleteSale queues the receipt with the
// sale), so a crash never loses a receipt; the printer driver takes jobs
// with NextQueued and reports with MarkPrinted or MarkAttempt.
type PrintJob struct {
	ID     string `json:"id"`
	SaleID string `json:"sale_id,omitempty"`
	// Receipt is the sale's receipt number; for a "report" job, the
	// business day whose Z report to print (see ZReport).
	Receipt   string    `json:"receipt,omitempty"`
	Kind      string    `json:"kind"` // receipt, copy (a reprint, marked as such), return, report
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

// QueuedPrintJobs returns queued jobs, oldest first: a restarted agent
// resumes them.
func (l *Ledger) QueuedPrintJobs(ctx context.Context, limit int) ([]PrintJob, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+jobCols+" FROM print_jobs WHERE state = 'queued' ORDER BY created_at LIMIT ?", limit)
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
// it prints. kind is receipt, copy, return or report.
func (l *Ledger) Enqueue(ctx context.Context, tx *sql.Tx, kind, saleID, receipt string) (PrintJob, error) {
	return l.enqueue(ctx, tx, kind, saleID, receipt)
}

func (l *Ledger) enqueue(ctx context.Context, tx *sql.Tx, kind, saleID, receipt string) (PrintJob, error) {
	now := l.now()
	j := PrintJob{ID: uuid.Must(uuid.NewV7()).String(), SaleID: saleID, Receipt: receipt, Kind: kind, State: "queued", CreatedAt: now}
	_, err := tx.ExecContext(ctx, "INSERT INTO print_jobs(id, sale_id, receipt, kind, state, created_at, updated_at) VALUES(?, ?, ?, ?, 'queued', ?, ?)",
		j.ID, nullStr(saleID), nullStr(receipt), kind, now, now)
	if err != nil {
		return PrintJob{}, fmt.Errorf("enqueue %s print job: %w", kind, err)
	}
	return j, nil
}

// PrintJobs returns the newest jobs first.
func (l *Ledger) PrintJobs(ctx context.Context, limit int) ([]PrintJob, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+jobCols+" FROM print_jobs ORDER BY created_at DESC LIMIT ?", limit)
	if err != nil {
		return nil, err
	}
	return scanJobs(rows)
}

// MarkPrinted records that the printer confirmed job id. It is called only
// after the printer reported a healthy state after the job.
func (l *Ledger) MarkPrinted(ctx context.Context, id string) error {
	now := l.now()
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE print_jobs SET state = 'printed', attempts = attempts + 1, printed_at = ?, updated_at = ?, last_error = '' WHERE id = ?", now, now, id)
		return jobUpdated(res, err, id)
	})
}

// MarkAttempt is MarkPrintAttempt.
func (l *Ledger) MarkAttempt(ctx context.Context, id string, cause error, failed bool) error {
	return l.MarkPrintAttempt(ctx, id, cause, failed)
}

// MarkPrintAttempt records a failed attempt; the job stays queued unless
// failed is true (a job that can never print, e.g. its sale is gone).
func (l *Ledger) MarkPrintAttempt(ctx context.Context, id string, cause error, failed bool) error {
	state := "queued"
	if failed {
		state = "failed"
	}
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE print_jobs SET state = ?, attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?", state, msg, l.now(), id)
		return jobUpdated(res, err, id)
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
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+jobCols+" FROM print_jobs WHERE id = ?", id)
	if err != nil {
		return PrintJob{}, err
	}
	js, err := scanJobs(rows)
	if err != nil {
		return PrintJob{}, err
	}
	if len(js) == 0 {
		return PrintJob{}, errors.Join(ErrNotFound, fmt.Errorf("print job %s", id))
	}
	return js[0], nil
}
