package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent/devset"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/devices/shelf/shelfsim"
	"github.com/edgepos/edgepos/internal/config"
	"github.com/edgepos/edgepos/internal/embedbroker"
)

// TestRunAttachesShelves starts `pos-agent run` with an MQTT shelf on a
// store-LAN broker (the embedded one) and a shelf sensor (shelfsim)
// publishing to it: the shelf shows in the status bar, its stock running
// low is an alert there, and its counters are on /metrics.
func TestRunAttachesShelves(t *testing.T) {
	b, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	topic := "edgepos/v1/stores/S001/shelves/shelf-a"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.NewReplacer("DIR", dir, "BROKER", b.URL(), "TOPIC", topic).Replace(`store_id: S001
terminal_id: T1
data_dir: DIR
database: DIR/pos.db
locale: en
http:
  listen: 127.0.0.1:0
sync:
  broker: BROKER
devices:
  shelves:
    - name: shelf-a
      transport: mqtt
      broker: BROKER
      topic: TOPIC
      username: S001
      qos: 1
      stable_readings: 2
      shrink_window: 1s
      slots:
        - {slot: 0, sku: TEA500, tare_g: 120, unit_g: 520, tolerance_g: 25, low_stock: 3}
log:
  format: text
  level: debug
`)), 0o600))
	args := []string{"--config", cfgPath}
	code, out, errOut := runCmd(t, append(args, "check-config")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "1 shelf/shelves")
	code, _, errOut = runCmd(t, append(args, "users", "add", "--id", "1001", "--name", "Li", "--pin", "1234")...)
	require.Equal(t, 0, code, errOut)

	r := startRun(t, append(args, "run"), io.Discard)
	addr, logs := r.addr, r.logs
	assert.NotContains(t, logs.String(), "not attached", "no more warning that shelves are left out")

	c := newAPIClient(t, "http://"+addr)
	c.login("1001", "1234")
	type status struct {
		Devices []struct{ Name, Kind, State, Reason string }
		Alerts  []struct {
			Kind, Shelf, Slot, SKU string
			Count                  int64
		}
	}
	var st status
	require.Eventually(t, func() bool {
		st = status{}
		c.do("GET", "/api/status", nil, &st)
		return len(st.Devices) == 1 && st.Devices[0].Kind == "shelf" && st.Devices[0].State == "idle"
	}, 10*time.Second, 20*time.Millisecond, "the shelf is connected: %+v", st)
	assert.Equal(t, "shelf-a", st.Devices[0].Name)

	sim := shelfsim.NewSensor(shelfsim.SensorOptions{Broker: b.URL(), Topic: topic, Username: "S001", Interval: 20 * time.Millisecond})
	sim.Set(0, 120+8*520)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, sim.Open(ctx))
	defer sim.Close(context.Background())
	require.Eventually(t, func() bool {
		return strings.Contains(c.raw("GET", "/metrics", nil), `edgepos_agent_shelf_messages_total{shelf="shelf-a"}`)
	}, 10*time.Second, 20*time.Millisecond)
	sim.Set(0, 120+2*520)
	require.Eventually(t, func() bool {
		st = status{}
		c.do("GET", "/api/status", nil, &st)
		return len(st.Alerts) > 0
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "low_stock", st.Alerts[0].Kind)
	assert.Equal(t, "shelf-a", st.Alerts[0].Shelf)
	assert.Equal(t, "TEA500", st.Alerts[0].SKU)
	assert.EqualValues(t, 2, st.Alerts[0].Count)

	r.stop(t, 15*time.Second, "run did not stop")
}

// TestShelfOptionsTranslation: the example config's two shelves become
// the driver's configurations, defaults spelt out by config.
func TestShelfOptionsTranslation(t *testing.T) {
	cfg, err := config.Load(exampleConfig, nil, nil)
	require.NoError(t, err)
	do, err := deviceOptions(cfg, nil)
	require.NoError(t, err)
	require.Len(t, do.Attachments, 1)
	shelves, ok := do.Attachments[0].(*devset.Shelves)
	require.True(t, ok)
	sts := shelves.States()
	require.Len(t, sts, 2)
	assert.Equal(t, "shelf-a", sts[0].Device)
	assert.Equal(t, "shelf-b", sts[1].Device)

	a, err := shelfConfig(cfg.Devices.Shelves[0])
	require.NoError(t, err)
	assert.Equal(t, shelf.TransportMQTT, a.Transport)
	assert.Equal(t, "tcp://127.0.0.1:1883", a.MQTT.Broker)
	assert.Equal(t, "shelves/shelf-a", a.MQTT.Topic)
	assert.Equal(t, 10*time.Minute, a.ShrinkWindow)
	assert.Equal(t, shelf.Slot{Slot: 0, SKU: "6901234567892", TareG: 120, UnitG: 550, ToleranceG: 25, LowStock: 3}, a.Slots[0])
	m, err := shelfConfig(cfg.Devices.Shelves[1])
	require.NoError(t, err)
	assert.Equal(t, shelf.TransportModbus, m.Transport)
	assert.Equal(t, "/dev/edgepos/shelf0", m.Modbus.Port.Path)
	assert.Equal(t, byte(1), m.Modbus.UnitID)
	assert.Equal(t, shelf.HighFirst, m.Modbus.WordOrder)
	assert.Equal(t, time.Second, m.Modbus.PollInterval)
	require.NoError(t, m.WithDefaults().Validate())

	// An unreadable password file is the config's error, before anything opens.
	cfg.Devices.Shelves[0].Username, cfg.Devices.Shelves[0].PasswordFile = "shelves", filepath.Join(t.TempDir(), "missing.pw")
	_, err = deviceOptions(cfg, nil)
	require.ErrorContains(t, err, "devices.shelves[0]")
	require.ErrorContains(t, err, "password_file")
}
