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
//
// Shutdown and reconnects do not wait on paho. A connect attempt dials
// through the link's own opener, so cancelling it closes the socket under
// paho's MQTT handshake and the attempt ends at once (a broker that accepts
// TCP and never answers CONNECT would otherwise hold it for ConnectTimeout).
// Every call into paho that can block (publish, subscribe) is made by a
// courier goroutine per connection, never by the session loop, and only
// when paho's writer is idle: paho's Publish blocks its caller for up to its
// write timeout when the connection drops under it
// (eclipse/paho.mqtt.golang #325, #436), and the session must see the loss
// at once and reconnect. Close publishes the retained "offline" status and
// disconnects if the connection is healthy; otherwise it cuts the
// connection and the broker publishes the Last Will, also "offline".
package link

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/net/proxy"

	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// Applier applies one change-feed entry inside tx. The link commits the
// feed cursor in the same transaction. It must be idempotent.
type Applier func(ctx context.Context, tx *sql.Tx, c wire.Change) error

// Options configure a Link. Store, Terminal and Broker are required.
type Options struct {
	Store, Terminal string
	// Broker is tcp://host:1883 or ssl://host:8883 (also mqtt, tls, mqtts,
	// ws and wss).
	Broker       string
	Username     string // default Store
	Password     string
	TLS          *tls.Config
	TopicPrefix  string // default wire.DefaultPrefix
	AgentVersion string

	BatchEvents int           // events per batch, default 500
	BatchBytes  int           // payload bytes per batch, default 256 KiB
	Window      int           // batches in flight, default 4
	AckTimeout  time.Duration // resend from the last ack after this, default 10s
	// BackoffMin and BackoffMax bound the reconnect delay (with jitter);
	// defaults 200ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// ConnectTimeout bounds one connect attempt (dial, TLS and the MQTT
	// CONNECT/CONNACK exchange); default 5s.
	ConnectTimeout time.Duration
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
	Sessions      int64     `json:"sessions"` // connections made since Open
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
	// inbox is shared by the sessions: a message an earlier connection
	// queued is still true (acks are cumulative and checked against the
	// database id, the feed is applied by version), so it is not dropped.
	inbox chan paho.Message

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
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 5 * time.Second
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
	if u, err := url.Parse(l.opts.Broker); err != nil {
		return fmt.Errorf("open link: broker %q: %w", l.opts.Broker, err)
	} else if !supportedScheme(u.Scheme) {
		return fmt.Errorf("open link: broker %q: scheme %q is not tcp, mqtt, ssl, tls, mqtts, ws or wss", l.opts.Broker, u.Scheme)
	} else if u.Host == "" {
		return fmt.Errorf("open link: broker %q: no host:port", l.opts.Broker)
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.run(ctx)
	}()
	return nil
}

// Close stops the session and waits for the link's goroutines to return.
// It does not wait for a connect attempt in progress (cancelling it closes
// its socket) nor for the backoff delay. A healthy connection gets the
// retained "offline" status and a DISCONNECT, for at most offlineGrace plus
// paho's 250ms quiesce; any other is cut, and the broker publishes the Last
// Will ("offline"). The one wait it cannot cut short is a call paho is
// taking when its connection dies under it: paho releases it within
// handoverTimeout (see courier). Close returns ctx's error if ctx ends
// first.
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
		cn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.setState(func(s *State) { s.Connected, s.LastError = false, err.Error() })
			if !failing {
				l.log.Warn("broker unreachable, selling goes on offline", "broker", l.opts.Broker, "err", err)
				failing = true
			}
			// Full jitter: a fleet of terminals must not reconnect in step.
			d := backoff/2 + rand.N(backoff/2+1)
			backoff = min(backoff*2, l.opts.BackoffMax)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		if failing {
			l.log.Info("broker reachable again", "broker", l.opts.Broker)
			failing = false
		}
		started := time.Now()
		l.setState(func(s *State) { s.Sessions++ })
		err = l.session(ctx, cn)
		l.setState(func(s *State) { s.Connected, s.Reconciled = false, false })
		if ctx.Err() != nil {
			l.goOffline(cn)
			return
		}
		cn.disconnect()
		l.log.Warn("sync session ended", "err", err)
		l.setState(func(s *State) { s.LastError = err.Error() })
		if time.Since(started) >= shortSession {
			backoff = l.opts.BackoffMin
			continue
		}
		// A session that ends as soon as it began (another terminal
		// configured with this one's ids taking the session over, a broker
		// dropping us after CONNACK) must not turn into a tight reconnect
		// loop: back off as after a failed connect.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, l.opts.BackoffMax)
		if !sleep(ctx, d) {
			return
		}
	}
}

// shortSession is how long a session must have lasted for the next
// connect to start from the shortest backoff again.
const shortSession = 5 * time.Second

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// conn is one paho client and what belongs to it alone: the socket it
// dialled, its lost signal (per client, so a late signal from an earlier
// client cannot end a new session) and its courier.
type conn struct {
	c       paho.Client
	sock    *socket
	lost    chan error
	courier *courier
}

// abort stops the courier, closes the socket without a DISCONNECT, so the
// broker publishes the Last Will ("offline"), and has paho stop its workers
// (closing the socket ourselves does not tell paho the connection is gone:
// it takes "use of closed network connection" for a close of its own). It
// does not block: Disconnect(0) returns at once and paho's goroutines end
// promptly, as the socket is closed and our handlers never block. A call
// the courier is making is not waited for.
func (cn *conn) abort() {
	if cn.courier != nil {
		cn.courier.stop()
	}
	cn.sock.abort()
	cn.c.Disconnect(0)
}

// offlineGrace bounds how long Close gives a healthy connection to carry
// the retained "offline" status before it is cut (and the Will says it).
const offlineGrace = 250 * time.Millisecond

// goOffline ends the session for Close. On a healthy connection the
// retained "offline" status goes out, then a DISCONNECT behind it on the
// same connection, so the broker drops the Will: a Will could land after
// the next connection's "online" (a quick restart) and overwrite it. If the
// status is not on the socket within offlineGrace, or the connection is
// already going, the socket is closed without a DISCONNECT and the Will
// says "offline". Calls the courier still held are dropped.
func (l *Link) goOffline(cn *conn) {
	graceful := false
	if _, ok := cn.sock.published(); ok && cn.c.IsConnectionOpen() {
		b, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "offline", At: time.Now().UTC()})
		written := make(chan struct{})
		// The courier makes a call only once the publishes before it are
		// on the socket: the second call runs when the status is.
		cn.courier.last(
			func(c paho.Client) bool {
				return l.handPublish(c, l.topics.Status(l.opts.Store, l.opts.Terminal), true, b)
			},
			func(paho.Client) bool { close(written); return false },
		)
		t := time.NewTimer(offlineGrace)
		select {
		case <-written:
			graceful = true
		case <-t.C:
		case <-cn.lost:
		}
		t.Stop()
	}
	cn.courier.stop()
	<-cn.courier.done
	if graceful {
		l.log.Debug("offline status sent; disconnecting")
		cn.c.Disconnect(250) // returns once the DISCONNECT is written
	} else {
		l.log.Debug("connection cut; the broker's Last Will says offline")
	}
	cn.abort()
}

// disconnect ends a session the link will follow with a new connection at
// once: a DISCONNECT first (bounded by paho's quiesce, 250ms), so the
// broker drops the Will, which could otherwise land after the new
// connection's "online" and overwrite it. A call the courier is making is
// not waited for: if the connection died under it, paho holds it up to
// handoverTimeout, and the next connection does not need it.
func (cn *conn) disconnect() {
	cn.courier.stop()
	cn.c.Disconnect(250)
	cn.sock.abort()
}

// connect makes one connect attempt and subscribes. Cancelling ctx closes
// the attempt's socket, so the attempt ends at once (paho's own goroutine
// for it too) even when the broker accepted TCP and never answers.
func (l *Link) connect(ctx context.Context) (_ *conn, err error) {
	will, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "offline"})
	cn := &conn{sock: newSocket(), lost: make(chan error, 1)}
	o := paho.NewClientOptions().
		AddBroker(l.opts.Broker).
		SetClientID(l.opts.Store+"-"+l.opts.Terminal).
		SetUsername(l.opts.Username).
		SetPassword(l.opts.Password).
		SetCleanSession(true). // the hello reconciles; no broker-side queue to go stale
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(l.opts.ConnectTimeout).
		SetKeepAlive(15*time.Second).
		SetPingTimeout(5*time.Second).
		SetWriteTimeout(handoverTimeout). // see courier; socket writes are bounded by writeTimeout
		SetOrderMatters(false).
		SetWill(l.topics.Status(l.opts.Store, l.opts.Terminal), string(will), 1, true).
		SetDefaultPublishHandler(l.handle).
		SetCustomOpenConnectionFn(cn.sock.opener(ctx)).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case cn.lost <- err:
			default:
			}
		})
	if l.opts.TLS != nil {
		o.SetTLSConfig(l.opts.TLS)
	}
	cn.c = paho.NewClient(o)
	// Until connect returns, cancelling ctx closes the socket: the
	// session's own end (with its courier) takes over after.
	release := context.AfterFunc(ctx, cn.sock.abort)
	defer func() {
		release()
		if err != nil {
			cn.abort()
		}
	}()
	tok := cn.c.Connect()
	// paho bounds the attempt by ConnectTimeout; the wait is a backstop.
	if !waitToken(ctx, tok, 2*l.opts.ConnectTimeout) {
		return nil, fmt.Errorf("connect %s: timed out", l.opts.Broker)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("connect %s: %w", l.opts.Broker, err)
	}
	cn.courier = l.startCourier(cn.c, cn.sock)
	subs := map[string]byte{
		l.topics.Ack(l.opts.Store, l.opts.Terminal): 1,
		l.topics.Changes(l.opts.Store):              1,
	}
	handed := make(chan paho.Token, 1)
	cn.courier.do(func(c paho.Client) bool {
		handed <- c.SubscribeMultiple(subs, l.handle)
		return false
	})
	var st paho.Token
	backstop := time.NewTimer(10 * time.Second)
	defer backstop.Stop()
	select {
	case st = <-handed:
	case <-ctx.Done():
		return nil, ctx.Err()
	case err := <-cn.lost:
		return nil, fmt.Errorf("subscribe on %s: connection lost: %w", l.opts.Broker, err)
	case <-backstop.C:
		return nil, fmt.Errorf("subscribe on %s: timed out", l.opts.Broker)
	}
	if !waitToken(ctx, st, 10*time.Second) || st.Error() != nil {
		return nil, fmt.Errorf("subscribe on %s: %v", l.opts.Broker, st.Error())
	}
	// mochi and Mosquitto refuse a denied subscription by return code 0x80.
	if sub, ok := st.(*paho.SubscribeToken); ok {
		for topic, code := range sub.Result() {
			if code == 0x80 {
				return nil, fmt.Errorf("subscribe %s: refused by the broker (check the ACL for user %q)", topic, l.opts.Username)
			}
		}
	}
	on, _ := wire.Encode(wire.Status{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, State: "online", At: time.Now().UTC()})
	l.publish(cn, l.topics.Status(l.opts.Store, l.opts.Terminal), true, on)
	l.setState(func(s *State) { s.Connected, s.LastError = true, "" })
	return cn, nil
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

// publish hands a QoS 1 message to the connection's courier; it never
// blocks. The token is not waited for: it is not proof of delivery (paho
// #563), HQ's answer is.
func (l *Link) publish(cn *conn, topic string, retained bool, payload []byte) {
	cn.courier.do(func(c paho.Client) bool { return l.handPublish(c, topic, retained, payload) })
}

// handPublish is the courier's publish call; it reports whether paho took
// the packet for its writer.
func (l *Link) handPublish(c paho.Client, topic string, retained bool, payload []byte) bool {
	tok := c.Publish(topic, 1, retained, payload)
	select {
	case <-tok.Done():
		// Refused at once (not connected), or not taken within the
		// hand-over wait: nothing goes out, and HQ's silence brings a
		// resend.
		if err := tok.Error(); err != nil {
			l.log.Debug("publish not taken by paho", "topic", topic, "err", err)
			return false
		}
	default:
	}
	return true
}

// paho uses its WriteTimeout for two waits: for its writer to take a
// packet from Publish or Subscribe (the hand-over), and as the socket's
// write deadline. The link keeps the first short and applies the second
// itself (socket.Write).
const (
	handoverTimeout = 500 * time.Millisecond
	writeTimeout    = 10 * time.Second
)

// courier makes one connection's calls into paho (publish, subscribe) on a
// goroutine of its own, in order, so the session never blocks in paho.
//
// paho's Publish and Subscribe hand the packet to its writer through an
// unbuffered channel, and wait for it up to WriteTimeout with nothing to
// interrupt them. The writer takes it at once when it is idle; while it is
// writing an earlier packet the wait lasts that write (seconds on a slow
// uplink); and when the connection drops under a waiting call, the writer
// can be gone for good, and the call waits the whole timeout
// (eclipse/paho.mqtt.golang #325, #436). That is what kept a session stuck
// 10 s in Publish after a broker restart, and Close with it. So the courier
// hands paho a publish only once the previous one is on the socket
// (socket counts the PUBLISH packets written): the writer is idle at every
// hand-over, and the hand-over wait can be short (handoverTimeout) without
// cutting a slow uplink's throughput. Only a connection that drops within
// the microseconds of a hand-over can still hold the courier, for at most
// handoverTimeout. The goroutine is the link's: Close waits for it.
type courier struct {
	c       paho.Client
	sock    *socket
	mu      sync.Mutex
	queue   []func(paho.Client) bool // each reports whether it handed paho a PUBLISH
	stopped bool
	signal  chan struct{} // cap 1: the queue grew
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when the goroutine returns
}

func (l *Link) startCourier(c paho.Client, sock *socket) *courier {
	q := &courier{c: c, sock: sock, signal: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(q.done)
		q.run()
	}()
	return q
}

func (q *courier) run() {
	var handed int64 // PUBLISH packets handed to paho
	for {
		f, ok := q.next()
		if !ok {
			return
		}
		if !q.ready(handed) {
			continue // the socket is gone: nothing more goes out on it
		}
		if f(q.c) {
			handed++
		}
	}
}

// next waits for the next call; false once stopped.
func (q *courier) next() (func(paho.Client) bool, bool) {
	for {
		q.mu.Lock()
		if q.stopped {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.queue) > 0 {
			f := q.queue[0]
			q.queue[0] = nil
			q.queue = q.queue[1:]
			q.mu.Unlock()
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-q.quit:
			return nil, false
		}
	}
}

// ready waits until the handed PUBLISH packets are all on the socket. It
// reports false if the socket is gone (aborted, or a write failed) or the
// courier stopped.
func (q *courier) ready(handed int64) bool {
	for {
		written, ok := q.sock.published()
		if !ok {
			return false
		}
		if written >= handed {
			return true
		}
		select {
		case <-q.sock.progress:
		case <-q.quit:
			return false
		}
	}
}

// do queues f; it never blocks. After stop, f is dropped.
func (q *courier) do(f func(paho.Client) bool) {
	q.mu.Lock()
	if !q.stopped {
		q.queue = append(q.queue, f)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// last replaces the calls waiting with fs: the ones before are dropped.
func (q *courier) last(fs ...func(paho.Client) bool) {
	q.mu.Lock()
	if !q.stopped {
		q.queue = append([]func(paho.Client) bool(nil), fs...)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pending is how many calls wait their turn.
func (q *courier) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// stop drops the calls not yet made; the goroutine returns after the call
// in progress, if any.
func (q *courier) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.stopped {
		q.stopped = true
		q.queue = nil
		close(q.quit)
	}
}

// socket is the network connection of one paho client, as the link dials
// it and hands it to paho:
//   - abort closes it and refuses a dial still to return: that is how a
//     connect attempt is cancelled, and how Close ends a session;
//   - it counts the PUBLISH packets written, for the courier;
//   - it bounds every write by writeTimeout itself.
type socket struct {
	mu       sync.Mutex
	raw      net.Conn
	aborted  bool
	broken   bool          // a write failed
	written  int64         // PUBLISH packets written
	progress chan struct{} // cap 1: written, broken or aborted changed
	writeMu  sync.Mutex    // one write, with its deadline, at a time
}

func newSocket() *socket { return &socket{progress: make(chan struct{}, 1)} }

var errAborted = errors.New("connection attempt cancelled")

func (s *socket) abort() {
	s.mu.Lock()
	s.aborted = true
	raw := s.raw
	s.mu.Unlock()
	if raw != nil {
		raw.Close()
	}
	s.wake()
}

func (s *socket) wake() {
	select {
	case s.progress <- struct{}{}:
	default:
	}
}

// published returns how many PUBLISH packets are on the socket, and false
// once nothing more can go out on it.
func (s *socket) published() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written, !s.aborted && !s.broken
}

// opener is paho's OpenConnectionFunc for this client: it dials as paho's
// own opener does (eclipse/paho.mqtt.golang netconn.go: the same schemes,
// the same proxy from the environment), but with ctx, so a cancel ends a
// dial or TLS handshake in progress, and it keeps the connection for abort.
func (s *socket) opener(ctx context.Context) paho.OpenConnectionFunc {
	return func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
		c, err := dial(dctx, u, o)
		if err != nil {
			if ctx.Err() != nil {
				return nil, errAborted
			}
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.aborted {
			c.Close()
			return nil, errAborted
		}
		// paho dials again after a refused CONNACK (to try MQTT 3.1); it
		// has closed the earlier connection itself.
		s.raw = c
		return &meteredConn{Conn: c, s: s}, nil
	}
}

// meteredConn is the connection paho writes to (see socket).
type meteredConn struct {
	net.Conn
	s *socket
}

// Write writes one MQTT packet: paho writes each packet with one call,
// PINGREQ from its keepalive goroutine, the rest from its writer.
func (c *meteredConn) Write(b []byte) (int, error) {
	c.s.writeMu.Lock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := c.Conn.Write(b)
	_ = c.Conn.SetWriteDeadline(time.Time{})
	c.s.writeMu.Unlock()
	c.s.mu.Lock()
	if err != nil {
		c.s.broken = true
	} else if len(b) > 0 && b[0]>>4 == packets.Publish {
		c.s.written++
	}
	c.s.mu.Unlock()
	c.s.wake()
	return n, err
}

// SetWriteDeadline ignores paho's deadline: paho derives it from
// WriteTimeout, which the link keeps short for the hand-over; Write
// applies writeTimeout instead.
func (c *meteredConn) SetWriteDeadline(time.Time) error { return nil }

func supportedScheme(scheme string) bool {
	switch scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "mqtt+ssl", "tcps", "ws", "wss":
		return true
	}
	return false
}

func dial(ctx context.Context, u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		return dialTCP(ctx, d, u.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		if os.Getenv("all_proxy") == "" {
			return (&tls.Dialer{NetDialer: d, Config: o.TLSConfig}).DialContext(ctx, "tcp", u.Host)
		}
		c, err := dialTCP(ctx, d, u.Host)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	case "ws", "wss":
		// paho's websocket dial takes no context: it is bounded by
		// ConnectTimeout, and the MQTT handshake after it is cancellable.
		du := *u
		du.User = nil // paho #623
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		return paho.NewWebsocket(du.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	}
	return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
}

// dialTCP dials through the proxy the environment names (all_proxy,
// no_proxy), as paho does, or directly.
func dialTCP(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	if cd, ok := proxy.FromEnvironmentUsing(d).(proxy.ContextDialer); ok {
		return cd.DialContext(ctx, "tcp", addr)
	}
	return d.DialContext(ctx, "tcp", addr)
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

// session runs one connected session: hello, then the drain loop. It never
// calls into paho itself (see courier).
func (l *Link) session(ctx context.Context, cn *conn) error {
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
		l.publish(cn, l.topics.Hello(l.opts.Store, l.opts.Terminal), false, b)
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
		// Fill the window. After a resend the courier may still hold
		// batches of the abandoned window: wait for it rather than pile up.
		if reconciled {
			for len(sent) < l.opts.Window && cn.courier.pending() < l.opts.Window {
				evs, err := l.db.NextEvents(ctx, sentAfter, l.opts.BatchEvents, l.opts.BatchBytes)
				if err != nil {
					return err
				}
				if len(evs) == 0 {
					break
				}
				if err := l.publishBatch(cn, evs); err != nil {
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
		case err := <-cn.lost:
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

func (l *Link) publishBatch(cn *conn, evs []localdb.Event) error {
	b := wire.Batch{V: wire.SchemaVersion, Store: l.opts.Store, Terminal: l.opts.Terminal, DBID: l.db.ID(), SentAt: time.Now().UTC()}
	b.Events = make([]wire.Event, len(evs))
	for i, e := range evs {
		b.Events[i] = wire.Event{Seq: e.Seq, ID: e.ID, Type: e.Type, At: e.CreatedAt, Payload: e.Payload}
	}
	data, err := wire.EncodeBatch(&b)
	if errors.Is(err, wire.ErrTooLarge) && len(evs) > 1 {
		// Split rather than stall: halves always get smaller.
		if err := l.publishBatch(cn, evs[:len(evs)/2]); err != nil {
			return err
		}
		return l.publishBatch(cn, evs[len(evs)/2:])
	}
	if err != nil {
		return fmt.Errorf("encode batch through seq %d: %w", evs[len(evs)-1].Seq, err)
	}
	// The token is not proof of delivery (paho #563); HQ's ack is. It is not
	// waited for, so the window of batches really is in flight.
	l.publish(cn, l.topics.Events(l.opts.Store, l.opts.Terminal), false, data)
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
