package devset

import (
	"context"
	"errors"
	"time"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/printer"
)

// Print states in "print" UI events.
const (
	PrintPrinted = "printed" // the printer confirmed the job
	PrintQueued  = "queued"  // a retryable failure: it waits in the queue
	PrintFailed  = "failed"  // it can never print
)

// printEvent is the "print" UI event: the screen refreshes the job's
// state (agent/web/static/app.js listens for "print").
type printEvent struct {
	Job     string `json:"job"`
	Kind    string `json:"kind"`
	SaleID  string `json:"sale_id,omitempty"`
	Receipt string `json:"receipt,omitempty"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

// work is the print worker: it drains the queue when woken (PrintNow, the
// printer healthy again), every Rescan, and after a retryable failure
// once its backoff has passed. It runs until Stop.
func (s *Set) work(ctx context.Context) {
	defer s.worker.Done()
	bo := devices.Backoff{Min: s.opts.RetryMin, Max: s.opts.RetryMax}
	var throttle devices.Throttle
	throttle.Interval = time.Minute
	// unmarked holds jobs the printer confirmed whose MarkPrinted failed:
	// they are marked again, never printed again, while this process lives.
	unmarked := map[string]bool{}
	timer := time.NewTimer(0) // drain once at start: a restarted agent resumes
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
			bo.Reset() // a person or the printer asked: try now
		case <-timer.C:
		}
		next := s.opts.Rescan
		if s.drain(ctx, unmarked, &throttle) {
			next = bo.Next()
		} else {
			bo.Reset()
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// drain prints queued jobs oldest first until the queue is empty (false)
// or a retryable failure stops it (true: retry after a backoff). The
// oldest job blocks the ones behind it, so receipts come out in order.
func (s *Set) drain(ctx context.Context, unmarked map[string]bool, throttle *devices.Throttle) (retry bool) {
	l := s.a.Ledger()
	for {
		select {
		case <-s.stop:
			return false
		default:
		}
		job, err := l.NextQueued(ctx)
		if errors.Is(err, agent.ErrNotFound) {
			return false
		}
		if err != nil {
			s.logOnce(throttle, "read print queue", err)
			return true
		}
		if unmarked[job.ID] {
			if err := l.MarkPrinted(ctx, job.ID); err != nil {
				s.logOnce(throttle, "mark print job printed", err, "job", job.ID)
				return true
			}
			delete(unmarked, job.ID)
			s.publish(job, PrintPrinted, nil)
			continue
		}
		if s.printer == nil {
			return false // no printer: jobs wait (and can be reprinted elsewhere)
		}
		out, err := s.render(ctx, job, s.layout)
		if err != nil {
			if !isPermanent(err) {
				s.logOnce(throttle, "lay out print job", err, "job", job.ID)
				return true
			}
			s.log.Error("print job can never print: marked failed", "job", job.ID, "kind", job.Kind, "sale", job.SaleID, devices.LogErr, err)
			if merr := l.MarkPrintAttempt(ctx, job.ID, err, true); merr != nil {
				s.logOnce(throttle, "mark print job failed", merr, "job", job.ID)
				return true
			}
			s.publish(job, PrintFailed, err)
			continue
		}
		if out.Replaced > 0 {
			s.log.Warn("receipt has characters the printer cannot print: printed as '?'", "job", job.ID, "receipt", job.Receipt, "replaced", out.Replaced)
		}
		err = s.printer.Print(ctx, job.ID, out.Data)
		if ctx.Err() != nil {
			return false // shutting down: the job stays queued as it is
		}
		switch {
		case err == nil:
			throttle.Reset()
			if merr := l.MarkPrinted(ctx, job.ID); merr != nil {
				unmarked[job.ID] = true
				s.logOnce(throttle, "mark print job printed", merr, "job", job.ID)
				return true
			}
			s.publish(job, PrintPrinted, nil)
		case printer.IsRetryable(err):
			if merr := l.MarkPrintAttempt(ctx, job.ID, err, false); merr != nil {
				s.logOnce(throttle, "record print attempt", merr, "job", job.ID)
			}
			s.publish(job, PrintQueued, err)
			return true
		default:
			s.log.Error("print job refused by the printer: marked failed", "job", job.ID, devices.LogErr, err)
			if merr := l.MarkPrintAttempt(ctx, job.ID, err, true); merr != nil {
				s.logOnce(throttle, "mark print job failed", merr, "job", job.ID)
				return true
			}
			s.publish(job, PrintFailed, err)
		}
	}
}

func (s *Set) publish(job agent.PrintJob, state string, err error) {
	ev := printEvent{Job: job.ID, Kind: job.Kind, SaleID: job.SaleID, Receipt: job.Receipt, State: state}
	if err != nil {
		ev.Error = err.Error()
	}
	s.a.Hub().Publish("print", ev)
}

// logOnce logs a repeated failure at most once a minute.
func (s *Set) logOnce(t *devices.Throttle, what string, err error, attrs ...any) {
	if ok, n := t.Allow(time.Now()); ok {
		s.log.Warn(what, append(attrs, devices.LogErr, err, "suppressed", n)...)
	}
}
