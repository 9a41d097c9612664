// Package embedbroker runs an in-process MQTT broker (mochi-mqtt) for the
// demo, unit tests and benchmarks, with the same access rules the production
// Mosquitto ACL enforces: a store's client may only publish and subscribe
// under its own topics (username = store id), and privileged users (HQ) may
// use everything.
//
// It is not for production HQ: mochi has seen little maintenance since 2025.
package embedbroker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure a Broker.
type Options struct {
	// Addr to listen on; "127.0.0.1:0" (the default) picks a free port.
	Addr string
	// Prefix is the protocol's topic prefix (default "edgepos/v1").
	Prefix string
	// Privileged usernames may read and write every topic (e.g. "hq").
	// With Privileged empty, and Users empty, anyone may do anything.
	Privileged []string
	// Users maps username to password. Empty: any password is accepted.
	Users map[string]string
	// Logger for the broker's own messages; default discards.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	opts   Options
	srv    *mqtt.Server
	ln     *listener
	addr   string
	mu     sync.Mutex
	closed bool
}

// Start starts a broker listening on opts.Addr.
func Start(opts Options) (*Broker, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Prefix == "" {
		opts.Prefix = "edgepos/v1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// The broker keeps its own listener (a ":0" address resolves to a real
	// port to report and reuse on restart) so that Close can drop every
	// connection at once; see Close.
	tl, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", opts.Addr, err)
	}
	ln := &listener{Listener: tl, conns: map[*conn]struct{}{}}
	addr := tl.Addr().String()

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = 1024
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: opts.Logger})
	if err := srv.AddHook(&aclHook{opts: opts}, nil); err != nil {
		tl.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		tl.Close()
		return nil, fmt.Errorf("start broker on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		ln.closeAll()
		return nil, fmt.Errorf("start broker on %s: %w", addr, err)
	}
	return &Broker{opts: opts, srv: srv, ln: ln, addr: addr}, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as an MQTT URL (tcp://host:port).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Server exposes the mochi server (for inline subscriptions in tests).
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close stops the broker and drops every client and session, as a broker
// process that stops does: the port refuses new connections first, then
// every client connection drops at once.
//
// mochi's own Close does it the other way round (it disconnects the
// clients, then closes its listener), so a client reconnecting at once was
// accepted by a broker on its way out and then never answered nor closed:
// it waited out its connect timeout. And mochi v2.7.9 can deadlock in
// Close: Clients.GetByListener read-locks the client map and read-locks it
// again in Len, and a client leaving in between (Delete waits for the write
// lock, which stops new readers) blocks both for good. So the connections
// are closed here first, and mochi's Close runs only after every client
// goroutine has returned and no client can leave under it.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.ln.closeAll()
	b.srv.Listeners.ClientsWg.Wait()
	return b.srv.Close()
}

// listener is the broker's TCP listener. It keeps the connections it
// accepted so that closeAll can drop them together.
type listener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

// Accept hands mochi the next connection; after closeAll it fails, which
// ends mochi's accept loop.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &conn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes the listening socket, then every connection accepted.
func (l *listener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	l.Listener.Close()
	for c := range conns {
		c.Conn.Close()
	}
}

// conn is an accepted connection; closing it forgets it.
type conn struct {
	net.Conn
	l *listener
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// Restart starts a new broker on the same address: sessions and queued
// messages are gone, as after a real broker restart without persistence.
func Restart(old *Broker) (*Broker, error) {
	if err := old.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return nil, err
	}
	o := old.opts
	o.Addr = old.addr
	return Start(o)
}

// aclHook enforces the per-store rules of configs/mosquitto.acl:
// pattern readwrite {prefix}/stores/%u/#.
type aclHook struct {
	mqtt.HookBase
	opts Options
}

func (h *aclHook) ID() string { return "edgepos-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *aclHook) privileged(user string) bool {
	for _, p := range h.opts.Privileged {
		if p == user {
			return true
		}
	}
	return false
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.opts.Users) == 0 {
		return true
	}
	want, ok := h.opts.Users[string(pk.Connect.Username)]
	return ok && want == string(pk.Connect.Password)
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if len(h.opts.Privileged) == 0 && len(h.opts.Users) == 0 {
		return true
	}
	user := string(cl.Properties.Username)
	if h.privileged(user) {
		return true
	}
	if user == "" || strings.ContainsAny(user, "/+#") {
		return false
	}
	return strings.HasPrefix(topic, h.opts.Prefix+"/stores/"+user+"/")
}
