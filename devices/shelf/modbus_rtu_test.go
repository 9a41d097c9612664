package shelf_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
)

// Slots of configs/agent.yaml's shelf-b style: rice in 5 kg bags on
// registers 0-1, salt in 500 g packs on registers 10-11.
var (
	riceSlot = shelf.Slot{Slot: 0, SKU: "SKU-RICE-5KG", TareG: 0, UnitG: 5000, ToleranceG: 100, LowStock: 2, Register: 0}
	saltSlot = shelf.Slot{Slot: 1, SKU: "SKU-SALT", TareG: 300, UnitG: 500, ToleranceG: 20, LowStock: 1, Register: 10}
)

func newIndicator(t *testing.T) *shelfsim.Indicator {
	t.Helper()
	in, err := shelfsim.NewIndicator(filepath.Join(t.TempDir(), "shelf0"), 1)
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func modbusCfg(path string, slots ...shelf.Slot) shelf.Config {
	return shelf.Config{
		Name:      "shelf-b",
		Transport: shelf.TransportModbus,
		Modbus: shelf.ModbusConfig{Port: serialport.Config{Path: path, Baud: 9600}, UnitID: 1,
			PollInterval: 20 * time.Millisecond, ResponseTimeout: 200 * time.Millisecond},
		Slots:        slots,
		OfflineAfter: 600 * time.Millisecond,
		Tick:         10 * time.Millisecond,
		ReconnectMin: 10 * time.Millisecond,
		ReconnectMax: 50 * time.Millisecond,
	}
}

func TestModbusCountsTwoSlots(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 4*5000+30, shelfsim.HighFirst)
	in.SetWeight(10, 300+6*500-5, shelfsim.HighFirst)
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(64)
	defer cancel()
	s, ev := start(t, modbusCfg(in.Path(), riceSlot, saltSlot), shelf.Options{Hub: hub})
	waitState(t, st, devices.StateIdle, "")

	e := ev.wait(t, shelf.KindCount, countIs(0, 4))
	assert.Equal(t, "SKU-RICE-5KG", e.SKU)
	assert.Equal(t, int64(20030), e.Grams)
	assert.True(t, e.Initial)
	ev.wait(t, shelf.KindCount, countIs(1, 6))

	in.SetWeight(0, 2*5000-40, shelfsim.HighFirst) // two bags taken
	e = ev.wait(t, shelf.KindCount, countIs(0, 2))
	assert.Equal(t, int64(4), e.Prev)
	ev.wait(t, shelf.KindLowStock, countIs(0, 2))
	assert.Equal(t, 1, ev.count(shelf.KindCount, 1), "the other slot did not change")
	assert.Zero(t, s.Stats().CRCErrors+s.Stats().Timeouts+s.Stats().Exceptions)
}

func TestModbusLowFirstAndScale(t *testing.T) {
	in := newIndicator(t)
	// The indicator shows 0.1 g units, low word first: 123456 → 12345.6 g.
	in.SetWeight(0, 123456, shelfsim.LowFirst)
	cfg := modbusCfg(in.Path(), shelf.Slot{Slot: 0, SKU: "NUTS", UnitG: 250, ToleranceG: 20, Register: 0})
	cfg.Modbus.WordOrder = shelf.LowFirst
	cfg.Modbus.ScaleDiv = 10
	_, ev := start(t, cfg, shelf.Options{})
	e := ev.wait(t, shelf.KindCount, nil)
	assert.Equal(t, int64(12346), e.Grams)
	assert.Equal(t, int64(49), e.Count) // 12346 / 250 = 49.4 → 49, residual 96 g ≤ 5 % of 12346
}

func TestModbusNegativeReadingRejected(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, -1500, shelfsim.HighFirst) // the sign only survives a correct word order
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{})
	require.Eventually(t, func() bool { return s.Stats().Rejected[shelf.ReasonNegative] >= 3 }, wait, 5*time.Millisecond)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	ev.wait(t, shelf.KindCount, countIs(0, 3))
}

func TestModbusBadCRCIsCountedAndIgnored(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	in.Inject(shelfsim.FaultBadCRC, 5, 0)
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{})
	e := ev.wait(t, shelf.KindCount, nil)
	assert.Equal(t, int64(3), e.Count, "a frame with a bad CRC is never taken for a weight")
	assert.Equal(t, uint64(5), s.Stats().CRCErrors)
}

func TestModbusExceptionIsReported(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	in.Inject(shelfsim.FaultException, -1, shelf.ExServerBusy)
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{Hub: hub})
	es := waitState(t, st, devices.StateError, "exception 06 (server device busy)")
	assert.Contains(t, es.Reason, "slot 0 (register 0)")
	assert.Positive(t, s.Stats().Exceptions)
	assert.Zero(t, ev.count(shelf.KindCount, 0))

	in.Heal()
	waitState(t, st, devices.StateIdle, "")
	ev.wait(t, shelf.KindCount, countIs(0, 3))
}

func TestModbusMissingRegisterIsIllegalAddress(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst) // salt's registers 10-11 are not there
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	_, ev := start(t, modbusCfg(in.Path(), riceSlot, saltSlot), shelf.Options{Hub: hub})
	waitState(t, st, devices.StateError, "illegal data address")
	ev.wait(t, shelf.KindCount, countIs(0, 3))
	ev.wait(t, shelf.KindSensorOffline, func(e shelf.Event) bool { return e.Slot == 1 })
}

func TestModbusTruncatedFrame(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	in.Inject(shelfsim.FaultTruncate, 2, 0)
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{})
	ev.wait(t, shelf.KindCount, countIs(0, 3))
	assert.Equal(t, uint64(2), s.Stats().Truncated)
}

// TestModbusSilentDeviceGoesOfflineAndBack: the indicator stops answering
// (its port is still there): timeouts, then sensor_offline; it answers
// again: sensor_online, and the count carries on.
func TestModbusSilentDeviceGoesOfflineAndBack(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{Hub: hub})
	ev.wait(t, shelf.KindCount, countIs(0, 3))

	in.Inject(shelfsim.FaultSilent, -1, 0)
	waitState(t, st, devices.StateError, "response timeout")
	off := ev.wait(t, shelf.KindSensorOffline, nil)
	assert.Equal(t, int64(3), off.Count)
	assert.Positive(t, s.Stats().Timeouts)

	in.SetWeight(0, 5*5000, shelfsim.HighFirst)
	in.Heal()
	ev.wait(t, shelf.KindSensorOnline, nil)
	ev.wait(t, shelf.KindCount, countIs(0, 5))
	waitState(t, st, devices.StateIdle, "")
}

// TestModbusUnplugReplug: the RS-485 adapter is pulled (its tty hangs up,
// its udev-style path goes) and plugged back on a new tty: the driver
// reports the error, reopens by itself, and reads resume.
func TestModbusUnplugReplug(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(0, 3*5000, shelfsim.HighFirst)
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	s, ev := start(t, modbusCfg(in.Path(), riceSlot), shelf.Options{Hub: hub})
	ev.wait(t, shelf.KindCount, countIs(0, 3))
	waitState(t, st, devices.StateIdle, "")

	require.NoError(t, in.Unplug())
	e := waitState(t, st, devices.StateError, "")
	assert.Regexp(t, "disconnected|not connected", e.Reason)

	in.SetWeight(0, 7*5000, shelfsim.HighFirst)
	require.NoError(t, in.Replug())
	waitState(t, st, devices.StateIdle, "")
	ev.wait(t, shelf.KindCount, countIs(0, 7))
	assert.Equal(t, uint64(1), s.Stats().Reconnects)
}

func TestModbusAbsentAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shelf0")
	hub := devices.NewHub()
	st, cancel := hub.Subscribe(256)
	defer cancel()
	_, ev := start(t, modbusCfg(path, riceSlot), shelf.Options{Hub: hub})
	waitState(t, st, devices.StateError, "not connected")
	in, err := shelfsim.NewIndicator(path, 1)
	require.NoError(t, err)
	defer in.Close()
	in.SetWeight(0, 5000, shelfsim.HighFirst)
	ev.wait(t, shelf.KindCount, countIs(0, 1))
}

// TestRTUClientErrors drives the client directly: every fault comes back
// as its typed error, and the next exchange after each works (the
// inter-frame handling throws nothing stale into it).
func TestRTUClientErrors(t *testing.T) {
	in := newIndicator(t)
	in.SetWeight(4, -123456, shelfsim.HighFirst)
	port, err := serialport.Open(serialport.Config{Path: in.Path(), Baud: 9600})
	require.NoError(t, err)
	c := shelf.NewRTUClient(port, 9600, 150*time.Millisecond)
	defer func() { require.NoError(t, c.Close()) }()
	ctx := context.Background()

	ok := func() {
		t.Helper()
		regs, err := c.ReadHolding(ctx, 1, 4, 2)
		require.NoError(t, err)
		assert.Equal(t, int32(-123456), shelf.HighFirst.Int32(regs[0], regs[1]))
	}
	ok()

	in.Inject(shelfsim.FaultException, 1, shelf.ExIllegalDataValue)
	_, err = c.ReadHolding(ctx, 1, 4, 2)
	var ex *shelf.ExceptionError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, byte(shelf.ExIllegalDataValue), ex.Code)
	ok()

	in.Inject(shelfsim.FaultBadCRC, 1, 0)
	_, err = c.ReadHolding(ctx, 1, 4, 2)
	var ce *shelf.CRCError
	require.ErrorAs(t, err, &ce)
	ok()

	in.Inject(shelfsim.FaultTruncate, 1, 0)
	_, err = c.ReadHolding(ctx, 1, 4, 2)
	require.ErrorIs(t, err, shelf.ErrTruncated)
	ok()

	in.Inject(shelfsim.FaultSilent, 1, 0)
	_, err = c.ReadHolding(ctx, 1, 4, 2)
	require.ErrorIs(t, err, shelf.ErrTimeout)
	ok()

	_, err = c.ReadHolding(ctx, 2, 4, 2) // nobody at unit 2
	require.ErrorIs(t, err, shelf.ErrTimeout)
	_, err = c.ReadHolding(ctx, 1, 100, 2)
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, byte(shelf.ExIllegalDataAddress), ex.Code)
	ok()

	require.NoError(t, in.Unplug())
	require.Eventually(t, func() bool {
		_, err := c.ReadHolding(ctx, 1, 4, 2)
		return err != nil && !errors.Is(err, shelf.ErrModbus) && errors.Is(err, serialport.ErrGone)
	}, wait, 10*time.Millisecond, "an unplugged port is a port error, not a protocol one")
}

func TestModbusConfigRejected(t *testing.T) {
	bad := map[string]func(*shelf.Config){
		"unit 0":             func(c *shelf.Config) { c.Modbus.UnitID = 0 },
		"word order":         func(c *shelf.Config) { c.Modbus.WordOrder = "middle" },
		"overlapping":        func(c *shelf.Config) { c.Slots[1].Register = 1 },
		"no path":            func(c *shelf.Config) { c.Modbus.Port.Path = "" },
		"tolerance too wide": func(c *shelf.Config) { c.Slots[0].ToleranceG = 2500 },
		"duplicate slot":     func(c *shelf.Config) { c.Slots[1].Slot = 0 },
		"no sku":             func(c *shelf.Config) { c.Slots[0].SKU = "" },
		"zero unit":          func(c *shelf.Config) { c.Slots[0].UnitG = 0 },
		"transport":          func(c *shelf.Config) { c.Transport = "zigbee" },
	}
	for name, mut := range bad {
		t.Run(name, func(t *testing.T) {
			cfg := modbusCfg("/dev/edgepos/shelf0", riceSlot, saltSlot)
			cfg.Slots = append([]shelf.Slot(nil), cfg.Slots...)
			mut(&cfg)
			s := shelf.New(cfg, shelf.Options{})
			require.ErrorIs(t, s.Open(context.Background()), shelf.ErrBadConfig)
		})
	}
	s := shelf.New(modbusCfg("/dev/x", riceSlot), shelf.Options{})
	require.ErrorIs(t, s.Close(context.Background()), shelf.ErrNotOpen)
}
