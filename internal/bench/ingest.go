package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

// IngestOptions configure Ingest.
type IngestOptions struct {
	// Dir holds the stores' databases (and HQ's files).
	Dir string
	// Stores is how many stores upload at once, each a real terminal: its
	// own localdb file, its own sync/link.Link and MQTT client.
	Stores int
	// Events is how many sale events each store has queued when the links
	// start (the sustained-rate phase).
	Events int
	// LiveFor and LiveRate: afterwards every store commits LiveRate sales
	// per second for LiveFor while connected, and each event's time from
	// commit to the ack seen at the terminal is recorded.
	LiveFor  time.Duration
	LiveRate float64
	// Backend names the HQ store in the report ("sqlite", "postgres").
	Backend string
	// OpenStore opens a fresh, empty HQ store. It is called three times:
	// "raw" and "raw2" for the inserts without MQTT, "hq" for the service.
	OpenStore func(ctx context.Context, name string) (hq.Store, error)
	// Progress, if set, is told when each phase ends.
	Progress func(format string, args ...any)
}

// IngestResult holds the figures of one ingest run.
type IngestResult struct {
	Backend        string
	Stores, Events int
	Ours           time.Duration // every queued event outbox → broker → HQ committed → acked at its terminal
	RawInsert      time.Duration // the same batches into an empty store of the same kind, no MQTT; the faster of a run before and one after ours
	RawWriters     int
	Resends        int64 // times a link went back to its last ack in the sustained phase
	Lat            []time.Duration
	LiveRate       float64
	LiveFor        time.Duration
}

// ingestStore is one simulated store of the ingest run.
type ingestStore struct {
	id   string
	db   *localdb.DB
	last atomic.Int64 // highest seq written
	link *link.Link

	mu      sync.Mutex
	pending map[int64]time.Time // live events not yet acked: seq → commit time
	lat     []time.Duration
}

// onAck records, per event, the time from its commit to the ack that
// covers it, and signals done when the whole queue is acked.
func (s *ingestStore) onAck(through int64, done func()) {
	now := time.Now()
	s.mu.Lock()
	for seq, at := range s.pending {
		if seq <= through {
			s.lat = append(s.lat, now.Sub(at))
			delete(s.pending, seq)
		}
	}
	s.mu.Unlock()
	if through >= s.last.Load() {
		done()
	}
}

// Ingest measures HQ's sustained ingest with many stores uploading at once
// over the embedded broker, the raw insert of the same batches into the
// same kind of store without MQTT, and commit-to-ack latency under live
// selling.
func Ingest(ctx context.Context, o IngestOptions) (IngestResult, error) {
	r := IngestResult{Backend: o.Backend, Stores: o.Stores, Events: o.Events, LiveRate: o.LiveRate, LiveFor: o.LiveFor, RawWriters: 4}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	phase := time.Now()
	progress := func(what string) {
		o.Progress("ingest %s: %s in %s", o.Backend, what, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	if o.Stores <= 0 || o.Events <= 0 || o.OpenStore == nil {
		return r, errors.New("ingest: stores, events and OpenStore are required")
	}
	storeDir := filepath.Join(o.Dir, "stores")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return r, err
	}
	stores := make([]*ingestStore, o.Stores)
	defer func() {
		for _, s := range stores {
			if s != nil && s.db != nil {
				s.db.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	// Open and fill the stores' outboxes, two at a time (two cores).
	if err := parallel(ctx, o.Stores, 2, func(i int) error {
		s := &ingestStore{id: fmt.Sprintf("S%04d", i+1), pending: map[int64]time.Time{}}
		db, err := localdb.Open(ctx, filepath.Join(storeDir, s.id+".db"), localdb.Options{})
		if err != nil {
			return err
		}
		s.db = db
		stores[i] = s
		if err := FillOutbox(ctx, db, s.id, "T1", o.Events); err != nil {
			return err
		}
		st, err := db.OutboxState(ctx)
		if err != nil {
			return err
		}
		s.last.Store(st.LastSeq)
		return nil
	}); err != nil {
		return r, err
	}
	progress(fmt.Sprintf("%d store databases opened and filled", o.Stores))

	// The raw limit: the batches the links will send, stored by the HQ
	// store's own IngestBatch with as many writers as HQ has workers.
	var batches [][]*wire.Batch // per writer
	batches = make([][]*wire.Batch, r.RawWriters)
	for i, s := range stores {
		bs, err := outboxBatches(ctx, s.db, s.id, "T1", 500, 256<<10)
		if err != nil {
			return r, err
		}
		batches[i%r.RawWriters] = append(batches[i%r.RawWriters], bs...)
	}
	rawInsert := func(name string) error {
		raw, err := o.OpenStore(ctx, name)
		if err != nil {
			return err
		}
		defer raw.Close(context.WithoutCancel(ctx))
		start := time.Now()
		err = parallel(ctx, r.RawWriters, r.RawWriters, func(w int) error {
			for _, b := range batches[w] {
				if _, err := raw.IngestBatch(ctx, b, nil, time.Now().UTC()); err != nil {
					return fmt.Errorf("raw insert: %w", err)
				}
			}
			return nil
		})
		if d := time.Since(start); err == nil && (r.RawInsert == 0 || d < r.RawInsert) {
			r.RawInsert = d
		}
		progress("raw insert into " + name)
		return err
	}
	if err := rawInsert("raw"); err != nil {
		return r, err
	}

	broker, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	if err != nil {
		return r, err
	}
	defer broker.Close()
	svc := hq.New(hq.Options{
		OpenStore: func(ctx context.Context) (hq.Store, error) { return o.OpenStore(ctx, "hq") },
		Broker:    broker.URL(),
		Username:  "hq",
	})
	if err := svc.Open(ctx); err != nil {
		return r, err
	}
	defer svc.Close(context.WithoutCancel(ctx))
	if err := WaitUntil(ctx, 30*time.Second, "HQ to subscribe", svc.Ready); err != nil {
		return r, err
	}

	var remaining atomic.Int64
	remaining.Store(int64(o.Stores))
	allAcked := make(chan struct{})
	doneOnce := make([]sync.Once, o.Stores)
	start := time.Now()
	for i, s := range stores {
		s.link = link.New(s.db, link.Options{Store: s.id, Terminal: "T1", Broker: broker.URL(),
			BackoffMin: 100 * time.Millisecond, BackoffMax: 2 * time.Second, Poll: 100 * time.Millisecond,
			OnAck: func(through int64, _ time.Duration) {
				s.onAck(through, func() {
					doneOnce[i].Do(func() {
						if remaining.Add(-1) == 0 {
							close(allAcked)
						}
					})
				})
			}})
		if err := s.link.Open(ctx); err != nil {
			return r, err
		}
		defer s.link.Close(context.WithoutCancel(ctx))
	}
	select {
	case <-allAcked:
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(5 * time.Minute):
		return r, fmt.Errorf("ingest: %d of %d stores not fully acked after 5 minutes", remaining.Load(), o.Stores)
	}
	r.Ours = time.Since(start)
	progress("HQ service started and every store caught up")
	for _, s := range stores {
		st, err := s.link.State(ctx)
		if err != nil {
			return r, err
		}
		r.Resends += st.Resends
	}
	sales, err := svc.Store().Sales(ctx, "", "")
	if err != nil {
		return r, err
	}
	var got int64
	for _, d := range sales {
		got += d.Count
	}
	if want := int64(o.Stores * o.Events); got != want {
		return r, fmt.Errorf("ingest: HQ holds %d sales, want %d", got, want)
	}
	// Once more on an idle machine: the raw limit is the faster of the two.
	if err := rawInsert("raw2"); err != nil {
		return r, err
	}

	if o.LiveFor > 0 && o.LiveRate > 0 {
		if err := liveSelling(ctx, stores, o.LiveFor, o.LiveRate); err != nil {
			return r, err
		}
		for _, s := range stores {
			r.Lat = append(r.Lat, s.lat...)
		}
		progress("live selling")
	}
	return r, nil
}

// liveSelling has every store commit one sale event at a time at rate per
// second (with jitter, so the fleet is not in step) for d, notifying its
// link after each commit, then waits until every event is acked.
func liveSelling(ctx context.Context, stores []*ingestStore, d time.Duration, rate float64) error {
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	gap := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := time.Now().Add(time.Duration(rand.Int64N(int64(gap))))
			for i := 1; ; i++ {
				select {
				case <-lctx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(gap/2 + time.Duration(rand.Int64N(int64(gap))))
				now := time.Now().UTC()
				var ev localdb.Event
				err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
					var err error
					ev, err = s.db.AppendEvent(ctx, tx, wire.EventSaleCompleted, SaleEvent(s.id, "T1", 1_000_000+i, now), now)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				s.mu.Lock()
				s.pending[ev.Seq] = ev.CreatedAt
				s.mu.Unlock()
				s.last.Store(ev.Seq)
				s.link.Notify()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("live selling: %w", err)
	default:
	}
	return WaitUntil(ctx, time.Minute, "every live sale to be acked", func() bool {
		for _, s := range stores {
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n > 0 {
				return false
			}
		}
		return true
	})
}

// Figures turns an ingest result into report figures.
func (r IngestResult) Figures() []Figure {
	n := r.Stores * r.Events
	figs := []Figure{
		Figure{Scenario: "ingest", Metric: fmt.Sprintf("%d stores × %d events → HQ (%s) committed+acked", r.Stores, r.Events, r.Backend),
			Unit: "events/s", Ours: Rate(n, r.Ours), Goal: "≥ 0.5 × raw"}.
			WithRaw(fmt.Sprintf("HQ store IngestBatch, same batches, %d writers, no MQTT", r.RawWriters), Rate(n, r.RawInsert)),
		{Scenario: "ingest", Metric: fmt.Sprintf("%s: link resends while catching up", r.Backend), Unit: "count", Ours: float64(r.Resends), LowerIsBetter: true},
	}
	if len(r.Lat) > 0 {
		live := fmt.Sprintf("%s: sale commit → HQ ack at the terminal, %d stores × %.3g sales/s", r.Backend, r.Stores, r.LiveRate)
		figs = append(figs,
			Figure{Scenario: "ingest", Metric: live + ", p50", Unit: "ms", Ours: Ms(Percentile(r.Lat, 50)), LowerIsBetter: true},
			Figure{Scenario: "ingest", Metric: live + ", p99", Unit: "ms", Ours: Ms(Percentile(r.Lat, 99)), LowerIsBetter: true},
		)
	}
	return figs
}

// outboxBatches reads db's unacked events into batches as the link cuts
// them (at most count events and bytes payload bytes each).
func outboxBatches(ctx context.Context, db *localdb.DB, store, terminal string, count, bytes int) ([]*wire.Batch, error) {
	var out []*wire.Batch
	for after := int64(0); ; {
		evs, err := db.NextEvents(ctx, after, count, bytes)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return out, nil
		}
		b := &wire.Batch{V: wire.SchemaVersion, Store: store, Terminal: terminal, DBID: db.ID(), SentAt: time.Now().UTC()}
		for _, e := range evs {
			b.Events = append(b.Events, wire.Event{Seq: e.Seq, ID: e.ID, Type: e.Type, At: e.CreatedAt, Payload: e.Payload})
		}
		out = append(out, b)
		after = evs[len(evs)-1].Seq
	}
}

// parallel runs fn(0..n-1) on at most workers goroutines and returns the
// first error; after an error the remaining items are skipped.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				mu.Lock()
				failed := first != nil
				mu.Unlock()
				if failed {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// WaitUntil polls cond every 10 ms until it holds, ctx ends or limit passes.
func WaitUntil(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
