package hq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/sync/wire"
)

// Options configure a Service. Broker and one of Store / OpenStore are
// required.
type Options struct {
	// Store is the database; the caller keeps ownership (Close does not
	// close it). Set OpenStore instead to let the service open and close it.
	Store Store
	// OpenStore opens the database in Open; Close closes it.
	OpenStore func(ctx context.Context) (Store, error)
	// DataDir holds HQ's files: the coupon signing keys.
	DataDir string

	// Broker is the MQTT URL: tcp://host:1883 or ssl://host:8883.
	Broker             string
	Username, Password string
	// ClientID must be stable across restarts: with CleanSession=false the
	// broker queues uploads for it while HQ is down. Default "hq-ingest".
	ClientID string
	// SharedGroup, if set, consumes uploads as $share/<group>/… so several
	// hq-ingest processes split them. Status is always subscribed unshared:
	// shared subscriptions get no retained messages.
	SharedGroup string
	TopicPrefix string
	TLS         *tls.Config

	// Workers is how many goroutines store uploads (each terminal always
	// goes to the same one, so its batches stay in order); default 4.
	Workers int
	// QueueDepth is deprecated and ignored: a worker's queue is bounded by
	// the broker's in-flight limit, since HQ PUBACKs only after processing.
	QueueDepth int

	// APIListen is the operator HTTP address; empty serves no HTTP (the
	// handler is still available from APIHandler). "127.0.0.1:0" picks a port.
	APIListen string
	// APITokens are the accepted operator bearer tokens. With none, every
	// API request is refused.
	APITokens []string

	// Version is reported by /healthz.
	Version string
	Logger  *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is a running HQ: New → Open → Close.
type Service struct {
	opts   Options
	log    *slog.Logger
	topics wire.Topics
	store  Store
	owns   bool
	keys   *keyring

	client     paho.Client
	subscribed atomic.Bool
	queues     []*msgQueue
	cancel     context.CancelFunc
	ctx        context.Context
	wg         sync.WaitGroup

	httpSrv *http.Server
	addr    string
	handler http.Handler
	metrics *metrics

	// afterCommit is a fault seam: called after a hello or batch is
	// committed and before HQ acks it (MQTT ack and wire ack). An error
	// makes the service behave as if it died there: nothing is acked.
	afterCommit func(kind wire.Kind, store, terminal string) error
	// beforeStore is a fault seam called before a batch is stored; an
	// error acts like a crash before commit.
	beforeStore func(store, terminal string) error
}

// New fills defaults; it does not connect.
func New(opts Options) *Service {
	if opts.ClientID == "" {
		opts.ClientID = "hq-ingest"
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.QueueDepth <= 0 {
		opts.QueueDepth = 256
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, log: opts.Logger, topics: wire.NewTopics(opts.TopicPrefix)}
}

// Run opens a Service, runs it until ctx ends, and closes it.
func Run(ctx context.Context, opts Options) error {
	s := New(opts)
	if err := s.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.Close(closeCtx)
}

// Open opens the store, loads (or creates) the coupon key, starts the
// workers, connects to the broker and starts the HTTP server. A broker that
// is down at start is retried in the background.
func (s *Service) Open(ctx context.Context) (err error) {
	if s.opts.Broker == "" {
		return errors.New("open hq: no broker URL")
	}
	if s.opts.SharedGroup != "" && !wire.ValidID(s.opts.SharedGroup) {
		return fmt.Errorf("open hq: shared group %q is not a valid topic level", s.opts.SharedGroup)
	}
	switch {
	case s.opts.Store != nil:
		s.store = s.opts.Store
	case s.opts.OpenStore != nil:
		st, err := s.opts.OpenStore(ctx)
		if err != nil {
			return fmt.Errorf("open hq: %w", err)
		}
		s.store, s.owns = st, true
	default:
		return errors.New("open hq: no store")
	}
	defer func() {
		if err != nil {
			s.shutdown(context.WithoutCancel(ctx))
		}
	}()
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))

	if s.opts.DataDir != "" {
		if s.keys, err = openKeyring(s.opts.DataDir); err != nil {
			return fmt.Errorf("open hq: %w", err)
		}
		if err := s.publishKeys(ctx); err != nil {
			return fmt.Errorf("open hq: %w", err)
		}
	}

	s.queues = make([]*msgQueue, s.opts.Workers)
	for i := range s.queues {
		q := newMsgQueue()
		s.queues[i] = q
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work(s.ctx, q)
		}()
	}

	s.handler = s.newAPI()
	if s.opts.APIListen != "" {
		ln, err := net.Listen("tcp", s.opts.APIListen)
		if err != nil {
			return fmt.Errorf("open hq: api listen %s: %w", s.opts.APIListen, err)
		}
		s.addr = ln.Addr().String()
		s.httpSrv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("api server stopped", "err", err)
			}
		}()
	}

	s.client = paho.NewClient(s.clientOptions())
	tok := s.client.Connect() // ConnectRetry: returns at once and retries in the background
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("open hq: connect %s: %w", s.opts.Broker, err)
		}
	case <-time.After(100 * time.Millisecond):
	}
	s.log.Info("hq started", "broker", s.opts.Broker, "client_id", s.opts.ClientID, "api", s.addr)
	return nil
}

func (s *Service) clientOptions() *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(s.opts.Broker).
		SetClientID(s.opts.ClientID).
		SetUsername(s.opts.Username).
		SetPassword(s.opts.Password).
		// The broker queues uploads for this client id while HQ is down and
		// redelivers what HQ had not PUBACKed.
		SetCleanSession(false).
		// PUBACK only after the transaction commits (see work).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		// Set before connect: a persistent session may deliver before the
		// subscribe call returns.
		SetDefaultPublishHandler(s.onMessage).
		SetOnConnectHandler(func(c paho.Client) {
			up := s.topics.UpFilter()
			if s.opts.SharedGroup != "" {
				up = wire.Shared(s.opts.SharedGroup, up)
			}
			tok := c.SubscribeMultiple(map[string]byte{up: 1, s.topics.StatusFilter(): 1}, s.onMessage)
			// paho runs this handler on its own goroutine, so waiting is fine.
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				s.log.Error("subscribe failed; reconnect to retry", "err", tok.Error())
				return
			}
			s.subscribed.Store(true)
			s.log.Info("connected and subscribed", "broker", s.opts.Broker, "filter", up)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.subscribed.Store(false)
			s.log.Warn("broker connection lost, reconnecting", "err", err)
		})
	if s.opts.TLS != nil {
		o.SetTLSConfig(s.opts.TLS)
	}
	return o
}

// Close stops taking messages, lets the workers finish the one they hold,
// disconnects, stops the HTTP server and closes the store if Open opened it.
func (s *Service) Close(ctx context.Context) error {
	return s.shutdown(ctx)
}

func (s *Service) shutdown(ctx context.Context) error {
	var errs []error
	if s.cancel != nil {
		s.cancel()
	}
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close api: %w", err))
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("close hq: %w", ctx.Err()))
	}
	if s.client != nil {
		s.subscribed.Store(false)
		s.client.Disconnect(250)
	}
	if s.owns && s.store != nil {
		if err := s.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		s.store = nil
	}
	s.log.Info("hq stopped")
	return errors.Join(errs...)
}

// Store is the service's database.
func (s *Service) Store() Store { return s.store }

// APIHandler is the operator HTTP API and dashboard (valid after Open).
func (s *Service) APIHandler() http.Handler { return s.handler }

// Addr is the HTTP address the API listens on ("" when not listening).
func (s *Service) Addr() string { return s.addr }

// Ready reports whether HQ is connected to the broker and subscribed.
func (s *Service) Ready() bool {
	return s.subscribed.Load() && s.client != nil && s.client.IsConnectionOpen()
}
