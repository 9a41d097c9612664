package shelf_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/testenv"
)

// The slots of configs/agent.yaml's shelf-a, plus a second SKU.
var (
	colaSlot  = shelf.Slot{Slot: 0, SKU: "6901234567892", TareG: 120, UnitG: 550, ToleranceG: 25, LowStock: 3}
	chipsSlot = shelf.Slot{Slot: 1, SKU: "6909876543210", TareG: 80, UnitG: 70, ToleranceG: 8, LowStock: 2}
)

func newBroker(t *testing.T, o embedbroker.Options) *embedbroker.Broker {
	t.Helper()
	b, err := embedbroker.Start(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func mqttCfg(broker, topic string, slots ...shelf.Slot) shelf.Config {
	return shelf.Config{
		Name:         "shelf-a",
		Transport:    shelf.TransportMQTT,
		MQTT:         shelf.MQTTConfig{Broker: broker, Topic: topic, QoS: 1},
		Slots:        slots,
		OfflineAfter: 500 * time.Millisecond,
		Tick:         10 * time.Millisecond,
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 100 * time.Millisecond,
	}
}

func newSensor(t *testing.T, o shelfsim.SensorOptions) *shelfsim.Sensor {
	t.Helper()
	s := shelfsim.NewSensor(o)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, s.Open(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// idle starts a shelf and waits until it is subscribed.
func idle(t *testing.T, cfg shelf.Config, opt shelf.Options) (*shelf.Shelf, *collector) {
	t.Helper()
	if opt.Hub == nil {
		opt.Hub = devices.NewHub()
	}
	st, cancel := opt.Hub.Subscribe(256)
	defer cancel()
	s, ev := start(t, cfg, opt)
	waitState(t, st, devices.StateIdle, "")
	return s, ev
}

// TestMQTTNoisySensorCountsWithoutFlapping: a sensor publishing ±8 g of
// noise every 5 ms, both slots in one message, gives one count per slot
// over hundreds of readings; a real change gives one more and low stock.
func TestMQTTNoisySensorCountsWithoutFlapping(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	s, ev := idle(t, mqttCfg(b.URL(), "shelves/shelf-a", colaSlot, chipsSlot), shelf.Options{})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: "shelves/shelf-a", NoiseG: 8, Seed: 7,
		Interval: 5 * time.Millisecond, Multi: true})
	sim.Set(0, 120+6*550)
	sim.Set(1, 80+10*70)
	ev.wait(t, shelf.KindCount, countIs(0, 6))
	ev.wait(t, shelf.KindCount, countIs(1, 10))
	n := s.Stats().Readings
	require.Eventually(t, func() bool { return s.Stats().Readings >= n+400 }, wait, 5*time.Millisecond)
	assert.Equal(t, 1, ev.count(shelf.KindCount, 0), "noise does not change the count: %s", ev.summary())
	assert.Equal(t, 1, ev.count(shelf.KindCount, 1), "noise does not change the count: %s", ev.summary())
	assert.Zero(t, ev.count(shelf.KindAmbiguous, 0)+ev.count(shelf.KindAmbiguous, 1))

	sim.Set(0, 120+3*550)
	e := ev.wait(t, shelf.KindCount, countIs(0, 3))
	assert.Equal(t, int64(6), e.Prev)
	ev.wait(t, shelf.KindLowStock, countIs(0, 3))
	assert.Equal(t, time.UTC, e.At.Location())
}

// TestMQTTBadMessagesAreCountedAndIgnored: garbage, oversized, strictly
// invalid, negative, absurd and unknown-slot messages are counted; the
// driver goes on and counts the good reading after them.
func TestMQTTBadMessagesAreCountedAndIgnored(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	s, ev := idle(t, mqttCfg(b.URL(), "shelves/shelf-a", colaSlot), shelf.Options{})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: "shelves/shelf-a"})
	ctx := context.Background()
	for _, p := range []string{
		"CHANGE:1234", // the DIY format of DEVICE-PROTOCOLS.md §3 [45]
		`{"slot":0,"weight_g":1234,"mac":"aa:bb"}`,
		`{"slot":0,"weight_g":"1234"}`,
		`{"slot":0}`,
		`{"slot":0,"weight_g":12`,
		"",
		`{"slot":0,"weight_g":1}` + strings.Repeat(" ", shelf.DefaultMaxPayload),
	} {
		require.NoError(t, sim.PublishRaw(ctx, []byte(p)))
	}
	require.NoError(t, sim.Publish(ctx, 0, -40))
	require.NoError(t, sim.Publish(ctx, 0, 9_000_000))
	require.NoError(t, sim.Publish(ctx, 5, 1000))
	for range 3 {
		require.NoError(t, sim.Publish(ctx, 0, 120+4*550))
	}
	ev.wait(t, shelf.KindCount, countIs(0, 4))
	st := s.Stats()
	assert.Equal(t, uint64(7), st.Garbage)
	assert.Equal(t, map[shelf.Reason]uint64{shelf.ReasonNegative: 1, shelf.ReasonAbsurd: 1, shelf.ReasonUnknownSlot: 1}, st.Rejected)
	assert.Equal(t, devices.StateIdle, s.Status().State)
}

// TestMQTTSensorStopsThenResumes: the sensor's heartbeat stops (power, Wi-Fi):
// sensor_offline and an error status; it resumes: sensor_online, idle.
func TestMQTTSensorStopsThenResumes(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	_, ev := idle(t, mqttCfg(b.URL(), "shelves/shelf-a", colaSlot), shelf.Options{Hub: hub})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: "shelves/shelf-a", Interval: 20 * time.Millisecond})
	sim.Set(0, 120+5*550)
	ev.wait(t, shelf.KindCount, countIs(0, 5))

	sim.Pause(true)
	off := ev.wait(t, shelf.KindSensorOffline, nil)
	assert.Equal(t, int64(5), off.Count)
	assert.Contains(t, off.Detail, "no reading for")
	waitState(t, st, devices.StateError, "no readings from any slot")

	sim.Pause(false)
	ev.wait(t, shelf.KindSensorOnline, nil)
	waitState(t, st, devices.StateIdle, "")
	assert.Equal(t, 1, ev.count(shelf.KindSensorOffline, 0))
	assert.Equal(t, 1, ev.count(shelf.KindCount, 0), "the count survives the silence")
}

// TestMQTTShrinkVersusSale: two SKUs drop by two each; the till records a
// sale of the first shortly AFTER its drop (the customer walked to the
// checkout), none of the second. After the window only the second is
// shrink.
func TestMQTTShrinkVersusSale(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	var mu sync.Mutex
	type sale struct {
		sku   string
		at    time.Time
		units int64
	}
	var sold []sale
	var asked []string
	till := shelf.SalesFunc(func(_ context.Context, sku string, since time.Time) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, sku)
		var n int64
		for _, s := range sold {
			if s.sku == sku && !s.at.Before(since) {
				n += s.units
			}
		}
		return n, nil
	})
	cfg := mqttCfg(b.URL(), "shelves/shelf-a", colaSlot, chipsSlot)
	cfg.ShrinkWindow = time.Second // the test records its sale well within it
	cfg.OfflineAfter = time.Minute
	_, ev := idle(t, cfg, shelf.Options{Sales: till})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: "shelves/shelf-a", Interval: 5 * time.Millisecond, Multi: true})
	sim.Set(0, 120+8*550)
	sim.Set(1, 80+9*70)
	ev.wait(t, shelf.KindCount, countIs(0, 8))
	ev.wait(t, shelf.KindCount, countIs(1, 9))

	sim.Set(0, 120+6*550)
	sim.Set(1, 80+7*70)
	d0 := ev.wait(t, shelf.KindCount, countIs(0, 6))
	ev.wait(t, shelf.KindCount, countIs(1, 7))
	mu.Lock()
	sold = append(sold, sale{sku: colaSlot.SKU, at: d0.At.Add(100 * time.Millisecond), units: 2})
	mu.Unlock()

	sh := ev.wait(t, shelf.KindShrink, nil)
	assert.Equal(t, chipsSlot.SKU, sh.SKU)
	assert.Equal(t, int64(2), sh.Count)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(asked) == 2
	}, wait, 5*time.Millisecond, "the till is asked about both drops")
	assert.Zero(t, ev.count(shelf.KindShrink, 0), "the sale explains the cola drop")
}

// TestMQTTSlowOwnerNeverBlocksDriver: nobody reads the events; the
// engine keeps reading the sensor, and past MaxPending the oldest events
// are dropped and counted.
func TestMQTTSlowOwnerNeverBlocksDriver(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	out := make(chan shelf.Event) // never read
	cfg := mqttCfg(b.URL(), "shelves/shelf-a", colaSlot)
	cfg.StableReadings = 1
	cfg.MaxPending = 8
	s, _ := idle(t, cfg, shelf.Options{Out: out})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: "shelves/shelf-a"})
	ctx := context.Background()
	for i := range 40 {
		require.NoError(t, sim.Publish(ctx, 0, 120+int64(5+i%2)*550))
	}
	require.Eventually(t, func() bool { return s.Stats().Readings == 40 }, wait, 5*time.Millisecond)
	assert.Positive(t, s.Stats().EventsDropped)
	ctxC, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, s.Close(ctxC), "Close does not wait on the owner")
}

// TestMQTTBrokerRestart: the broker restarts and loses its sessions; the
// shelf reports it, reconnects with backoff and resubscribes.
func TestMQTTBrokerRestart(t *testing.T) {
	b := newBroker(t, embedbroker.Options{})
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	s, ev := idle(t, mqttCfg(b.URL(), "shelves/shelf-a", colaSlot), shelf.Options{Hub: hub})

	b2, err := embedbroker.Restart(b)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b2.Close() })
	waitState(t, st, devices.StateError, "broker")
	waitState(t, st, devices.StateIdle, "")
	assert.Equal(t, uint64(1), s.Stats().Reconnects)

	sim := newSensor(t, shelfsim.SensorOptions{Broker: b2.URL(), Topic: "shelves/shelf-a", Interval: 10 * time.Millisecond})
	sim.Set(0, 120+2*550)
	ev.wait(t, shelf.KindCount, countIs(0, 2))
}

// TestMQTTStoreUserUnderACL: the embedded broker enforces the production
// ACL. A shelf connecting as the store may use the store's own topics; a
// topic outside them is refused and the status says so.
func TestMQTTStoreUserUnderACL(t *testing.T) {
	b := newBroker(t, embedbroker.Options{Privileged: []string{"hq"}, Users: map[string]string{"S001": "pw", "hq": "hqpw"}})
	topic := "edgepos/v1/stores/S001/shelves/shelf-a"
	cfg := mqttCfg(b.URL(), topic, colaSlot)
	cfg.MQTT.Username, cfg.MQTT.Password = "S001", "pw"
	_, ev := idle(t, cfg, shelf.Options{})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: b.URL(), Topic: topic, Username: "S001", Password: "pw"})
	for range 3 {
		require.NoError(t, sim.Publish(context.Background(), 0, 120+7*550))
	}
	ev.wait(t, shelf.KindCount, countIs(0, 7))

	denied := mqttCfg(b.URL(), "shelves/shelf-a", colaSlot)
	denied.Name = "shelf-x"
	denied.MQTT.Username, denied.MQTT.Password = "S001", "pw"
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(64)
	defer cancel()
	start(t, denied, shelf.Options{Hub: hub})
	waitState(t, st, devices.StateError, "refused by the broker")

	wrong := mqttCfg(b.URL(), topic, colaSlot)
	wrong.Name = "shelf-y"
	wrong.MQTT.Username, wrong.MQTT.Password = "S001", "nope"
	hub2 := devices.NewHub()
	st2, cancel2 := hub2.Subscribe(64)
	defer cancel2()
	start(t, wrong, shelf.Options{Hub: hub2})
	waitState(t, st2, devices.StateError, "broker not connected")
}

func TestMQTTConfigRejected(t *testing.T) {
	for name, mut := range map[string]func(*shelf.Config){
		"no broker":   func(c *shelf.Config) { c.MQTT.Broker = "" },
		"bad scheme":  func(c *shelf.Config) { c.MQTT.Broker = "http://h:1883" },
		"wildcard":    func(c *shelf.Config) { c.MQTT.Topic = "shelves/#" },
		"no topic":    func(c *shelf.Config) { c.MQTT.Topic = "" },
		"no slots":    func(c *shelf.Config) { c.Slots = nil },
		"no name":     func(c *shelf.Config) { c.Name = "" },
		"qos 3":       func(c *shelf.Config) { c.MQTT.QoS = 3 },
		"tiny buffer": func(c *shelf.Config) { c.MQTT.MaxPayload = 10 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := mqttCfg("tcp://127.0.0.1:1", "shelves/a", colaSlot)
			mut(&cfg)
			require.ErrorIs(t, shelf.New(cfg, shelf.Options{}).Open(context.Background()), shelf.ErrBadConfig)
		})
	}
}

// TestMosquittoShelf runs the MQTT transport against the machine's
// Mosquitto (integration; skipped without it unless required).
func TestMosquittoShelf(t *testing.T) {
	url := testenv.MosquittoURL(t)
	topic := testenv.TopicPrefix() + "/shelves/shelf-a"
	s, ev := idle(t, mqttCfg(url, topic, colaSlot, chipsSlot), shelf.Options{})
	sim := newSensor(t, shelfsim.SensorOptions{Broker: url, Topic: topic, NoiseG: 5, Interval: 10 * time.Millisecond, Multi: true})
	sim.Set(0, 120+9*550)
	sim.Set(1, 80+2*70)
	ev.wait(t, shelf.KindCount, countIs(0, 9))
	ev.wait(t, shelf.KindLowStock, countIs(1, 2))
	require.NoError(t, sim.PublishRaw(context.Background(), []byte("not json")))
	require.Eventually(t, func() bool { return s.Stats().Garbage == 1 }, wait, 5*time.Millisecond)
	sim.Set(0, 120+8*550)
	ev.wait(t, shelf.KindCount, countIs(0, 8))
}
