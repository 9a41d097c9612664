package hq

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/sync/wire"
)

// Quarantine reasons for whole messages.
const (
	ReasonBadTopic = "bad topic"
	ReasonMismatch = "store/terminal mismatch"
	ReasonOversize = "oversized"
)

// onMessage runs on paho's router. It only routes, and never blocks: each
// terminal's messages go to one worker so they are processed in order.
func (s *Service) onMessage(_ paho.Client, m paho.Message) {
	s.queues[s.shard(m.Topic())].Push(m)
}

func (s *Service) shard(topic string) int {
	if len(s.queues) == 1 {
		return 0
	}
	h := fnv.New32a()
	if t, err := s.topics.Parse(topic); err == nil {
		h.Write([]byte(t.Store + "/" + t.Terminal))
	} else {
		h.Write([]byte(topic))
	}
	return int(h.Sum32() % uint32(len(s.queues)))
}

// work processes one queue until ctx ends. A message is PUBACKed only once
// its outcome (stored, or quarantined) is committed.
//
// It runs as a two-stage pipeline: one goroutine decodes and validates the
// next message (CPU only, see prepare) while this one stores the current
// one (database round trips and the commit's fsync), so on two cores the
// decoding of batch N+1 overlaps the commit of batch N. Both stages take
// messages in queue order, so a terminal's batches are stored, answered and
// PUBACKed in order.
func (s *Service) work(ctx context.Context, q *msgQueue) {
	jobs := make(chan job, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for {
			m, ok := q.Pop(ctx)
			if !ok {
				return
			}
			select {
			case jobs <- job{m: m, run: s.prepare(m)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for j := range jobs {
		if ctx.Err() != nil {
			break // not acked: redelivered after a reconnect
		}
		s.runWithRetry(ctx, j)
	}
	wg.Wait()
}

// job is a message and what storing it takes, prepared ahead.
type job struct {
	m   paho.Message
	run func(ctx context.Context, now time.Time) error
}

// errCrash is what a fault seam returns to stop the processing of a
// message as a crash would.
var errCrash = errors.New("simulated crash")

// runWithRetry runs j, retrying with backoff, and PUBACKs its message once
// it is done with.
func (s *Service) runWithRetry(ctx context.Context, j job) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := j.run(ctx, s.opts.Now().UTC())
		if err == nil {
			j.m.Ack()
			return
		}
		if errors.Is(err, errCrash) || ctx.Err() != nil || attempt == 5 {
			// Not acked: the broker redelivers it after a reconnect.
			s.log.Error("message not processed; left unacked for redelivery", "topic", j.m.Topic(), "err", err)
			return
		}
		s.log.Warn("processing failed, retrying", "topic", j.m.Topic(), "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 4
	}
}

// prepare does the part of handling m that needs no I/O — parsing the
// topic, and for an events upload decoding the batch and validating every
// event — and returns the rest, which stores the outcome and answers: it
// returns nil when the message is done with (stored and answered, or
// quarantined), an error when it must be tried again (it may be called
// again).
func (s *Service) prepare(m paho.Message) func(ctx context.Context, now time.Time) error {
	data := m.Payload()
	t, err := s.topics.Parse(m.Topic())
	if err != nil {
		return func(ctx context.Context, now time.Time) error {
			return s.quarantine(ctx, m.Topic(), Topic{}, data, ReasonBadTopic+": "+err.Error(), now)
		}
	}
	top := Topic{Store: t.Store, Terminal: t.Terminal}
	switch t.Kind {
	case wire.KindEvents:
		return s.prepareEvents(m.Topic(), top, data)
	case wire.KindHello:
		return func(ctx context.Context, now time.Time) error {
			return s.handleHello(ctx, m.Topic(), top, data, now)
		}
	case wire.KindStatus:
		return func(ctx context.Context, now time.Time) error {
			st, err := wire.DecodeStatus(data)
			if err != nil {
				s.log.Warn("bad status message ignored", "store", t.Store, "terminal", t.Terminal, "err", err)
				return nil
			}
			at := st.At
			if at.IsZero() {
				at = now
			}
			return s.store.SetStatus(ctx, t.Store, t.Terminal, st.State == "online", at)
		}
	default:
		return func(ctx context.Context, now time.Time) error {
			return s.quarantine(ctx, m.Topic(), top, data, ReasonBadTopic+": not an upload", now)
		}
	}
}

// Topic names the store and terminal a message came from, by its topic.
type Topic struct{ Store, Terminal string }

func (s *Service) quarantine(ctx context.Context, topic string, t Topic, data []byte, reason string, now time.Time) error {
	s.log.Warn("message quarantined", "store", t.Store, "terminal", t.Terminal, "topic", topic, "reason", reason, "bytes", len(data))
	raw := data
	if len(raw) > MaxQuarantineRaw {
		raw = raw[:MaxQuarantineRaw]
	}
	if s.metrics != nil {
		s.metrics.quarantined.Inc()
	}
	return s.store.Quarantine(ctx, QuarantineEntry{ReceivedAt: now, Topic: topic, Store: t.Store, Terminal: t.Terminal, Reason: reason, Size: len(data), Raw: raw})
}

// prepareEvents decodes and validates an events upload; the function it
// returns stores it (or quarantines it) and answers.
func (s *Service) prepareEvents(topic string, t Topic, data []byte) func(ctx context.Context, now time.Time) error {
	refuse := func(reason string) func(ctx context.Context, now time.Time) error {
		return func(ctx context.Context, now time.Time) error {
			return s.quarantine(ctx, topic, t, data, reason, now)
		}
	}
	if len(data) > wire.MaxMessageBytes {
		return refuse(fmt.Sprintf("%s: %d bytes > %d", ReasonOversize, len(data), wire.MaxMessageBytes))
	}
	b, err := wire.DecodeBatch(data)
	if err != nil {
		return refuse(err.Error())
	}
	if b.Store != t.Store || b.Terminal != t.Terminal {
		return refuse(fmt.Sprintf("%s: payload says %s/%s", ReasonMismatch, b.Store, b.Terminal))
	}
	invalid := map[int64]string{}
	for i := range b.Events {
		if err := wire.ValidatePayload(&b.Events[i]); err != nil {
			invalid[b.Events[i].Seq] = err.Error()
		}
	}
	return func(ctx context.Context, now time.Time) error {
		return s.storeEvents(ctx, topic, t, data, b, invalid, now)
	}
}

// storeEvents stores a decoded, validated batch in one transaction and
// answers with the terminal's contiguous cursor.
func (s *Service) storeEvents(ctx context.Context, topic string, t Topic, data []byte, b *wire.Batch, invalid map[int64]string, now time.Time) error {
	if s.beforeStore != nil {
		if err := s.beforeStore(t.Store, t.Terminal); err != nil {
			return fmt.Errorf("%w: %v", errCrash, err)
		}
	}
	start := time.Now()
	res, err := s.store.IngestBatch(ctx, b, invalid, now)
	if errors.Is(err, ErrDBMismatch) {
		return s.quarantine(ctx, topic, t, data, err.Error(), now)
	}
	if err != nil {
		return err
	}
	if s.afterCommit != nil {
		if err := s.afterCommit(wire.KindEvents, t.Store, t.Terminal); err != nil {
			return fmt.Errorf("%w: %v", errCrash, err)
		}
	}
	feed, err := s.store.FeedLatest(ctx, t.Store)
	if err != nil {
		return err
	}
	if m := s.metrics; m != nil {
		m.batches.WithLabelValues("acked").Inc()
		m.events.WithLabelValues("stored").Add(float64(res.Stored))
		m.events.WithLabelValues("duplicate").Add(float64(res.Duplicates))
		m.events.WithLabelValues("rejected").Add(float64(len(res.Rejected)))
		m.ingestSecs.Observe(time.Since(start).Seconds())
	}
	if len(res.Rejected) > 0 {
		s.log.Warn("events rejected", "store", t.Store, "terminal", t.Terminal, "count", len(res.Rejected), "seq", res.Rejected[0].Seq, "reason", res.Rejected[0].Reason)
	}
	s.publish(s.topics.Ack(t.Store, t.Terminal), wire.Ack{V: wire.SchemaVersion, Store: t.Store, Terminal: t.Terminal, DBID: b.DBID,
		Through: res.Through, Rejected: res.Rejected, FeedVersion: feed, At: now})
	if len(res.Feed) > 0 {
		// Members' new balances and pickup orders' state, appended in the
		// batch's transaction; a store that misses them catches up on hello.
		if err := s.publishEntries(ctx, res.Feed); err != nil {
			s.log.Error("publish change feed after ingest", "store", t.Store, "err", err)
		}
	}
	return nil
}

func (s *Service) handleHello(ctx context.Context, topic string, t Topic, data []byte, now time.Time) error {
	if len(data) > wire.MaxMessageBytes {
		return s.quarantine(ctx, topic, t, data, ReasonOversize, now)
	}
	h, err := wire.DecodeHello(data)
	if err != nil {
		return s.quarantine(ctx, topic, t, data, err.Error(), now)
	}
	if h.Store != t.Store || h.Terminal != t.Terminal {
		return s.quarantine(ctx, topic, t, data, fmt.Sprintf("%s: payload says %s/%s", ReasonMismatch, h.Store, h.Terminal), now)
	}
	res, err := s.store.Hello(ctx, h, now)
	if err != nil {
		return err
	}
	if s.afterCommit != nil {
		if err := s.afterCommit(wire.KindHello, t.Store, t.Terminal); err != nil {
			return fmt.Errorf("%w: %v", errCrash, err)
		}
	}
	if res.Rebase > 0 {
		s.log.Warn("terminal has a new database: rebased", "store", t.Store, "terminal", t.Terminal, "seq", res.Rebase)
	}
	if skew := h.Clock.Sub(now); skew > 5*time.Minute || skew < -5*time.Minute {
		s.log.Warn("terminal clock is off", "store", t.Store, "terminal", t.Terminal, "skew", skew.Round(time.Second).String())
	}
	if s.metrics != nil {
		s.metrics.hellos.Inc()
	}
	s.publish(s.topics.Ack(t.Store, t.Terminal), wire.Ack{V: wire.SchemaVersion, Store: t.Store, Terminal: t.Terminal, DBID: h.DBID,
		Through: res.Through, Rebase: res.Rebase, FeedVersion: res.FeedVersion, At: now})
	if h.FeedVersion < res.FeedVersion {
		if err := s.publishFeed(ctx, t.Store, h.FeedVersion); err != nil {
			// The hello is stored and answered; the terminal asks again.
			s.log.Error("resend change feed", "store", t.Store, "err", err)
		}
	}
	return nil
}

// publish sends msg at QoS 1 and waits (bounded) for the broker to take it.
// The token is not proof of delivery (paho #563): a lost ack is recovered by
// the terminal's resend, which HQ answers again.
func (s *Service) publish(topic string, msg any) {
	data, err := wire.Encode(msg)
	if err != nil {
		s.log.Error("encode outgoing message", "topic", topic, "err", err)
		return
	}
	c := s.client
	if c == nil {
		return
	}
	// Not waited for: a worker waiting on the broker's PUBACK holds up every
	// terminal behind it, and the token proves nothing anyway (paho #563).
	// A lost ack costs a resend, which is answered again.
	c.Publish(topic, 1, false, data)
}
