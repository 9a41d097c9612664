package shelfsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgepos/edgepos/devices"
)

// SensorOptions configure a simulated MQTT shelf sensor.
type SensorOptions struct {
	// Broker and Topic say where to publish.
	Broker, Topic string
	// Username, Password and ClientID for the broker; ClientID defaults
	// to shelfsim-<random>.
	Username, Password, ClientID string
	// QoS of the publishes; default 1 (set NoQoS1 for 0).
	QoS    byte
	NoQoS1 bool
	// NoiseG adds uniform noise in [-NoiseG, +NoiseG] grams to every
	// weight published from the true weights (Set); 0: none.
	NoiseG int64
	// Seed makes the noise reproducible; 0 picks one.
	Seed uint64
	// Interval publishes every slot's weight this often, as a real sensor
	// repeats its weight as a heartbeat; 0: only on PublishAll.
	Interval time.Duration
	// Multi publishes all slots in one message ({"readings":[…]}) instead
	// of one message per slot.
	Multi bool
}

// Sensor is a simulated MQTT shelf sensor. Its methods are safe for
// concurrent use.
type Sensor struct {
	o SensorOptions

	mu      sync.Mutex
	weights map[int]int64
	rng     *rand.Rand
	paused  bool
	client  paho.Client

	published atomic.Uint64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// NewSensor returns a sensor; Open connects it.
func NewSensor(o SensorOptions) *Sensor {
	if o.QoS == 0 && !o.NoQoS1 {
		o.QoS = 1
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("shelfsim-%08x", rand.Uint32())
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Sensor{o: o, weights: map[int]int64{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Open connects to the broker and, with an Interval, starts publishing.
func (s *Sensor) Open(ctx context.Context) error {
	opts := paho.NewClientOptions().AddBroker(s.o.Broker).SetClientID(s.o.ClientID).
		SetUsername(s.o.Username).SetPassword(s.o.Password).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	if err := waitToken(ctx, c.Connect()); err != nil {
		return fmt.Errorf("shelfsim connect %s: %w", s.o.Broker, err)
	}
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	if s.o.Interval > 0 {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cancel = cancel
		s.wg.Add(1)
		go s.run(runCtx)
	}
	return nil
}

func (s *Sensor) run(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			paused := s.paused
			s.mu.Unlock()
			if !paused {
				_ = s.PublishAll(ctx) // a failed heartbeat is the next one's job
			}
		}
	}
}

// Set puts grams on slot (the true gross weight the sensor measures).
func (s *Sensor) Set(slot int, grams int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.weights[slot] = grams
}

// Pause stops (true) or resumes (false) the heartbeat, as a sensor that
// lost power or Wi-Fi.
func (s *Sensor) Pause(p bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = p
}

// Published returns how many messages were published.
func (s *Sensor) Published() uint64 { return s.published.Load() }

type reading struct {
	Slot    int    `json:"slot"`
	WeightG int64  `json:"weight_g"`
	At      string `json:"at,omitempty"`
}

type multi struct {
	At       string    `json:"at"`
	Readings []reading `json:"readings"`
}

// PublishAll publishes every slot's true weight plus noise now.
func (s *Sensor) PublishAll(ctx context.Context) error {
	s.mu.Lock()
	slots := make([]int, 0, len(s.weights))
	for k := range s.weights {
		slots = append(slots, k)
	}
	slices.Sort(slots)
	rs := make([]reading, 0, len(slots))
	for _, k := range slots {
		g := s.weights[k]
		if s.o.NoiseG > 0 {
			g += s.rng.Int64N(2*s.o.NoiseG+1) - s.o.NoiseG
		}
		rs = append(rs, reading{Slot: k, WeightG: g})
	}
	s.mu.Unlock()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	if s.o.Multi && len(rs) > 0 {
		b, _ := json.Marshal(multi{At: at, Readings: rs})
		return s.PublishRaw(ctx, b)
	}
	for _, r := range rs {
		r.At = at
		b, _ := json.Marshal(r)
		if err := s.PublishRaw(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// Publish publishes one exact reading (no noise) for slot.
func (s *Sensor) Publish(ctx context.Context, slot int, grams int64) error {
	b, _ := json.Marshal(reading{Slot: slot, WeightG: grams, At: time.Now().UTC().Format(time.RFC3339Nano)})
	return s.PublishRaw(ctx, b)
}

// PublishRaw publishes payload as it is (garbage, oversized messages).
func (s *Sensor) PublishRaw(ctx context.Context, payload []byte) error {
	s.mu.Lock()
	c := s.client
	s.mu.Unlock()
	if c == nil {
		return errors.New("shelfsim: sensor not open")
	}
	if err := waitToken(ctx, c.Publish(s.o.Topic, s.o.QoS, false, payload)); err != nil {
		return fmt.Errorf("shelfsim publish: %w", err)
	}
	s.published.Add(1)
	return nil
}

// Close stops the heartbeat and disconnects.
func (s *Sensor) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	if err := devices.Wait(ctx, &s.wg); err != nil {
		return err
	}
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		c.Disconnect(100)
	}
	return nil
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("timed out")
	}
}
