package devset

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/sync/wire"
)

// The shelf slots of the tests: demo products sold by the each, with
// realistic weights (grams).
var (
	waterSlot = shelf.Slot{Slot: 0, SKU: "WATER", TareG: 100, UnitG: 570, ToleranceG: 20, LowStock: 3}
	breadSlot = shelf.Slot{Slot: 1, SKU: "BREAD", TareG: 80, UnitG: 400, ToleranceG: 20, LowStock: 2}
)

func grams(sl shelf.Slot, n int64) int64 { return sl.TareG + n*sl.UnitG }

// fastShelf makes a shelf decide within a test's patience: the shrink
// window is short, time rules run often.
func fastShelf(c shelf.Config) shelf.Config {
	c.StableReadings = 2
	c.ShrinkWindow = 400 * time.Millisecond
	c.SaleLookback = 10 * time.Second
	c.OfflineAfter = 5 * time.Second
	c.Tick = 10 * time.Millisecond
	c.ReconnectMin, c.ReconnectMax = 10*time.Millisecond, 200*time.Millisecond
	return c
}

// sellUnits completes a cash sale of n units of sku through the ledger.
func (term *terminal) sellUnits(tb testing.TB, sku string, n int64) *agent.Sale {
	tb.Helper()
	ctx := context.Background()
	l := term.a.Ledger()
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(tb, err)
	s, err = l.AddItem(ctx, s.ID, sku, n*1000)
	require.NoError(tb, err)
	s, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: s.Total})
	require.NoError(tb, err)
	done, err := l.CompleteSale(ctx, s.ID, "key-"+s.ID)
	require.NoError(tb, err)
	return done
}

// waitCount waits for the shelf's "shelf" UI event of a count on slot.
func (term *terminal) waitCount(tb testing.TB, slot int, n int64) {
	tb.Helper()
	term.waitEvent(tb, "shelf", func(m map[string]any) bool {
		return m["kind"] == shelf.KindCount && m["slot"] == float64(slot) && m["count"] == float64(n)
	})
}

func shelfAlertEvents(tb testing.TB, a *agent.Agent) []wire.ShelfAlert {
	tb.Helper()
	rows, err := a.Ledger().DB().Read.Query("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", wire.EventShelfAlert)
	require.NoError(tb, err)
	defer rows.Close()
	var out []wire.ShelfAlert
	for rows.Next() {
		var p string
		require.NoError(tb, rows.Scan(&p))
		var al wire.ShelfAlert
		require.NoError(tb, json.Unmarshal([]byte(p), &al))
		out = append(out, al)
	}
	require.NoError(tb, rows.Err())
	return out
}

func kinds(als []wire.ShelfAlert) []string {
	var out []string
	for _, al := range als {
		out = append(out, fmt.Sprintf("%s/%s/%d", al.Kind, al.Slot, al.Count))
	}
	return out
}

func statusAlerts(a *agent.Agent) []string {
	var out []string
	for _, al := range a.Status(context.Background()).Alerts {
		out = append(out, fmt.Sprintf("%s/%s/%d", al.Kind, al.Slot, al.Count))
	}
	return out
}

// waitAlert waits until HQ's outbox holds the alert want
// ("kind/slot/count") and returns every alert so far.
func waitAlert(tb testing.TB, a *agent.Agent, want string) []wire.ShelfAlert {
	tb.Helper()
	var als []wire.ShelfAlert
	require.Eventually(tb, func() bool {
		als = shelfAlertEvents(tb, a)
		for _, k := range kinds(als) {
			if k == want {
				return true
			}
		}
		return false
	}, wait, 5*time.Millisecond, "no alert %s; have %v", want, kinds(als))
	return als
}

func (term *terminal) shelfState(tb testing.TB, name string) agent.DeviceState {
	tb.Helper()
	for _, d := range term.ds.States() {
		if d.Kind == "shelf" && d.Name == name {
			return d
		}
	}
	tb.Fatalf("no state of shelf %s in %+v", name, term.ds.States())
	return agent.DeviceState{}
}

// TestMQTTShelfSalesExplainDropsOthersAreShrink runs an MQTT shelf
// sensor (shelfsim, JSON over the embedded broker, the store's own topic
// and user) through the agent: two waters taken and sold at the till are
// no shrink; three breads taken and not sold are, in HQ's outbox and the
// status bar; the waters running low raise low stock (outbox, status
// bar), and the restock clears it from the status bar while HQ hears of
// the recovery.
func TestMQTTShelfSalesExplainDropsOthersAreShrink(t *testing.T) {
	b, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	topic := "edgepos/v1/stores/S001/shelves/shelf0"
	cfg := fastShelf(shelf.Config{Name: "shelf0", Transport: shelf.TransportMQTT,
		MQTT: shelf.MQTTConfig{Broker: b.URL(), Topic: topic, Username: "S001", QoS: 1}, Slots: []shelf.Slot{waterSlot, breadSlot}})
	shelves, err := NewShelves([]ShelfOptions{{Config: cfg}}, quiet)
	require.NoError(t, err)
	assert.Equal(t, "closed", string(shelves.States()[0].State), "configured, not started")

	f := newFixture(t)
	opts := f.options()
	opts.Attachments = []Attachment{shelves}
	term := f.open(opts, false)
	require.Eventually(t, func() bool { return term.shelfState(t, "shelf0").State == "idle" }, wait, 5*time.Millisecond, "the shelf subscribed")

	sim := shelfsim.NewSensor(shelfsim.SensorOptions{Broker: b.URL(), Topic: topic, Username: "S001", Interval: 20 * time.Millisecond, NoiseG: 5, Seed: 3})
	sim.Set(0, grams(waterSlot, 10))
	sim.Set(1, grams(breadSlot, 6))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, sim.Open(ctx))
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	term.waitCount(t, 0, 10)
	term.waitCount(t, 1, 6)

	// Two waters leave the shelf and are sold; then three breads leave it
	// and are not. The bread's window closes after the water's.
	term.sellUnits(t, "WATER", 2)
	sim.Set(0, grams(waterSlot, 8))
	term.waitCount(t, 0, 8)
	sim.Set(1, grams(breadSlot, 3))
	term.waitCount(t, 1, 3)
	als := waitAlert(t, term.a, "shrink/1/3")
	assert.Equal(t, []string{"shrink/1/3"}, kinds(als), "the sold waters are no shrink, the breads are")
	assert.Equal(t, "shelf0", als[0].Shelf)
	assert.Equal(t, "BREAD", als[0].SKU)
	assert.InDelta(t, grams(breadSlot, 3), als[0].Grams, 5, "the stable weight, within the sensor's noise")
	assert.Contains(t, als[0].Detail, "0 sold")
	assert.Equal(t, []string{"shrink/1/3"}, statusAlerts(term.a), "the status bar shows the shrink")

	// Five more waters sold and taken: three left is low stock.
	term.sellUnits(t, "WATER", 5)
	sim.Set(0, grams(waterSlot, 3))
	term.waitCount(t, 0, 3)
	waitAlert(t, term.a, "low_stock/0/3")
	assert.Contains(t, statusAlerts(term.a), "low_stock/0/3")
	// One more bread taken and not sold: its shrink is decided after the
	// waters' drop was, which therefore was no shrink.
	sim.Set(1, grams(breadSlot, 2))
	als = waitAlert(t, term.a, "shrink/1/1")
	assert.Equal(t, []string{"shrink/1/3", "low_stock/0/3", "low_stock/1/2", "shrink/1/1"}, kinds(als))

	// Restocked: HQ hears the recovery, the status bar drops the alert.
	sim.Set(0, grams(waterSlot, 12))
	waitAlert(t, term.a, "low_stock_cleared/0/12")
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual([]string{"shrink/1/3", "low_stock/1/2", "shrink/1/1"}, statusAlerts(term.a))
	}, wait, 5*time.Millisecond, "the restock cleared the waters' low stock only: %v", statusAlerts(term.a))

	// The shelf's state reached HQ like every device's.
	var states []string
	for _, d := range deviceEvents(t, term.a) {
		if d.Kind == "shelf" {
			states = append(states, d.State)
		}
	}
	assert.Contains(t, states, "idle")
}

// TestModbusShelfDropWithoutSaleIsShrink runs a Modbus RTU weighing
// indicator on a pseudo-terminal (shelfsim) through the agent: a drop
// matched by a sale is no shrink, one without a sale is an alert in HQ's
// outbox and in the status bar.
func TestModbusShelfDropWithoutSaleIsShrink(t *testing.T) {
	in, err := shelfsim.NewIndicator(filepath.Join(t.TempDir(), "shelf1"), 7)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	w, br := waterSlot, breadSlot
	w.Register, br.Register = 0, 10
	in.SetWeight(0, int32(grams(w, 9)), shelfsim.HighFirst)
	in.SetWeight(10, int32(grams(br, 5)), shelfsim.HighFirst)
	cfg := fastShelf(shelf.Config{Name: "shelf1", Transport: shelf.TransportModbus,
		Modbus: shelf.ModbusConfig{Port: serialport.Config{Path: in.Path(), Baud: 9600}, UnitID: 7, PollInterval: 20 * time.Millisecond},
		Slots:  []shelf.Slot{w, br}})
	shelves, err := NewShelves([]ShelfOptions{{Config: cfg}}, quiet)
	require.NoError(t, err)
	f := newFixture(t)
	opts := f.options()
	opts.Attachments = []Attachment{shelves}
	term := f.open(opts, false)
	term.waitCount(t, 0, 9)
	term.waitCount(t, 1, 5)
	assert.Equal(t, "idle", term.shelfState(t, "shelf1").State)

	term.sellUnits(t, "BREAD", 1)
	in.SetWeight(10, int32(grams(br, 4)), shelfsim.HighFirst)
	term.waitCount(t, 1, 4)
	in.SetWeight(0, int32(grams(w, 7)), shelfsim.HighFirst)
	term.waitCount(t, 0, 7)
	als := waitAlert(t, term.a, "shrink/0/2")
	assert.Equal(t, []string{"shrink/0/2"}, kinds(als), "the sold bread is no shrink")
	assert.Equal(t, []string{"shrink/0/2"}, statusAlerts(term.a))
	assert.Positive(t, shelves.Stats()["shelf1"].Messages)

	term.close(t)
	assert.Equal(t, "closed", term.shelfState(t, "shelf1").State, "a stopped set reports its shelf closed")
}

// TestShelvesAreValidated: a bad shelf config or two shelves of one name
// are refused before anything opens.
func TestShelvesAreValidated(t *testing.T) {
	ok := shelf.Config{Name: "s", Transport: shelf.TransportMQTT, MQTT: shelf.MQTTConfig{Broker: "tcp://127.0.0.1:1", Topic: "t"}, Slots: []shelf.Slot{waterSlot}}
	_, err := NewShelves([]ShelfOptions{{Config: ok}, {Config: ok}}, quiet)
	require.ErrorContains(t, err, `two shelves named "s"`)
	bad := ok
	bad.Slots = []shelf.Slot{{Slot: 0, SKU: "WATER", UnitG: 10, ToleranceG: 5}}
	_, err = NewShelves([]ShelfOptions{{Config: bad}}, quiet)
	require.ErrorIs(t, err, shelf.ErrBadConfig)
	require.ErrorContains(t, err, "tolerance")
}
