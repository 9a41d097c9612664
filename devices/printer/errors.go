package printer

import (
	"context"
	"errors"
	"fmt"
)

// printerError is a sentinel that knows whether a job that failed with it
// should stay queued.
type printerError struct {
	msg       string
	retryable bool
}

func (e *printerError) Error() string   { return e.msg }
func (e *printerError) Retryable() bool { return e.retryable }

// Sentinel errors of the package. The first group is retryable: the job
// stays in the print queue and is sent again later (IsRetryable).
var (
	// ErrPaperOut means the printer reports paper end.
	ErrPaperOut error = &printerError{"printer paper out", true}
	// ErrCoverOpen means the printer cover is open.
	ErrCoverOpen error = &printerError{"printer cover open", true}
	// ErrOffline means the printer reports itself offline.
	ErrOffline error = &printerError{"printer offline", true}
	// ErrNoStatus means the printer did not answer a status request in
	// time. A silent printer is never taken for a healthy one.
	ErrNoStatus error = &printerError{"no status reply", true}
	// ErrPrinterFault means a cutter, recoverable or unrecoverable error
	// (a jam can be cleared; the job waits).
	ErrPrinterFault error = &printerError{"printer error", true}
	// ErrNotConnected means the printer could not be reached at all (TCP
	// connect refused, device file absent: not plugged in).
	ErrNotConnected error = &printerError{"printer not connected", true}
	// ErrTransport means the connection failed while sending.
	ErrTransport error = &printerError{"printer connection failed", true}
	// ErrNotOpen means the driver is not open (or was closed).
	ErrNotOpen error = &printerError{"printer not open", true}
	// ErrBusy means the printer was busy with another job or query for
	// longer than the caller would wait.
	ErrBusy error = &printerError{"printer busy", true}

	// ErrBadJob means the job itself cannot be printed (empty data).
	ErrBadJob error = &printerError{"bad print job", false}
	// ErrBadConfig is wrapped by configuration errors.
	ErrBadConfig = errors.New("bad printer config")
	// ErrBadLayout is wrapped by receipt layout errors.
	ErrBadLayout = errors.New("bad receipt layout")
	// ErrConnLost is wrapped by transport errors when the printer closed
	// or reset the connection (EOF, ECONNRESET, EPIPE, device gone): the
	// next call reconnects.
	ErrConnLost = errors.New("printer connection lost")
	// ErrConnect is wrapped by transport errors when connecting (dial,
	// opening the device file) failed.
	ErrConnect = errors.New("cannot connect to printer")
	// ErrStatusUnsupported is wrapped when the transport cannot read
	// anything back: a USB printer-class device without a back channel
	// (the kernel answers EINVAL), or a file without read deadlines. Such
	// a printer needs StatusMode StatusNone.
	ErrStatusUnsupported = errors.New("printer gives no status back on this transport")
)

// IsRetryable reports whether a job that failed with err should stay
// queued and be printed later: paper out, cover open, offline, no status
// reply, printer fault, connection failure, a cancelled context. It is
// false for nil and for jobs that can never print.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Stage says where a print job failed.
type Stage string

// The stages of Print.
const (
	// StageBefore is the status check before sending: no byte of the job
	// was sent.
	StageBefore Stage = "status-before"
	// StageWrite is sending the job: some bytes may have reached the printer.
	StageWrite Stage = "write"
	// StageAfter is the status check after sending: the printer received
	// the whole job but did not confirm it is healthy.
	StageAfter Stage = "status-after"
)

// JobError is returned by Print. Use errors.Is with the sentinels, and
// IsRetryable to decide whether the job stays queued.
type JobError struct {
	JobID string
	Stage Stage
	// Sent reports whether bytes of the job may have reached the printer
	// (false only for StageBefore): a retry may then print it twice.
	Sent bool
	// Problems is the printer's own description, e.g. "paper end".
	Problems string
	Err      error
}

// Error says which job failed, where, why, and what the printer reported.
func (e *JobError) Error() string {
	s := fmt.Sprintf("print job %s: %s: %v", e.JobID, e.Stage, e.Err)
	if e.Problems != "" {
		s += " (" + e.Problems + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *JobError) Unwrap() error { return e.Err }
