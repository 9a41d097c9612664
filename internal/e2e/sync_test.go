// Package e2e holds end-to-end tests across packages: real store terminals
// (localdb + sync/link) and the real HQ service (hq + its stores) over a real
// MQTT broker: the embedded one always, Mosquitto and PostgreSQL when the
// machine has them (required in CI).
package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/testenv"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
)

// wait bounds every condition the end-to-end tests wait for. It is a
// deadline, not an expectation: a healthy run is done in seconds, but the
// race detector on two loaded cores made the Mosquitto burst test's resend
// rounds take 23–35 s.
const wait = 90 * time.Second

// env is one HQ + broker set-up the scenarios run on.
type env struct {
	name      string
	brokerURL string
	prefix    string
	broker    *embedbroker.Broker // nil for Mosquitto
	openStore func(ctx context.Context) (hq.Store, error)
	hqDir     string
	hqPass    string
	hqTLS     *tls.Config
}

// testLogger logs to the test's output with -v, and nowhere otherwise.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func embeddedSQLite(t *testing.T) *env {
	b, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	dir := t.TempDir()
	return &env{name: "embedded+sqlite", brokerURL: b.URL(), prefix: "edgepos/v1", broker: b, hqDir: dir,
		openStore: func(ctx context.Context) (hq.Store, error) {
			return sqlitestore.Open(ctx, filepath.Join(dir, "hq.db"), sqlitestore.Options{})
		}}
}

func mosquittoPostgres(t *testing.T) *env {
	url := testenv.MosquittoURL(t)
	pg, schema := testenv.PGSchema(t)
	return &env{name: "mosquitto+postgres", brokerURL: url, prefix: testenv.TopicPrefix(), hqDir: t.TempDir(),
		openStore: func(ctx context.Context) (hq.Store, error) {
			return pgstore.Open(ctx, pg, pgstore.Options{Schema: schema, MaxConns: 4})
		}}
}

// startHQ starts HQ on e; stop closes it (HQ "killed" between steps).
func (e *env) startHQ(t *testing.T, clientID string) (*hq.Service, func()) {
	t.Helper()
	svc := hq.New(hq.Options{OpenStore: e.openStore, DataDir: e.hqDir, Broker: e.brokerURL, Username: "hq", Password: e.hqPass, TLS: e.hqTLS,
		ClientID: clientID, TopicPrefix: e.prefix, Workers: 2, Logger: testLogger(t)})
	require.NoError(t, svc.Open(context.Background()))
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			require.NoError(t, svc.Close(ctx))
		})
	}
	t.Cleanup(stop)
	require.Eventually(t, svc.Ready, wait, 10*time.Millisecond)
	return svc, stop
}

// term is one store terminal: its database and its link.
type term struct {
	store, id string
	db        *localdb.DB
	link      *link.Link
	sold      int
}

func (e *env) startTerminal(t *testing.T, store, id, dbPath string, mod func(*link.Options)) *term {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "pos.db")
	}
	db, err := localdb.Open(context.Background(), dbPath, localdb.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	o := link.Options{Store: store, Terminal: id, Broker: e.brokerURL, TopicPrefix: e.prefix,
		BatchEvents: 50, Window: 4, AckTimeout: time.Second, BackoffMin: 20 * time.Millisecond,
		BackoffMax: 300 * time.Millisecond, Poll: 20 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	l := link.New(db, o)
	require.NoError(t, l.Open(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return &term{store: store, id: id, db: db, link: l}
}

func (tm *term) sell(t *testing.T, n int) {
	t.Helper()
	require.NoError(t, bench.FillOutbox(context.Background(), tm.db, tm.store, tm.id, n))
	tm.sold += n
	tm.link.Notify()
}

func (tm *term) drained(t *testing.T) bool {
	st, err := tm.link.State(context.Background())
	require.NoError(t, err)
	return st.Backlog == 0
}

// salesAtHQ counts sales HQ projected for store.
func salesAtHQ(t *testing.T, s hq.Store, store string) int64 {
	t.Helper()
	days, err := s.Sales(context.Background(), store, "")
	require.NoError(t, err)
	var n int64
	for _, d := range days {
		n += d.Count
	}
	return n
}

// requireExactlyOnce waits until every terminal's backlog is zero and
// proves HQ holds each terminal's events once: as many sales as sold, and
// a contiguous cursor at the terminal's last seq.
func requireExactlyOnce(t *testing.T, s hq.Store, terms ...*term) {
	t.Helper()
	for _, tm := range terms {
		require.Eventually(t, func() bool { return tm.drained(t) }, wait, 20*time.Millisecond, "terminal %s/%s drains", tm.store, tm.id)
	}
	want := map[string]int64{}
	for _, tm := range terms {
		want[tm.store] += int64(tm.sold)
	}
	for store, n := range want {
		require.Equal(t, n, salesAtHQ(t, s, store), "sales of %s at HQ", store)
	}
	fleet, err := s.Fleet(context.Background())
	require.NoError(t, err)
	for _, tm := range terms {
		st, err := tm.db.OutboxState(context.Background())
		require.NoError(t, err)
		found := false
		for _, f := range fleet {
			if f.Store == tm.store && f.Terminal == tm.id {
				found = true
				require.Equal(t, st.LastSeq, f.AckedSeq, "HQ's contiguous cursor for %s/%s", tm.store, tm.id)
			}
		}
		require.True(t, found, "terminal %s/%s in HQ's fleet", tm.store, tm.id)
	}
}

func TestSyncExactlyOnceAcrossBrokerOutage(t *testing.T) {
	e := embeddedSQLite(t)
	svc, _ := e.startHQ(t, "hq-1")
	a := e.startTerminal(t, "S001", "T1", "", nil)
	b := e.startTerminal(t, "S002", "T1", "", nil)
	a.sell(t, 300)
	b.sell(t, 200)
	require.Eventually(t, func() bool { return salesAtHQ(t, svc.Store(), "S001") > 0 }, wait, 10*time.Millisecond)

	// The broker goes away mid-stream; selling goes on.
	require.NoError(t, e.broker.Close())
	a.sell(t, 400)
	b.sell(t, 100)
	st, err := a.link.State(context.Background())
	require.NoError(t, err)
	require.Positive(t, st.Backlog, "sales queue while offline")

	nb, err := embedbroker.Restart(e.broker) // sessions lost
	require.NoError(t, err)
	t.Cleanup(func() { nb.Close() })
	a.sell(t, 50)
	requireExactlyOnce(t, svc.Store(), a, b)
}

func TestSyncExactlyOnceAcrossHQRestart(t *testing.T) {
	e := embeddedSQLite(t)
	_, stop := e.startHQ(t, "hq-1")
	a := e.startTerminal(t, "S001", "T1", "", nil)
	a.sell(t, 500)
	stop() // HQ killed while the terminal is uploading
	a.sell(t, 500)
	svc, _ := e.startHQ(t, "hq-1") // same client id: the broker kept its session
	requireExactlyOnce(t, svc.Store(), a)
}

func TestSyncReinstalledTerminalDoesNotCollide(t *testing.T) {
	e := embeddedSQLite(t)
	svc, _ := e.startHQ(t, "hq-1")
	old := e.startTerminal(t, "S001", "T1", "", nil)
	old.sell(t, 120)
	requireExactlyOnce(t, svc.Store(), old)
	require.NoError(t, old.link.Close(context.Background()))

	fresh := e.startTerminal(t, "S001", "T1", "", nil) // new disk, same ids
	fresh.sell(t, 30)
	require.Eventually(t, func() bool { return fresh.drained(t) }, wait, 20*time.Millisecond)
	require.EqualValues(t, 150, salesAtHQ(t, svc.Store(), "S001"))
	st, err := fresh.db.OutboxState(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 150, st.LastSeq, "the new database continued above HQ's cursor")
}

func TestSyncMosquittoPostgres(t *testing.T) {
	e := mosquittoPostgres(t)
	svc, stop := e.startHQ(t, fmt.Sprintf("hq-%d", time.Now().UnixNano()))
	a := e.startTerminal(t, "S001", "T1", "", nil)
	b := e.startTerminal(t, "S001", "T2", "", nil)
	a.sell(t, 300)
	b.sell(t, 300)
	require.Eventually(t, func() bool { return salesAtHQ(t, svc.Store(), "S001") > 0 }, wait, 10*time.Millisecond)
	stop()
	svc, _ = e.startHQ(t, "hq-restarted-"+fmt.Sprint(time.Now().UnixNano()))
	a.sell(t, 100)
	requireExactlyOnce(t, svc.Store(), a, b)
}

// TestSyncBurstBeyondMosquittoQueueLosesNothing overflows Mosquitto's
// per-client queue (max_queued_messages, default 1000, dropped silently
// even at QoS 1) while HQ is away, and proves the outbox recovers every
// event once HQ is back.
func TestSyncBurstBeyondMosquittoQueueLosesNothing(t *testing.T) {
	e := mosquittoPostgres(t)
	clientID := fmt.Sprintf("hq-burst-%d", time.Now().UnixNano())
	_, stop := e.startHQ(t, clientID) // creates the persistent session
	a := e.startTerminal(t, "S001", "T1", "", func(o *link.Options) {
		o.BatchEvents = 1 // one message per event
		o.Window = 1500   // more in flight than the broker will queue
		o.AckTimeout = 2 * time.Second
	})
	require.Eventually(t, func() bool {
		st, _ := a.link.State(context.Background())
		return st.Reconciled
	}, wait, 10*time.Millisecond)
	stop() // HQ goes away after the hello: the broker queues for it
	a.sell(t, 1500)
	require.Eventually(t, func() bool {
		st, _ := a.link.State(context.Background())
		return st.BatchesSent >= 1500
	}, wait, 10*time.Millisecond, "the burst went out")
	svc, _ := e.startHQ(t, clientID)
	requireExactlyOnce(t, svc.Store(), a)
	st, err := a.link.State(context.Background())
	require.NoError(t, err)
	t.Logf("resends after the broker dropped the overflow: %d", st.Resends)
}
