package link

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// silentBroker accepts TCP connections and never answers: a hung broker, or
// a middlebox that completes the TCP handshake and then drops everything.
// It reports when the first bytes of a connection (the client's CONNECT)
// arrive and when the client closes that connection.
type silentBroker struct {
	ln           net.Listener
	connectSeen  chan struct{} // closed when the first CONNECT bytes arrive
	clientClosed chan struct{} // closed when that connection is closed by the client
	wg           sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
}

func startSilentBroker(tb testing.TB) *silentBroker {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	sb := &silentBroker{ln: ln, connectSeen: make(chan struct{}), clientClosed: make(chan struct{})}
	sb.wg.Add(1)
	go func() {
		defer sb.wg.Done()
		first := true
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sb.mu.Lock()
			sb.conns = append(sb.conns, c)
			sb.mu.Unlock()
			if !first {
				continue // later attempts are held open too, unanswered
			}
			first = false
			sb.wg.Add(1)
			go func() {
				defer sb.wg.Done()
				buf := make([]byte, 512)
				seen := false
				for {
					n, err := c.Read(buf)
					if n > 0 && !seen {
						seen = true
						close(sb.connectSeen)
					}
					if err != nil {
						if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
							close(sb.clientClosed)
						}
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		sb.mu.Lock()
		for _, c := range sb.conns {
			c.Close()
		}
		sb.mu.Unlock()
		sb.wg.Wait()
	})
	return sb
}

func (sb *silentBroker) URL() string { return "tcp://" + sb.ln.Addr().String() }

// linkGoroutines returns the stacks of goroutines running, or started by,
// this package's link code or paho.
func linkGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, mark := range []string{"eclipse/paho", "sync/link.(*Link)", "sync/link.(*courier)", "sync/link.(*ackMarker)", "sync/link.(*socket)"} {
			if strings.Contains(g, mark) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// requireNoLinkGoroutines waits (bounded) for every goroutine of the link
// and of paho to return; paho's own end promptly once their socket is
// closed, so the deadline only matters on failure.
func requireNoLinkGoroutines(t *testing.T) {
	t.Helper()
	if !assert.Eventually(t, func() bool { return len(linkGoroutines()) == 0 }, 10*time.Second, 10*time.Millisecond) {
		t.Fatalf("goroutines of the link or paho still running after Close:\n\n%s", strings.Join(linkGoroutines(), "\n\n"))
	}
}

func TestLinkCloseDuringConnectToSilentBroker(t *testing.T) {
	sb := startSilentBroker(t)
	db := openDB(t, "")
	addEvents(t, db, 3)
	// A connect attempt may take a minute: were Close to wait for it, or
	// paho's goroutine to outlive Close until it times out, this test would
	// fail by its 10 s deadlines, not by a race.
	l := startLink(t, db, sb.URL(), func(o *Options) {
		o.ConnectTimeout = time.Minute
		o.BackoffMin, o.BackoffMax = time.Minute, time.Minute
	})
	select {
	case <-sb.connectSeen:
	case <-time.After(10 * time.Second):
		t.Fatal("no CONNECT reached the silent broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, l.Close(ctx), "Close waits for the connect attempt")
	t.Logf("Close returned %v after it was called, mid-connect", time.Since(start))
	select {
	case <-sb.clientClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connect attempt's socket is still open after Close")
	}
	requireNoLinkGoroutines(t)
	require.EqualValues(t, 3, backlog(t, l), "nothing acked or lost")
}

func TestLinkCloseDuringBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "tcp://" + ln.Addr().String()
	require.NoError(t, ln.Close()) // refused from now on
	db := openDB(t, "")
	l := startLink(t, db, url, func(o *Options) {
		o.BackoffMin, o.BackoffMax = time.Minute, time.Minute
	})
	require.Eventually(t, func() bool {
		s, _ := l.State(context.Background())
		return s.LastError != ""
	}, 30*time.Second, 10*time.Millisecond, "the first attempt fails and the link backs off")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, l.Close(ctx), "Close waits out the backoff")
	t.Logf("Close returned %v after it was called, mid-backoff", time.Since(start))
	requireNoLinkGoroutines(t)
}

// statusWatcher subscribes to a terminal's status topic as HQ does and
// passes each state on; paho's handler only queues.
func statusWatcher(t *testing.T, brokerURL, clientID string) <-chan string {
	t.Helper()
	states := make(chan string, 16)
	topics := wire.NewTopics("")
	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).SetUsername("hq").SetCleanSession(true))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(0) })
	st := c.Subscribe(topics.Status("S1", "T1"), 1, func(_ paho.Client, m paho.Message) {
		s, err := wire.DecodeStatus(m.Payload())
		state := "undecodable"
		if err == nil {
			state = s.State
		}
		select {
		case states <- state:
		default:
		}
	})
	require.True(t, st.WaitTimeout(5*time.Second))
	require.NoError(t, st.Error())
	return states
}

func waitState(t *testing.T, states <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-states:
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("status %q never seen", want)
		}
	}
}

func TestLinkCloseLeavesOfflineStatus(t *testing.T) {
	b := startBroker(t)
	newPeerHQ(t, b.URL())
	db := openDB(t, "")
	states := statusWatcher(t, b.URL(), "status-watch")
	l := startLink(t, db, b.URL(), nil)
	waitState(t, states, "online")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, l.Close(ctx))
	t.Logf("Close returned %v after it was called, connected", time.Since(start))
	// Sent by Close, or (if the connection was not healthy) the Last Will.
	waitState(t, states, "offline")
	// And it is retained: a subscriber that comes later learns it.
	waitState(t, statusWatcher(t, b.URL(), "status-late"), "offline")
}
