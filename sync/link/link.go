// Package link is the store terminal's side of sync: it drains the outbox to
// HQ over MQTT (eclipse/paho.mqtt.golang), marks events acked only from HQ's
// ack, and applies HQ's change feed to the local database.
//
// The outbox and the change feed are the truth; MQTT is transport. A publish
// token that completes tells us nothing (paho #563), so the link keeps a
// window of batches in flight and resends from the last ack when HQ has not
// answered within AckTimeout. On every connect it sends a hello and waits for
// HQ's answer before sending any events, so both sides agree where the
// terminal's seq continues (a reinstalled terminal is renumbered above what
// HQ holds) and which change-feed version the terminal has.
package link

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// Applier applies one change-feed entry inside tx. The link commits the
// feed cursor in the same transaction. It must be idempotent.
type Applier func(ctx context.Context, tx *sql.Tx, c wire.Change) error

// Options configure a Link. Store, Terminal and Broker are required.
type Options struct {
	Store, Terminal string
	Broker          string // tcp://host:1883 or ssl://host:8883
	Username        string // default Store
	Password        string
	TLS             *tls.Config
	TopicPrefix     string // default wire.DefaultPrefix
	AgentVersion    string

	BatchEvents int           // events per batch, default 500
	BatchBytes  int           // payload bytes per batch, default 256 KiB
	Window      int           // batches in flight, default 4
	AckTimeout  time.Duration // resend from the last ack after this, default 10s
	// BackoffMin and BackoffMax bound the reconnect delay (with jitter);
	// defaults 200ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Retention is how long acked events stay before pruning; default 7 days.
	Retention time.Duration
	// Poll is how often the outbox is checked without a Notify; default 500ms.
	Poll time.Duration

	Apply  Applier
	Logger *slog.Logger
	// OnAck, if set, is called after each ack is applied (for metrics).
	OnAck func(through int64, latency time.Duration)
}

// State is what the link exposes to the UI, metrics and HQ.
type State struct {
	Connected     bool      `json:"connected"`
	Reconciled    bool      `json:"reconciled"` // hello answered since the last connect
	Backlog       int64     `json:"backlog"`
	OldestUnacked time.Time `json:"oldest_unacked,omitzero"`
	AckedSeq      int64     `json:"acked_seq"`
	LastSeq       int64     `json:"last_seq"`
	LastAck       time.Time `json:"last_ack,omitzero"`
	FeedVersion   int64     `json:"feed_version"`
	Rejected      int64     `json:"rejected"`
	LastError     string    `json:"last_error,omitempty"`
	BatchesSent   int64     `json:"batches_sent"`
	Resends       int64     `json:"resends"`
}

// feedCursorKey is the meta key of the applied change-feed version.
const feedCursorKey = "feed_version"

type inflight struct {
	last   int64
	sentAt time.Time
}

// Link is the terminal's sync session. New → Open → Close.
type Link struct {
	db     *localdb.DB
	opts   Options
	topics wire.Topics
	log    *slog.Logger

	notify chan struct{}
	inbox  chan paho.Message
	lost   chan error

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	state State
}

// New fills defaults; it does not connect.
func New(db *localdb.DB, opts Options) *Link {
	if opts.Username == "" {
		opts.Username = opts.Store
	}
	if opts.BatchEvents <= 0 {
		opts.BatchEvents = 500
	}
	if opts.BatchEvents > wire.MaxBatchEvents {
		opts.BatchEvents = wire.MaxBatchEvents
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 256 << 10
	}
	if opts.Window <= 0 {
		opts.Window = 4
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 200 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Link{
		db:     db,
		opts:   opts,
		topics: wire.NewTopics(opts.TopicPrefix),
		log:    opts.Logger.With("store", opts.Store, "terminal", opts.Terminal),
		notify: make(chan struct{}, 1),
		inbox:  make(chan paho.Message, 1024),
		lost:   make(chan error, 1),
	}
}

// Open validates the options and starts the session goroutine. It returns
// at once: a broker that is down at start is retried with backoff while
// the store keeps selling.
func (l *Link) Open(ctx context.Context) error {
	if err := wire.CheckID("store", l.opts.Store); err != nil {
		return fmt.Errorf("open link: %w", err)
	}
	if err := wire.CheckID("terminal", l.opts.Terminal); err != nil {
		return fmt.Errorf("open link: %w", err)
	}
	if l.opts.Broker == "" {
		return errors.New("open link: no broker URL")
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(ctx)
	}()
	return nil
}

// Close stops the session, publishes a clean offline status if connected,
// and waits for the goroutines to return.
func (l *Link) Close(ctx context.Context) error {
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close link: %w", ctx.Err())
	}
}

// Notify tells the link that new events were committed, so it sends them
// now rather than at the next poll. It never blocks.
func (l *Link) Notify() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// State returns the link's current state, with the outbox figures read
// from the database.
func (l *Link) State(ctx context.Context) (State, error) {
	os, err := l.db.OutboxState(ctx)
	l.mu.Lock()
	s := l.state
	l.mu.Unlock()
	if err != nil {
		return s, err
	}
	s.Backlog, s.OldestUnacked, s.AckedSeq, s.LastSeq, s.Rejected = os.Backlog, os.OldestUnacked, os.AckedSeq, os.LastSeq, os.Rejected
	if v, ok, err := l.db.Meta(ctx, feedCursorKey); err == nil && ok {
		s.FeedVersion, _ = strconv.ParseInt(v, 10, 64)
	}
	return s, nil
}

func (l *Link) setState(f func(*State)) {
	l.mu.Lock()
	f(&l.state)
	l.mu.Unlock()
}

// run connects with backoff and runs sessions until ctx ends.
func (l *Link) run(ctx context.Context) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.pruneLoop(ctx)
	}()
	backoff := l.opts.BackoffMin
	failing := false
	for ctx.Err() == nil {
		client, err := l.connect(ctx)
		if err != nil {
			l.setState(func(s *State) { s.Connected, s.LastError = false, err.Error() })
			if !failing {
				l.log.Warn("broker unreachable, selling goes on offline", "broker", l.opts.Broker, "err", err)
				failing = true
			}
			// Full jitter: a fleet of terminals must not reconnect in step.
			d := backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, l.opts.BackoffMax)
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			continue
		}
		if failing {
			l.log.Info("broker reachable again", "broker", l.opts.Broker)
			failing = false
		}
		backoff = l.opts.BackoffMin
		err = l.session(ctx, client)
		l.setState(func(s *State) { s.Connected, s.Reconciled = false, false })
		if ctx.Err() != nil {
			l.goOffline(client)
			return
		}
		client.Disconnect(0)
		l.log.Warn("sync session ended", "err", err)
		l.setState(func(s *State) { s.LastError = err.Error() })
	}
}

// goOffline publishes the retained offline status and disconnects.
func (l *Link) goOffline(c paho.Client) {
	if c.IsConnected() {
		b, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "offline", At: time.Now().UTC()})
		c.Publish(l.topics.Status(l.opts.Store, l.opts.Terminal), 1, true, b).WaitTimeout(time.Second)
	}
	c.Disconnect(250)
}

func (l *Link) connect(ctx context.Context) (paho.Client, error) {
	will, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "offline"})
	o := paho.NewClientOptions().
		AddBroker(l.opts.Broker).
		SetClientID(l.opts.Store+"-"+l.opts.Terminal).
		SetUsername(l.opts.Username).
		SetPassword(l.opts.Password).
		SetCleanSession(true). // the hello reconciles; no broker-side queue to go stale
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(5*time.Second).
		SetKeepAlive(15*time.Second).
		SetPingTimeout(5*time.Second).
		SetWriteTimeout(10*time.Second).
		SetOrderMatters(false).
		SetWill(l.topics.Status(l.opts.Store, l.opts.Terminal), string(will), 1, true).
		SetDefaultPublishHandler(l.handle).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case l.lost <- err:
			default:
			}
		})
	if l.opts.TLS != nil {
		o.SetTLSConfig(l.opts.TLS)
	}
	// Drain a stale lost signal from an earlier session.
	select {
	case <-l.lost:
	default:
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !waitToken(ctx, tok, 10*time.Second) {
		c.Disconnect(0)
		return nil, fmt.Errorf("connect %s: timed out", l.opts.Broker)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", l.opts.Broker, err)
	}
	subs := map[string]byte{
		l.topics.Ack(l.opts.Store, l.opts.Terminal): 1,
		l.topics.Changes(l.opts.Store):              1,
	}
	st := c.SubscribeMultiple(subs, l.handle)
	if !waitToken(ctx, st, 10*time.Second) || st.Error() != nil {
		c.Disconnect(0)
		return nil, fmt.Errorf("subscribe on %s: %v", l.opts.Broker, st.Error())
	}
	// mochi and Mosquitto refuse a denied subscription by return code 0x80.
	if sub, ok := st.(*paho.SubscribeToken); ok {
		for topic, code := range sub.Result() {
			if code == 0x80 {
				c.Disconnect(0)
				return nil, fmt.Errorf("subscribe %s: refused by the broker (check the ACL for user %q)", topic, l.opts.Username)
			}
		}
	}
	on, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "online", At: time.Now().UTC()})
	c.Publish(l.topics.Status(l.opts.Store, l.opts.Terminal), 1, true, on)
	l.setState(func(s *State) { s.Connected, s.LastError = true, "" })
	return c, nil
}

func waitToken(ctx context.Context, t paho.Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-ctx.Done():
		return false
	case <-timer.C:
		return false
	}
}

// handle runs on paho's router: it must never block, so it only queues.
// A message dropped here is harmless: an unanswered batch is resent after
// AckTimeout and a missed change is re-sent after the next hello.
func (l *Link) handle(_ paho.Client, m paho.Message) {
	select {
	case l.inbox <- m:
	default:
		l.log.Warn("sync inbox full, message dropped; it will be recovered by resend", "topic", m.Topic())
	}
}

// session runs one connected session: hello, then the drain loop.
func (l *Link) session(ctx context.Context, c paho.Client) error {
	var (
		reconciled bool
		helloAt    time.Time
		sent       []inflight // batches in flight, in order
		sentAfter  int64      // highest seq published in this session
		acked      int64
		lastProg   = time.Now()
	)
	sendHello := func() error {
		h, err := l.hello(ctx)
		if err != nil {
			return err
		}
		b, err := wire.Encode(h)
		if err != nil {
			return err
		}
		c.Publish(l.topics.Hello(l.opts.Store, l.opts.Terminal), 1, false, b)
		l.log.Debug("hello sent", "seq", h.LastAckedSeq, "last_seq", h.LastSeq)
		helloAt = time.Now()
		return nil
	}
	if err := sendHello(); err != nil {
		return err
	}
	tick := time.NewTicker(l.opts.Poll)
	defer tick.Stop()
	// Acks after the hello's are written to the database by a goroutine of
	// their own, so marking events acked overlaps reading and sending the
	// next batches; acks that arrive while it writes are merged into one.
	marker := newAckMarker(l)
	defer marker.stop()
	for {
		// Fill the window.
		if reconciled {
			for len(sent) < l.opts.Window {
				evs, err := l.db.NextEvents(ctx, sentAfter, l.opts.BatchEvents, l.opts.BatchBytes)
				if err != nil {
					return err
				}
				if len(evs) == 0 {
					break
				}
				if err := l.publishBatch(c, evs); err != nil {
					return err
				}
				if len(sent) == 0 {
					lastProg = time.Now()
				}
				sentAfter = evs[len(evs)-1].Seq
				l.log.Debug("batch sent", "first", evs[0].Seq, "seq", sentAfter)
				sent = append(sent, inflight{last: sentAfter, sentAt: time.Now()})
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-l.lost:
			return fmt.Errorf("connection lost: %w", err)
		case err := <-marker.failed:
			return err
		case <-l.notify:
		case <-tick.C:
			now := time.Now()
			if !reconciled && now.Sub(helloAt) > l.opts.AckTimeout {
				l.log.Info("no answer to hello, sending it again")
				if err := sendHello(); err != nil {
					return err
				}
			}
			if reconciled && len(sent) > 0 && now.Sub(lastProg) > l.opts.AckTimeout {
				// HQ (or the broker) lost something: go back to the last ack.
				l.log.Warn("no ack in time, resending from the last ack", "seq", acked, "in_flight", len(sent))
				l.setState(func(s *State) { s.Resends++ })
				sent, sentAfter, lastProg = nil, acked, now
			}
		case m := <-l.inbox:
			t, err := l.topics.Parse(m.Topic())
			if err != nil {
				l.log.Warn("message on unexpected topic", "topic", m.Topic())
				continue
			}
			switch t.Kind {
			case wire.KindAck:
				a, err := wire.DecodeAck(m.Payload())
				if err != nil {
					l.log.Warn("bad ack from HQ", "err", err)
					continue
				}
				if a.DBID != l.db.ID() {
					continue // an answer meant for an earlier install of this terminal
				}
				through := a.Through
				l.log.Debug("ack received", "seq", a.Through, "reconciled", reconciled, "acked", acked, "sent_after", sentAfter, "in_flight", len(sent))
				if !reconciled {
					// The hello's answer is applied before anything is
					// sent: it may renumber the queue.
					if through, err = l.applyAck(ctx, a, true); err != nil {
						return err
					}
				} else {
					marker.add(ctx, a)
				}
				if !reconciled {
					reconciled = true
					l.setState(func(s *State) { s.Reconciled = true })
					sentAfter = through
					l.log.Info("sync reconciled with HQ", "seq", through, "feed_version", a.FeedVersion)
				}
				if through > acked {
					acked, lastProg = through, time.Now()
				}
				for len(sent) > 0 && sent[0].last <= acked {
					if l.opts.OnAck != nil {
						l.opts.OnAck(acked, time.Since(sent[0].sentAt))
					}
					sent = sent[1:]
				}
				if sentAfter < acked {
					sentAfter = acked
				}
			case wire.KindChanges:
				ch, err := wire.DecodeChanges(m.Payload())
				if err != nil {
					l.log.Warn("bad change-feed message from HQ", "err", err)
					continue
				}
				gap, err := l.applyChanges(ctx, ch)
				if err != nil {
					return err
				}
				if gap {
					// We missed entries: our next hello asks HQ to resend.
					if err := sendHello(); err != nil {
						return err
					}
				}
			}
		}
	}
}

func (l *Link) hello(ctx context.Context) (wire.Hello, error) {
	st, err := l.db.OutboxState(ctx)
	if err != nil {
		return wire.Hello{}, err
	}
	fv, err := l.feedVersion(ctx)
	if err != nil {
		return wire.Hello{}, err
	}
	return wire.Hello{
		V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal,
		AgentVersion: l.opts.AgentVersion, DBID: l.db.ID(),
		LastAckedSeq: st.AckedSeq, FirstSeq: st.FirstUnacked, LastSeq: st.LastSeq,
		FeedVersion: fv, Backlog: st.Backlog, OldestUnsync: st.OldestUnacked,
		Clock: time.Now().UTC(),
	}, nil
}

func (l *Link) publishBatch(c paho.Client, evs []localdb.Event) error {
	b := wire.Batch{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, DBID: l.db.ID(), SentAt: time.Now().UTC()}
	b.Events = make([]wire.Event, len(evs))
	for i, e := range evs {
		b.Events[i] = wire.Event{Seq: e.Seq, ID: e.ID, Type: e.Type, At: e.CreatedAt, Payload: e.Payload}
	}
	data, err := wire.EncodeBatch(&b)
	if errors.Is(err, wire.ErrTooLarge) && len(evs) > 1 {
		// Split rather than stall: halves always get smaller.
		if err := l.publishBatch(c, evs[:len(evs)/2]); err != nil {
			return err
		}
		return l.publishBatch(c, evs[len(evs)/2:])
	}
	if err != nil {
		return fmt.Errorf("encode batch through seq %d: %w", evs[len(evs)-1].Seq, err)
	}
	// The token is not proof of delivery (paho #563); HQ's ack is. We do not
	// wait for it, so the window of batches really is in flight.
	c.Publish(l.topics.Events(l.opts.Store, l.opts.Terminal), 1, false, data)
	l.setState(func(s *State) { s.BatchesSent++ })
	return nil
}

// ackMarker writes acks to the database off the session loop: the session
// hands it each ack (never blocking) and goes on sending, trusting HQ's word
// for its window; the marker dead-letters the rejected events and marks
// through the highest ack it has, merging acks that queued meanwhile (marks
// are monotonic and rejections idempotent, so one write for several acks is
// the same as one each). A mark lost with the session costs a resend.
type ackMarker struct {
	l       *Link
	mu      sync.Mutex
	through int64
	rejects []wire.Rejection
	signal  chan struct{}
	failed  chan error // the write that failed; the session ends on it
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newAckMarker(l *Link) *ackMarker {
	ctx, cancel := context.WithCancel(context.Background())
	m := &ackMarker{l: l, signal: make(chan struct{}, 1), failed: make(chan error, 1), cancel: cancel}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx)
	}()
	return m
}

// add queues a's marks. It never blocks.
func (m *ackMarker) add(_ context.Context, a *wire.Ack) {
	m.mu.Lock()
	m.through = max(m.through, a.Through)
	m.rejects = append(m.rejects, a.Rejected...)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

func (m *ackMarker) run(ctx context.Context) {
	var done int64 // highest through written
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.signal:
		}
		m.mu.Lock()
		through, rejects := m.through, m.rejects
		m.rejects = nil
		m.mu.Unlock()
		if through <= done && len(rejects) == 0 {
			continue
		}
		err := m.l.markAcked(ctx, through, rejects)
		if err != nil {
			if ctx.Err() == nil {
				m.failed <- err
			}
			return
		}
		done = through
	}
}

// stop ends the marker and waits for it; marks it has not written are
// dropped (their events go again).
func (m *ackMarker) stop() {
	m.cancel()
	m.wg.Wait()
}

// markAcked dead-letters rejects and marks everything through through acked.
func (l *Link) markAcked(ctx context.Context, through int64, rejects []wire.Rejection) error {
	for _, r := range rejects {
		l.log.Error("HQ rejected an event; kept as dead letter", "seq", r.Seq, "id", r.ID, "reason", r.Reason)
		if err := l.db.Reject(ctx, r.Seq, r.Reason); err != nil {
			return err
		}
	}
	if _, err := l.db.AckThrough(ctx, through); err != nil {
		return err
	}
	l.setState(func(s *State) { s.LastAck = time.Now().UTC() })
	return nil
}

// applyAck dead-letters rejected events, renumbers a new database when HQ
// asks (only in answer to a hello), and marks everything through a.Through
// acked. It returns the highest acked seq.
func (l *Link) applyAck(ctx context.Context, a *wire.Ack, hello bool) (int64, error) {
	if a.Rebase > 0 && hello {
		shift, err := l.db.Rebase(ctx, a.Rebase)
		if err != nil {
			return 0, err
		}
		if shift > 0 {
			l.log.Warn("HQ holds earlier events for this terminal: renumbered the queue", "seq", a.Rebase, "shift", shift)
		}
	}
	if err := l.markAcked(ctx, a.Through, a.Rejected); err != nil {
		return 0, err
	}
	st, err := l.db.OutboxState(ctx)
	if err != nil {
		return 0, err
	}
	return max(st.AckedSeq, a.Through), nil
}

func (l *Link) feedVersion(ctx context.Context) (int64, error) {
	v, ok, err := l.db.Meta(ctx, feedCursorKey)
	if err != nil || !ok {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// applyChanges applies the entries above the cursor in version order, each
// with the cursor update in the same transaction. It reports a gap when
// the message follows entries this terminal has not seen.
func (l *Link) applyChanges(ctx context.Context, ch *wire.Changes) (gap bool, err error) {
	if ch.Store != l.opts.Store {
		return false, nil
	}
	cur, err := l.feedVersion(ctx)
	if err != nil {
		return false, err
	}
	if ch.After > cur {
		l.log.Info("change feed gap, asking HQ to resend", "feed_version", cur, "after", ch.After)
		return true, nil
	}
	for _, c := range ch.Changes {
		if c.Version <= cur {
			continue
		}
		err := l.db.WriteTx(ctx, func(tx *sql.Tx) error {
			if l.opts.Apply != nil {
				if err := l.opts.Apply(ctx, tx, c); err != nil {
					return err
				}
			}
			return localdb.SetMeta(ctx, tx, feedCursorKey, strconv.FormatInt(c.Version, 10))
		})
		if err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			// A change this build cannot apply must not block the feed
			// forever: log it loudly and step over it.
			l.log.Error("change-feed entry could not be applied; skipped", "version", c.Version, "kind", c.Kind, "key", c.Key, "err", err)
			if err := l.db.WriteTx(ctx, func(tx *sql.Tx) error {
				return localdb.SetMeta(ctx, tx, feedCursorKey, strconv.FormatInt(c.Version, 10))
			}); err != nil {
				return false, err
			}
		}
		cur = c.Version
	}
	return false, nil
}

func (l *Link) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := l.db.PruneAcked(ctx, time.Now().Add(-l.opts.Retention))
			if err != nil {
				l.log.Warn("prune outbox", "err", err)
			} else if n > 0 {
				l.log.Info("pruned acked events", "count", n)
			}
		}
	}
}
