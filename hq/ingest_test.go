package hq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore/pgtest"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	st "github.com/edgepos/edgepos/hq/storetest"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/sync/wire"
)

var topics = wire.NewTopics("")

// wait is the deadline for anything to happen over the local broker.
const wait = 10 * time.Second

func startBroker(tb testing.TB) string {
	tb.Helper()
	b, err := embedbroker.Start(embedbroker.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { b.Close() })
	return b.URL()
}

func openStore(tb testing.TB) hq.Store {
	tb.Helper()
	s, err := sqlitestore.Open(context.Background(), filepath.Join(tb.TempDir(), "hq.db"), sqlitestore.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

type hqOpt func(*hq.Options)

// startHQ starts a Service on broker with store and waits until it is
// subscribed. The returned stop func closes it (safe to call twice).
func startHQ(tb testing.TB, broker string, store hq.Store, clientID string, mods ...hqOpt) (*hq.Service, func()) {
	tb.Helper()
	o := hq.Options{Store: store, Broker: broker, ClientID: clientID, DataDir: tb.TempDir(), Workers: 2,
		APIListen: "127.0.0.1:0", APITokens: []string{"secret-token"}}
	for _, m := range mods {
		m(&o)
	}
	svc := hq.New(o)
	require.NoError(tb, svc.Open(context.Background()))
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			require.NoError(tb, svc.Close(ctx))
		})
	}
	tb.Cleanup(stop)
	require.Eventually(tb, svc.Ready, wait, 10*time.Millisecond, "hq subscribed")
	return svc, stop
}

// terminal is a scripted store terminal on the broker.
type terminal struct {
	tb              testing.TB
	c               paho.Client
	store, terminal string
	db              string
	acks            chan *wire.Ack
	changes         chan *wire.Changes
	// applied is the highest feed version nextChangeOf returned: the feed
	// is delivered at least once (live and again after a hello), and a
	// store applies each version once.
	applied int64
}

func newTerminal(tb testing.TB, broker, store, term string) *terminal {
	tb.Helper()
	t := &terminal{tb: tb, store: store, terminal: term, db: st.NewID(tb),
		acks: make(chan *wire.Ack, 100), changes: make(chan *wire.Changes, 100)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("%s-%s-%d", store, term, time.Now().UnixNano())).
		SetUsername(store).SetCleanSession(true).SetAutoReconnect(false)
	t.c = paho.NewClient(o)
	tok := t.c.Connect()
	require.True(tb, tok.WaitTimeout(wait))
	require.NoError(tb, tok.Error())
	tb.Cleanup(func() { t.c.Disconnect(0) })
	sub := t.c.SubscribeMultiple(map[string]byte{topics.Ack(store, term): 1, topics.Changes(store): 1}, func(_ paho.Client, m paho.Message) {
		tp, err := topics.Parse(m.Topic())
		if err != nil {
			return
		}
		switch tp.Kind {
		case wire.KindAck:
			a, err := wire.DecodeAck(m.Payload())
			if err == nil {
				t.acks <- a
			}
		case wire.KindChanges:
			c, err := wire.DecodeChanges(m.Payload())
			if err == nil {
				t.changes <- c
			}
		}
	})
	require.True(tb, sub.WaitTimeout(wait))
	require.NoError(tb, sub.Error())
	return t
}

func (t *terminal) publish(topic string, payload []byte) {
	t.tb.Helper()
	tok := t.c.Publish(topic, 1, false, payload)
	require.True(t.tb, tok.WaitTimeout(wait))
	require.NoError(t.tb, tok.Error())
}

func (t *terminal) batch(evs ...wire.Event) *wire.Batch {
	return st.Batch(t.store, t.terminal, t.db, evs...)
}

func (t *terminal) send(msg any) {
	t.tb.Helper()
	data, err := wire.Encode(msg)
	require.NoError(t.tb, err)
	kind := topics.Events(t.store, t.terminal)
	if _, ok := msg.(wire.Hello); ok {
		kind = topics.Hello(t.store, t.terminal)
	}
	t.publish(kind, data)
}

func (t *terminal) hello(lastSeq, feed int64, clock time.Time) {
	t.tb.Helper()
	t.send(wire.Hello{V: 1, Store: t.store, Terminal: t.terminal, AgentVersion: "test", DBID: t.db, LastSeq: lastSeq, FeedVersion: feed, Clock: clock})
}

// ack waits for the next ack.
func (t *terminal) ack() *wire.Ack {
	t.tb.Helper()
	select {
	case a := <-t.acks:
		return a
	case <-time.After(wait):
		t.tb.Fatalf("no ack for %s/%s within %s", t.store, t.terminal, wait)
		return nil
	}
}

func eventCount(tb testing.TB, s hq.Store, store string) int64 {
	tb.Helper()
	f, err := s.Fleet(context.Background())
	require.NoError(tb, err)
	for _, x := range f {
		if x.Store == store {
			return x.HighSeq
		}
	}
	return 0
}

func TestBatchStoredAndAcked(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")

	term.hello(0, 0, time.Now().UTC())
	a := term.ack()
	require.Equal(t, term.db, a.DBID)
	require.Zero(t, a.Through)
	require.Positive(t, a.FeedVersion, "the initial coupon key is in the feed")

	b := term.batch(st.Sale(t, 1, "2026-11-23", 1000, 100), st.Sale(t, 2, "2026-11-23", 500, 50))
	term.send(b)
	a = term.ack()
	require.Equal(t, int64(2), a.Through)
	require.Equal(t, term.db, a.DBID)
	require.Empty(t, a.Rejected)

	// The same batch again: stored once, acked again.
	term.send(b)
	a = term.ack()
	require.Equal(t, int64(2), a.Through)
	sales, err := store.Sales(context.Background(), "S1", "2026-11-23")
	require.NoError(t, err)
	require.Equal(t, int64(2), sales[0].Count)
	require.Equal(t, int64(1500), sales[0].Gross)
}

func TestGapHoldsAck(t *testing.T) {
	broker := startBroker(t)
	startHQ(t, broker, openStore(t), "hq-test")
	term := newTerminal(t, broker, "S1", "T1")
	term.send(term.batch(st.Stock(t, 1, "A", 1, 1, st.T0)))
	require.Equal(t, int64(1), term.ack().Through)
	term.send(term.batch(st.Stock(t, 3, "A", 1, 1, st.T0), st.Stock(t, 4, "A", 1, 1, st.T0)))
	require.Equal(t, int64(1), term.ack().Through, "seq 2 missing: the ack stays at 1")
	term.send(term.batch(st.Stock(t, 2, "A", 1, 1, st.T0)))
	require.Equal(t, int64(4), term.ack().Through)
}

func TestRejectedPayloadListedAndSkipped(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")
	bad := st.Event(t, 2, wire.EventSaleCompleted, map[string]any{"sale_id": "x", "receipt": "r", "business_day": "23/11/2026", "lines": []any{}})
	term.send(term.batch(st.Sale(t, 1, "2026-11-23", 100, 0), bad, st.Sale(t, 3, "2026-11-23", 100, 0)))
	a := term.ack()
	require.Equal(t, int64(3), a.Through, "a rejected event does not block the queue")
	require.Len(t, a.Rejected, 1)
	require.Equal(t, int64(2), a.Rejected[0].Seq)
	require.Equal(t, bad.ID, a.Rejected[0].ID)
	q, err := store.ListQuarantine(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, q, 1)
	require.Equal(t, bad.ID, q[0].EventID)
}

func TestBadMessagesQuarantinedIngestGoesOn(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")

	good, err := json.Marshal(term.batch(st.Stock(t, 1, "A", 1, 1, st.T0)))
	require.NoError(t, err)
	wrongVersion := bytes.Replace(good, []byte(`"v":1`), []byte(`"v":9`), 1)
	otherStore, err := json.Marshal(st.Batch("S2", "T1", term.db, st.Stock(t, 1, "A", 1, 1, st.T0)))
	require.NoError(t, err)
	otherTerm, err := json.Marshal(st.Batch("S1", "T9", term.db, st.Stock(t, 1, "A", 1, 1, st.T0)))
	require.NoError(t, err)
	cases := []struct {
		name, topic string
		payload     []byte
		reason      string
	}{
		{"non-JSON", topics.Events("S1", "T1"), []byte("this is not json"), "malformed"},
		{"truncated", topics.Events("S1", "T1"), good[:len(good)-10], "malformed"},
		{"oversized", topics.Events("S1", "T1"), append(bytes.Repeat([]byte(" "), wire.MaxMessageBytes), good...), hq.ReasonOversize},
		{"wrong version", topics.Events("S1", "T1"), wrongVersion, "version"},
		{"store differs from topic", topics.Events("S1", "T1"), otherStore, hq.ReasonMismatch},
		{"terminal differs from topic", topics.Events("S1", "T1"), otherTerm, hq.ReasonMismatch},
		{"unknown upload kind", "edgepos/v1/stores/S1/terminals/T1/up/other", good, hq.ReasonBadTopic},
		{"bad hello", topics.Hello("S1", "T1"), []byte(`{"v":1}`), "invalid"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			term.publish(tc.topic, tc.payload)
			require.Eventually(t, func() bool {
				q, err := store.ListQuarantine(context.Background(), 100)
				require.NoError(t, err)
				return len(q) == i+1
			}, wait, 10*time.Millisecond)
			q, err := store.ListQuarantine(context.Background(), 1)
			require.NoError(t, err)
			require.Contains(t, q[0].Reason, tc.reason)
			require.Equal(t, tc.topic, q[0].Topic)
			require.Equal(t, len(tc.payload), q[0].Size)
			require.LessOrEqual(t, len(q[0].Raw), hq.MaxQuarantineRaw)
			if tc.topic == topics.Events("S1", "T1") {
				require.Equal(t, "S1", q[0].Store, "store and terminal from the topic")
				require.Equal(t, "T1", q[0].Terminal)
			}
		})
	}
	select {
	case a := <-term.acks:
		t.Fatalf("a quarantined message was acked: %+v", a)
	default:
	}
	// Ingest goes on.
	term.publish(topics.Events("S1", "T1"), good)
	require.Equal(t, int64(1), term.ack().Through)
}

func TestCrashAfterCommitRedeliveryDeduplicated(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, stop := startHQ(t, broker, store, "hq-crash-after")
	var crashed atomic.Int32
	crashedCh := make(chan struct{})
	hq.SetAfterCommit(svc, func(kind wire.Kind, _, _ string) error {
		if kind == wire.KindEvents && crashed.Add(1) == 1 {
			close(crashedCh)
			return errors.New("killed between commit and ack")
		}
		return nil
	})
	term := newTerminal(t, broker, "S1", "T1")
	term.send(term.batch(st.Sale(t, 1, "2026-11-23", 100, 0), st.Sale(t, 2, "2026-11-23", 100, 0)))
	select {
	case <-crashedCh:
	case <-time.After(wait):
		t.Fatal("batch never reached the commit")
	}
	stop() // HQ dies with the batch committed but not acked

	// Restart with the same client id: the broker redelivers.
	startHQ(t, broker, store, "hq-crash-after")
	a := term.ack()
	require.Equal(t, int64(2), a.Through)
	sales, err := store.Sales(context.Background(), "S1", "")
	require.NoError(t, err)
	require.Equal(t, int64(2), sales[0].Count, "the redelivery is deduplicated")
}

func TestCrashBeforeCommitRedelivered(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, stop := startHQ(t, broker, store, "hq-crash-before")
	failed := make(chan struct{})
	var n atomic.Int32
	hq.SetBeforeStore(svc, func(string, string) error {
		if n.Add(1) == 1 {
			close(failed)
		}
		return errors.New("killed before commit")
	})
	term := newTerminal(t, broker, "S1", "T1")
	term.send(term.batch(st.Sale(t, 1, "2026-11-23", 100, 0)))
	select {
	case <-failed:
	case <-time.After(wait):
		t.Fatal("batch never reached HQ")
	}
	stop()
	require.Zero(t, eventCount(t, store, "S1"))

	// While HQ is down the terminal uploads more: the broker queues it for
	// HQ's persistent session.
	term.send(term.batch(st.Sale(t, 2, "2026-11-23", 100, 0)))

	startHQ(t, broker, store, "hq-crash-before")
	require.Eventually(t, func() bool {
		s, err := store.Sales(context.Background(), "S1", "")
		require.NoError(t, err)
		return len(s) == 1 && s[0].Count == 2
	}, wait, 10*time.Millisecond)
	var last int64
	for last < 2 {
		last = term.ack().Through
	}
	require.Equal(t, int64(2), last)
	s, err := store.Sales(context.Background(), "S1", "")
	require.NoError(t, err)
	require.Equal(t, int64(2), s[0].Count, "stored once")
}

func TestReinstalledTerminalGetsRebase(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	term.ack()
	term.send(term.batch(st.Stock(t, 1, "A", 1, 1, st.T0), st.Stock(t, 2, "A", 1, 1, st.T0), st.Stock(t, 3, "A", 1, 1, st.T0)))
	require.Equal(t, int64(3), term.ack().Through)

	// Same store and terminal id, new database.
	term.db = st.NewID(t)
	term.hello(2, 0, time.Now().UTC())
	a := term.ack()
	require.Equal(t, term.db, a.DBID)
	require.Equal(t, int64(3), a.Rebase)
	require.Equal(t, int64(3), a.Through)
	term.send(term.batch(st.Stock(t, 4, "A", 1, 1, st.T0)))
	require.Equal(t, int64(4), term.ack().Through)

	// A known database restored from an older backup: Through lets it jump.
	term.hello(1, 0, time.Now().UTC())
	a = term.ack()
	require.Zero(t, a.Rebase)
	require.Equal(t, int64(4), a.Through)
}

func TestClockDaysOffIsAccepted(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")
	off := time.Now().UTC().Add(-5 * 24 * time.Hour)
	term.hello(0, 0, off)
	term.ack()
	e := st.Stock(t, 1, "A", 7000, -1000, off)
	e.At = off
	term.send(term.batch(e))
	require.Equal(t, int64(1), term.ack().Through)
	f, err := store.Fleet(context.Background())
	require.NoError(t, err)
	require.InDelta(t, float64(-5*24*time.Hour/time.Millisecond), float64(f[0].ClockSkewMS), float64(time.Minute/time.Millisecond))
	inv, err := store.Inventory(context.Background(), "S1")
	require.NoError(t, err)
	require.True(t, off.Equal(inv[0].ReportedAt), "times are stored as sent")
}

func TestCouponRedeemedInTwoStores(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	coupon := st.NewID(t)
	t1 := newTerminal(t, broker, "S1", "T1")
	t2 := newTerminal(t, broker, "S2", "T1")
	t1.send(t1.batch(st.Redeem(t, 1, coupon, "S1-T1-000001", st.T0.Add(time.Minute))))
	t1.ack()
	t2.send(t2.batch(st.Redeem(t, 1, coupon, "S2-T1-000001", st.T0.Add(2*time.Minute))))
	t2.ack()
	info, err := store.Coupon(context.Background(), coupon)
	require.NoError(t, err)
	var winners int
	for _, r := range info.Redemptions {
		if r.Status == hq.RedemptionWinner {
			winners++
		}
	}
	require.Equal(t, 1, winners, "one redemption")
	conf, err := store.CouponConflicts(context.Background())
	require.NoError(t, err)
	require.Len(t, conf, 1, "one conflict")
	require.Equal(t, "S2-T1-000001", conf[0].Loser.Receipt)
	require.Equal(t, "S1-T1-000001", conf[0].Winner.Receipt)
}

func TestStatusAndHelloUpdateFleet(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	startHQ(t, broker, store, "hq-test")
	term := newTerminal(t, broker, "S1", "T1")
	on, err := wire.Encode(wire.Status{V: 1, Store: "S1", Terminal: "T1", State: "online", At: time.Now().UTC()})
	require.NoError(t, err)
	term.publish(topics.Status("S1", "T1"), on)
	require.Eventually(t, func() bool {
		f, err := store.Fleet(context.Background())
		require.NoError(t, err)
		return len(f) == 1 && f[0].Online
	}, wait, 10*time.Millisecond)
	term.publish(topics.Status("S1", "T1"), []byte("offline"))
	require.Eventually(t, func() bool {
		f, err := store.Fleet(context.Background())
		require.NoError(t, err)
		return len(f) == 1 && !f[0].Online
	}, wait, 10*time.Millisecond)
	term.send(wire.Hello{V: 1, Store: "S1", Terminal: "T1", AgentVersion: "9.9.9", DBID: term.db, Backlog: 42, Clock: time.Now().UTC()})
	term.ack()
	f, err := store.Fleet(context.Background())
	require.NoError(t, err)
	require.Equal(t, "9.9.9", f[0].AgentVersion)
	require.Equal(t, int64(42), f[0].Backlog)
}

func TestHelloResendsChangeFeed(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	var chs []hq.ChangeInput
	for i := 0; i < 3; i++ {
		chs = append(chs, hq.ChangeInput{Store: "S1", Kind: wire.ChangeProduct, Key: fmt.Sprint("SKU", i), Op: wire.OpUpsert, Data: json.RawMessage(`{}`)})
	}
	_, err := svc.Store().AppendChanges(context.Background(), chs)
	require.NoError(t, err)
	latest, err := store.FeedLatest(context.Background(), "S1")
	require.NoError(t, err)

	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	a := term.ack()
	require.Equal(t, latest, a.FeedVersion)
	select {
	case c := <-term.changes:
		require.Equal(t, "S1", c.Store)
		require.Zero(t, c.After)
		require.Equal(t, latest, c.Latest)
		require.Equal(t, latest, c.Changes[len(c.Changes)-1].Version)
		require.Equal(t, wire.ChangeCouponKey, c.Changes[0].Kind, "the key comes first")
	case <-time.After(wait):
		t.Fatal("no change feed after a hello that was behind")
	}
	// A hello that is up to date gets no resend.
	term.hello(0, latest, time.Now().UTC())
	term.ack()
	select {
	case c := <-term.changes:
		t.Fatalf("unexpected resend: %+v", c)
	default:
	}
}

// TestMosquittoEndToEnd runs the key path against the Mosquitto on
// 127.0.0.1:1883 (anonymous access).
func TestMosquittoEndToEnd(t *testing.T) {
	const addr = "127.0.0.1:1883"
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if os.Getenv("EDGEPOS_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("mosquitto not reachable at %s: %v", addr, err)
		}
		t.Skipf("mosquitto not reachable at %s: %v", addr, err)
	}
	c.Close()
	broker := "tcp://" + addr
	store := openStore(t)
	clientID := "hq-it-" + strings.ReplaceAll(st.NewID(t), "-", "")[:16]
	t.Cleanup(func() {
		// Drop the persistent session this test made on the shared broker.
		c := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(wait) && tok.Error() == nil {
			c.Disconnect(0)
		}
	})
	svc, stop := startHQ(t, broker, store, clientID)
	// Unique ids: the broker is shared with other tests.
	sid := "S" + strings.ReplaceAll(st.NewID(t), "-", "")[20:]
	term := newTerminal(t, broker, sid, "T1")
	term.hello(0, 0, time.Now().UTC())
	require.Zero(t, term.ack().Through)
	b := term.batch(st.Sale(t, 1, "2026-11-23", 100, 0), st.Sale(t, 2, "2026-11-23", 100, 0))
	term.send(b)
	require.Equal(t, int64(2), term.ack().Through)
	term.send(b)
	require.Equal(t, int64(2), term.ack().Through)
	term.send(term.batch(st.Sale(t, 4, "2026-11-23", 100, 0)))
	require.Equal(t, int64(2), term.ack().Through, "gap")

	// Crash after commit, restart, redelivery deduplicated.
	crashed := make(chan struct{})
	var n atomic.Int32
	hq.SetAfterCommit(svc, func(kind wire.Kind, _, _ string) error {
		if kind == wire.KindEvents && n.Add(1) == 1 {
			close(crashed)
			return errors.New("killed")
		}
		return nil
	})
	term.send(term.batch(st.Sale(t, 3, "2026-11-23", 100, 0)))
	select {
	case <-crashed:
	case <-time.After(wait):
		t.Fatal("no commit")
	}
	stop()
	startHQ(t, broker, store, clientID)
	require.Equal(t, int64(4), term.ack().Through)
	s, err := store.Sales(context.Background(), sid, "")
	require.NoError(t, err)
	require.Equal(t, int64(4), s[0].Count)

	// Bad payload quarantined, reinstall rebased.
	term.publish(topics.Events(sid, "T1"), []byte("garbage"))
	require.Eventually(t, func() bool {
		q, err := store.ListQuarantine(context.Background(), 10)
		require.NoError(t, err)
		return len(q) == 1
	}, wait, 10*time.Millisecond)
	term.db = st.NewID(t)
	term.hello(0, 0, time.Now().UTC())
	require.Equal(t, int64(4), term.ack().Rebase)
}

func TestSharedSubscriptionSplitsLoad(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	var handled [2]atomic.Int32
	for i := range 2 {
		svc, _ := startHQ(t, broker, store, fmt.Sprintf("hq-%d", i), func(o *hq.Options) { o.SharedGroup = "hq" })
		hq.SetBeforeStore(svc, func(string, string) error { handled[i].Add(1); return nil })
	}
	const terminals, batches = 4, 5
	var wg sync.WaitGroup
	for n := range terminals {
		term := newTerminal(t, broker, "S1", fmt.Sprintf("T%d", n))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := int64(1); b <= batches; b++ {
				data, err := wire.Encode(term.batch(st.Stock(t, b, "A", 1, 1, st.T0)))
				if err != nil {
					t.Error(err)
					return
				}
				term.c.Publish(topics.Events(term.store, term.terminal), 1, false, data).WaitTimeout(wait)
			}
			var through int64
			deadline := time.After(wait)
			for through < batches {
				select {
				case a := <-term.acks:
					through = max(through, a.Through)
				case <-deadline:
					t.Errorf("%s: acked through %d of %d", term.terminal, through, batches)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, terminals*batches, handled[0].Load()+handled[1].Load(), "each batch went to exactly one HQ")
	f, err := store.Fleet(context.Background())
	require.NoError(t, err)
	require.Len(t, f, terminals)
	for _, x := range f {
		require.EqualValues(t, batches, x.AckedSeq)
	}
}

// TestPostgresEndToEnd runs the key ingest path over MQTT with the
// PostgreSQL store: stored and acked, duplicate, gap, crash after commit.
func TestPostgresEndToEnd(t *testing.T) {
	store := pgtest.Open(t)
	broker := startBroker(t)
	svc, stop := startHQ(t, broker, store, "hq-pg")
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	require.Zero(t, term.ack().Through)
	var evs []wire.Event
	for i := int64(1); i <= 300; i++ { // above the COPY threshold
		evs = append(evs, st.Sale(t, i, "2026-11-23", 100, 10))
	}
	b := term.batch(evs...)
	term.send(b)
	require.EqualValues(t, 300, term.ack().Through)
	term.send(b)
	require.EqualValues(t, 300, term.ack().Through)
	term.send(term.batch(st.Sale(t, 302, "2026-11-23", 100, 10)))
	require.EqualValues(t, 300, term.ack().Through, "gap at 301")

	crashed := make(chan struct{})
	var n atomic.Int32
	hq.SetAfterCommit(svc, func(kind wire.Kind, _, _ string) error {
		if kind == wire.KindEvents && n.Add(1) == 1 {
			close(crashed)
			return errors.New("killed")
		}
		return nil
	})
	term.send(term.batch(st.Sale(t, 301, "2026-11-23", 100, 10)))
	select {
	case <-crashed:
	case <-time.After(wait):
		t.Fatal("no commit")
	}
	stop()
	startHQ(t, broker, store, "hq-pg")
	require.EqualValues(t, 302, term.ack().Through)
	s, err := store.Sales(context.Background(), "S1", "")
	require.NoError(t, err)
	require.EqualValues(t, 302, s[0].Count)
	require.EqualValues(t, 30200, s[0].Gross)
}
