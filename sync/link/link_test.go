package link

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// peerHQ is a scripted HQ at the MQTT seam: it stores seqs, acks the highest
// contiguous one, and can drop or reject; a new database id is answered with
// a rebase. The real HQ is exercised end to end in cmd/pos-demo and hq's
// tests; this peer lets the link's own rules be tested one at a time.
//
// Like the real HQ it never publishes from paho's router (the handler only
// records and queues the answer): a handler that publishes while the
// connection drops deadlocks paho's shutdown of that connection until the
// publish times out (30 s by default), and the peer then sits deaf on a dead
// connection while the link reconnects and is not answered.
type peerHQ struct {
	t      testing.TB
	c      paho.Client
	topics wire.Topics
	log    *slog.Logger

	mu       sync.Mutex
	got      map[int64]string // seq → event id
	dupes    int
	dbID     string
	drop     bool
	dropped  int
	rejectID map[int64]string
	hellos   int
	batches  int

	outMu  sync.Mutex
	out    []peerMsg     // answers waiting for the sender
	signal chan struct{} // cap 1: out has something
	stop   chan struct{}
	wg     sync.WaitGroup
}

type peerMsg struct {
	topic   string
	payload []byte
}

func newPeerHQ(tb testing.TB, brokerURL string) *peerHQ {
	tb.Helper()
	p := &peerHQ{t: tb, topics: wire.NewTopics(""), got: map[int64]string{}, rejectID: map[int64]string{},
		log: testLogger(tb).With("who", "peer"), signal: make(chan struct{}, 1), stop: make(chan struct{})}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("hq-peer").SetUsername("hq").
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond).
		SetMaxReconnectInterval(100 * time.Millisecond).
		// Bounds how long the sender can sit in a publish to a dying
		// connection (paho waits up to this for its writer; 30 s if unset).
		SetWriteTimeout(time.Second).
		SetConnectionLostHandler(func(_ paho.Client, err error) { p.log.Debug("peer connection lost", "err", err) }).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { p.log.Debug("peer reconnecting") }).
		SetOnConnectHandler(func(c paho.Client) {
			// paho runs this on a goroutine of its own: waiting is fine.
			st := c.Subscribe(p.topics.UpFilter(), 1, p.onMessage)
			st.WaitTimeout(5 * time.Second)
			p.log.Debug("peer connected and subscribed", "err", st.Error())
		})
	p.c = paho.NewClient(o)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.sender()
	}()
	tb.Cleanup(func() {
		close(p.stop)
		p.wg.Wait()
		p.c.Disconnect(0)
	})
	tok := p.c.Connect()
	require.True(tb, tok.WaitTimeout(5*time.Second))
	require.NoError(tb, tok.Error())
	return p
}

// sender publishes the peer's answers in order, off paho's router. The
// tokens are not waited for: a lost ack costs the link a resend.
func (p *peerHQ) sender() {
	for {
		select {
		case <-p.stop:
			return
		case <-p.signal:
		}
		p.outMu.Lock()
		out := p.out
		p.out = nil
		p.outMu.Unlock()
		for _, m := range out {
			p.c.Publish(m.topic, 1, false, m.payload)
		}
	}
}

func (p *peerHQ) send(topic string, payload []byte) {
	p.outMu.Lock()
	p.out = append(p.out, peerMsg{topic, payload})
	p.outMu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *peerHQ) contiguous() int64 {
	var n int64
	for {
		if _, ok := p.got[n+1]; !ok {
			return n
		}
		n++
	}
}

func (p *peerHQ) onMessage(_ paho.Client, m paho.Message) {
	t, err := p.topics.Parse(m.Topic())
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop {
		p.dropped++
		return
	}
	ack := wire.Ack{V: wire.SchemaVersion, Store: t.Store, Terminal: t.Terminal, At: time.Now().UTC()}
	switch t.Kind {
	case wire.KindHello:
		h, err := wire.DecodeHello(m.Payload())
		if err != nil {
			return
		}
		p.hellos++
		p.log.Debug("peer hello", "acked", h.LastAckedSeq, "last", h.LastSeq, "contig", p.contiguous())
		ack.DBID = h.DBID
		if p.dbID != "" && h.DBID != p.dbID && len(p.got) > 0 {
			ack.Rebase = p.contiguous()
		}
		p.dbID = h.DBID
	case wire.KindEvents:
		b, err := wire.DecodeBatch(m.Payload())
		if err != nil {
			return
		}
		p.batches++
		if len(b.Events) > 0 {
			p.log.Debug("peer batch", "first", b.Events[0].Seq, "last", b.Events[len(b.Events)-1].Seq, "contig_before", p.contiguous())
		}
		ack.DBID = b.DBID
		for _, e := range b.Events {
			if id, ok := p.got[e.Seq]; ok {
				if id != e.ID {
					p.t.Errorf("seq %d reused for a different event", e.Seq)
				}
				p.dupes++
				continue
			}
			p.got[e.Seq] = e.ID
			if reason, ok := p.rejectID[e.Seq]; ok {
				ack.Rejected = append(ack.Rejected, wire.Rejection{Seq: e.Seq, ID: e.ID, Reason: reason})
			}
		}
	default:
		return
	}
	ack.Through = p.contiguous()
	b, _ := wire.Encode(ack)
	p.log.Debug("peer ack", "through", ack.Through)
	p.send(p.topics.Ack(t.Store, t.Terminal), b)
}

func (p *peerHQ) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// locked runs f under the peer's lock. Tests read and set the peer's
// fields through it, so a failing assertion never leaves the lock held
// (paho's router would block on it for good).
func (p *peerHQ) locked(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

func startBroker(tb testing.TB) *embedbroker.Broker {
	tb.Helper()
	b, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	require.NoError(tb, err)
	tb.Cleanup(func() { b.Close() })
	return b
}

func openDB(tb testing.TB, path string) *localdb.DB {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "pos.db")
	}
	db, err := localdb.Open(context.Background(), path, localdb.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close(context.Background()) })
	return db
}

func addEvents(tb testing.TB, db *localdb.DB, n int) {
	tb.Helper()
	require.NoError(tb, db.WriteTx(context.Background(), func(tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			if _, err := localdb.AppendEvent(context.Background(), tx, "test.event", map[string]int{"i": i}, time.Now()); err != nil {
				return err
			}
		}
		return nil
	}))
}

func startLink(tb testing.TB, db *localdb.DB, broker string, mod func(*Options)) *Link {
	tb.Helper()
	o := Options{Store: "S1", Terminal: "T1", Broker: broker, AgentVersion: "test",
		BatchEvents: 100, AckTimeout: 500 * time.Millisecond, BackoffMin: 20 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond, Poll: 20 * time.Millisecond, Logger: testLogger(tb).With("who", "link")}
	if mod != nil {
		mod(&o)
	}
	l := New(db, o)
	require.NoError(tb, l.Open(context.Background()))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			tb.Errorf("%v; goroutines of the link and paho:\n\n%s", err, strings.Join(linkGoroutines(), "\n\n"))
		}
	})
	return l
}

func backlog(tb testing.TB, l *Link) int64 {
	s, err := l.State(context.Background())
	require.NoError(tb, err)
	return s.Backlog
}

func TestLinkDrainsOutboxInOrderExactlyOnce(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	db := openDB(t, "")
	addEvents(t, db, 1234)
	l := startLink(t, db, b.URL(), nil)
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 1234, hq.count())
	addEvents(t, db, 10)
	l.Notify()
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1244, hq.count())
	s, err := l.State(context.Background())
	require.NoError(t, err)
	require.True(t, s.Connected)
	require.EqualValues(t, 1244, s.AckedSeq)
	require.False(t, s.LastAck.IsZero())
}

func TestLinkBrokerDownAtStartThenUp(t *testing.T) {
	b := startBroker(t)
	url := b.URL()
	require.NoError(t, b.Close())
	db := openDB(t, "")
	addEvents(t, db, 50)
	l := startLink(t, db, url, nil)
	require.Eventually(t, func() bool {
		s, _ := l.State(context.Background())
		return s.LastError != ""
	}, 5*time.Second, 10*time.Millisecond, "link reports the broker is away")
	require.EqualValues(t, 50, backlog(t, l), "nothing is lost or acked while offline")

	b2, err := embedbroker.Restart(b)
	require.NoError(t, err)
	t.Cleanup(func() { b2.Close() })
	hq := newPeerHQ(t, b2.URL())
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, 50, hq.count())
}

func TestLinkBrokerRestartMidBatchLosesNothing(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	db := openDB(t, "")
	addEvents(t, db, 3000)
	l := startLink(t, db, b.URL(), func(o *Options) { o.BatchEvents = 50; o.Window = 2 })
	require.Eventually(t, func() bool { return hq.count() > 0 }, 10*time.Second, time.Millisecond)
	b2, err := embedbroker.Restart(b) // sessions and queues lost
	require.NoError(t, err)
	t.Cleanup(func() { b2.Close() })
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 3000, hq.count())
}

func TestLinkResendsWhenHQLosesABatch(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	db := openDB(t, "")
	l := startLink(t, db, b.URL(), nil)
	require.Eventually(t, func() bool { s, _ := l.State(context.Background()); return s.Reconciled }, 5*time.Second, 10*time.Millisecond)
	hq.locked(func() { hq.drop = true })
	addEvents(t, db, 20)
	l.Notify()
	require.Eventually(t, func() bool {
		var n int
		hq.locked(func() { n = hq.dropped })
		return n > 0
	}, 5*time.Second, 10*time.Millisecond)
	hq.locked(func() { hq.drop = false })
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 10*time.Second, 20*time.Millisecond)
	s, _ := l.State(context.Background())
	require.Positive(t, s.Resends)
	require.Equal(t, 20, hq.count())
}

func TestLinkDeadLettersRejectedEventsAndGoesOn(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	hq.locked(func() { hq.rejectID[3] = "payload: bad schema" })
	db := openDB(t, "")
	addEvents(t, db, 5)
	l := startLink(t, db, b.URL(), nil)
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 10*time.Second, 20*time.Millisecond)
	s, _ := l.State(context.Background())
	require.EqualValues(t, 1, s.Rejected)
	var reason string
	require.NoError(t, db.Read.QueryRow("SELECT rejected FROM outbox WHERE seq = 3").Scan(&reason))
	require.Equal(t, "payload: bad schema", reason)
}

func TestLinkReinstalledTerminalContinuesAboveHQ(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	old := openDB(t, "")
	addEvents(t, old, 30)
	l := startLink(t, old, b.URL(), nil)
	require.Eventually(t, func() bool { return backlog(t, l) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, l.Close(context.Background()))

	fresh := openDB(t, "") // same store and terminal, empty database
	addEvents(t, fresh, 7)
	l2 := startLink(t, fresh, b.URL(), nil)
	require.Eventually(t, func() bool { return backlog(t, l2) == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 37, hq.count(), "the new database's events did not collide with seq 1..30")
	var minSeq int64
	require.NoError(t, fresh.Read.QueryRow("SELECT MIN(seq) FROM outbox").Scan(&minSeq))
	require.EqualValues(t, 31, minSeq)
}

func TestLinkAppliesChangeFeedInOrderOnce(t *testing.T) {
	b := startBroker(t)
	hq := newPeerHQ(t, b.URL())
	_ = hq
	db := openDB(t, "")
	var mu sync.Mutex
	var applied []int64
	l := startLink(t, db, b.URL(), func(o *Options) {
		o.Apply = func(ctx context.Context, tx *sql.Tx, c wire.Change) error {
			if c.Kind == "broken" {
				return fmt.Errorf("cannot apply")
			}
			mu.Lock()
			applied = append(applied, c.Version)
			mu.Unlock()
			return nil
		}
	})
	require.Eventually(t, func() bool { s, _ := l.State(context.Background()); return s.Reconciled }, 5*time.Second, 10*time.Millisecond)
	pub := func(after int64, versions ...int64) {
		msg := wire.Changes{V: 1, Store: "S1", After: after, Latest: versions[len(versions)-1], At: time.Now().UTC()}
		for _, v := range versions {
			kind := "product"
			if v == 6 {
				kind = "broken"
			}
			msg.Changes = append(msg.Changes, wire.Change{Version: v, Kind: kind, Key: fmt.Sprint(v), Op: wire.OpUpsert, Data: json.RawMessage(`{}`), At: time.Now().UTC()})
		}
		data, err := wire.Encode(msg)
		require.NoError(t, err)
		require.True(t, hq.c.Publish(wire.NewTopics("").Changes("S1"), 1, false, data).WaitTimeout(2*time.Second))
	}
	pub(0, 1, 2, 4)
	pub(0, 1, 2, 4) // duplicate delivery
	pub(9, 10)      // leapfrogs 5..9: refused, a hello asks for a resend
	pub(4, 6, 7)    // 6 cannot be applied: skipped, the feed goes on
	require.Eventually(t, func() bool {
		s, _ := l.State(context.Background())
		return s.FeedVersion == 7
	}, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	got := append([]int64(nil), applied...)
	mu.Unlock()
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	require.Equal(t, []int64{1, 2, 4, 7}, got)
	// The hello the gap asks for reaches HQ on its own time: wait for it.
	require.Eventually(t, func() bool {
		var n int
		hq.locked(func() { n = hq.hellos })
		return n >= 2
	}, 10*time.Second, 10*time.Millisecond, "the gap triggered another hello")
}

func TestLinkRefusesBadOptions(t *testing.T) {
	db := openDB(t, "")
	require.Error(t, New(db, Options{Store: "S/1", Terminal: "T1", Broker: "tcp://x"}).Open(context.Background()))
	require.Error(t, New(db, Options{Store: "S1", Terminal: "T1"}).Open(context.Background()))
	for _, broker := range []string{"http://h:1883", "tcp://", "h:1883", "tcp://%zz"} {
		err := New(db, Options{Store: "S1", Terminal: "T1", Broker: broker}).Open(context.Background())
		require.Error(t, err, broker)
		require.Contains(t, err.Error(), "broker", broker)
	}
}

// TestLinkBacksOffAfterSessionsThatEndAtOnce: a broker that lets the link
// connect and subscribe, then drops the connection as soon as the link
// publishes its hello (as when a second terminal configured with this
// one's ids takes the session over, again and again). The link backs off
// as after a failed connect instead of reconnecting in a tight loop.
func TestLinkBacksOffAfterSessionsThatEndAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var sessions atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if dropAfterHello(c) {
				sessions.Add(1)
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	startLink(t, openDB(t, ""), "tcp://"+ln.Addr().String(), func(o *Options) {
		o.BackoffMin, o.BackoffMax = 200*time.Millisecond, 400*time.Millisecond
	})
	require.Eventually(t, func() bool { return sessions.Load() >= 2 }, 30*time.Second, 10*time.Millisecond)
	from, start := sessions.Load(), time.Now()
	require.Eventually(t, func() bool { return time.Since(start) >= 2*time.Second }, 10*time.Second, 50*time.Millisecond)
	// Each wait is at least BackoffMin/2 = 100 ms: at most 2 s / 100 ms + 1
	// = 21 sessions in the window. Without the backoff the link reconnects
	// at once, hundreds of times.
	n := sessions.Load() - from
	t.Logf("%d sessions in 2 s", n)
	require.LessOrEqual(t, n, int64(21))
}

// dropAfterHello plays an MQTT 3.1.1 broker on c up to the client's first
// PUBLISH: CONNACK for the CONNECT, SUBACK for each SUBSCRIBE. It reports
// whether the client got that far.
func dropAfterHello(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		var hdr [1]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return false
		}
		n, mul := 0, 1 // remaining length, MQTT variable byte integer
		for {
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return false
			}
			n += int(b[0]&0x7f) * mul
			mul *= 128
			if b[0]&0x80 == 0 {
				break
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			return false
		}
		switch hdr[0] >> 4 {
		case 1: // CONNECT
			c.Write([]byte{0x20, 0x02, 0x00, 0x00})
		case 8: // SUBSCRIBE: packet id, then (topic, qos) pairs
			var qos []byte
			for i := 2; i+2 <= len(body); {
				l := int(body[i])<<8 | int(body[i+1])
				i += 2 + l
				if i < len(body) {
					qos = append(qos, body[i])
				}
				i++
			}
			c.Write(append([]byte{0x90, byte(2 + len(qos)), body[0], body[1]}, qos...))
		case 3: // PUBLISH: the hello
			return true
		}
	}
}
