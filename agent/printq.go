package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// PrintJob is an entry of the durable print queue.
type PrintJob struct {
	ID        string    `json:"id"`
	SaleID    string    `json:"sale_id,omitempty"`
	Receipt   string    `json:"receipt,omitempty"`
	Kind      string    `json:"kind"` // receipt, copy, return, report
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
		_, err := tx.ExecContext(ctx, "UPDATE print_jobs SET state = 'printed', attempts = attempts + 1, printed_at = ?, updated_at = ?, last_error = '' WHERE id = ?", now, now, id)
		return err
	})
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
		_, err := tx.ExecContext(ctx, "UPDATE print_jobs SET state = ?, attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?", state, msg, l.now(), id)
		return err
	})
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
	now := l.now()
	j := PrintJob{ID: uuid.Must(uuid.NewV7()).String(), SaleID: saleID, Receipt: s.Receipt, Kind: "copy", State: "queued", CreatedAt: now}
	err = l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO print_jobs(id, sale_id, receipt, kind, state, created_at, updated_at) VALUES(?, ?, ?, 'copy', 'queued', ?, ?)",
			j.ID, saleID, s.Receipt, now, now)
		return err
	})
	return j, err
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
