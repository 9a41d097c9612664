package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent/barcode"
)

const examplePath = "../../configs/agent.yaml"

// minimal is the smallest valid config.
const minimal = `
store_id: S001
terminal_id: T1
sync:
  broker: tcp://127.0.0.1:1883
`

func writeConfig(tb testing.TB, body string, mode os.FileMode) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "agent.yaml")
	require.NoError(tb, os.WriteFile(path, []byte(body), 0o600))
	require.NoError(tb, os.Chmod(path, mode)) // WriteFile's mode is masked by umask
	return path
}

// problems asserts err is a *ConfigError and returns its problems by field.
func problems(tb testing.TB, err error) map[string]ValidationError {
	tb.Helper()
	var ce *ConfigError
	require.ErrorAs(tb, err, &ce)
	require.ErrorIs(tb, err, ErrInvalid)
	out := map[string]ValidationError{}
	for _, p := range ce.Problems {
		out[p.Field] = p
	}
	return out
}

func TestExampleConfig(t *testing.T) {
	a, err := Load(examplePath, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "S001", a.StoreID)
	require.Equal(t, "T1", a.TerminalID)
	require.Equal(t, "/var/lib/edgepos/pos.db", a.Database)
	require.Equal(t, "CNY", a.Currency)
	require.Equal(t, 2, a.MinorDigits)
	require.True(t, a.TaxInclusive)
	require.Equal(t, "Asia/Shanghai", a.Location.String())
	require.Equal(t, int64(20000), a.CouponOfflineCap)
	keys, err := a.CouponKeyMap()
	require.NoError(t, err)
	require.Len(t, keys["hq-2026-1"], 32)
	require.Equal(t, barcode.DefaultLayouts(), a.Barcode.Layouts, "the example spells out the defaults")
	require.Equal(t, 12*time.Hour, a.HTTP.SessionTTL)
	require.Equal(t, 7*24*time.Hour, a.Sync.Retention)
	require.Equal(t, 10*time.Second, a.Sync.AckTimeout)
	require.Equal(t, 256<<10, a.Sync.BatchBytes)
	require.Len(t, a.Devices.Scanners, 1)
	require.Equal(t, "/dev/edgepos/scanner0", a.Devices.Scanners[0].Path)
	require.Equal(t, 300*time.Millisecond, a.Devices.Scanners[0].DedupeWindow)
	require.NotNil(t, a.Devices.Printer)
	require.Equal(t, "/dev/edgepos/printer0", a.Devices.Printer.Path)
	require.Len(t, a.Devices.Shelves, 2)
	require.Equal(t, int64(550), a.Devices.Shelves[0].Slots[0].UnitG)
	require.Empty(t, a.Warnings)
}

// TestExampleConfigNamesEveryKey keeps the example complete: every scalar
// key of Agent appears in it.
func TestExampleConfigNamesEveryKey(t *testing.T) {
	body, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	for _, k := range Keys() {
		leaf := k[strings.LastIndexByte(k, '.')+1:]
		require.Contains(t, string(body), leaf+":", "configs/agent.yaml lacks %s", k)
	}
}

func TestDefaults(t *testing.T) {
	a, err := Load(writeConfig(t, minimal, 0o644), nil, nil)
	require.NoError(t, err)
	require.Equal(t, "/var/lib/edgepos", a.DataDir)
	require.Equal(t, "/var/lib/edgepos/pos.db", a.Database)
	require.Equal(t, "CNY", a.Currency)
	require.Equal(t, 2, a.MinorDigits)
	require.True(t, a.TaxInclusive)
	require.Equal(t, "Asia/Shanghai", a.Timezone)
	require.Equal(t, "zh-CN", a.Locale)
	require.Equal(t, "127.0.0.1:8080", a.HTTP.Listen)
	require.Equal(t, "S001", a.Sync.Username, "username defaults to the store id")
	require.Equal(t, "edgepos/v1", a.Sync.TopicPrefix)
	require.Equal(t, 500, a.Sync.BatchEvents)
	require.Equal(t, 4, a.Sync.Window)
	require.Equal(t, 10*time.Second, a.Sync.AckTimeout)
	require.Equal(t, 7*24*time.Hour, a.Sync.Retention)
	require.Nil(t, a.Devices.Printer)
	require.Empty(t, a.Barcode.Layouts, "empty: the ledger uses barcode.DefaultLayouts()")
	require.Equal(t, "info", a.Log.Level)
	require.Equal(t, "json", a.Log.Format)
}

func TestMinorDigitsFollowCurrency(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+"currency: JPY\n", 0o644), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 0, a.MinorDigits)

	_, err = Load(writeConfig(t, minimal+"currency: JPY\nminor_digits: 2\n", 0o644), nil, nil)
	require.Contains(t, problems(t, err), "minor_digits")
}

func TestDeviceDefaults(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+`
devices:
  scanners:
    - path: /dev/edgepos/scanner0
  printer:
    transport: tcp
    address: 192.0.2.10:9100
`, 0o644), nil, nil)
	require.NoError(t, err)
	s := a.Devices.Scanners[0]
	require.Equal(t, Scanner{Name: "scanner0", Path: "/dev/edgepos/scanner0", Baud: 9600, DataBits: 8, Parity: "none", StopBits: 1, Suffix: "cr"}, s)
	require.Equal(t, 80, a.Devices.Printer.Width)
	require.Equal(t, "gbk", a.Devices.Printer.Encoding)
	require.Equal(t, "printer0", a.Devices.Printer.Name)
	require.Equal(t, "native", a.Devices.Printer.QR)
	require.Equal(t, "required", a.Devices.Printer.Status)
	require.Zero(t, a.Devices.Printer.CodePage)
}

func TestPrinterReceiptText(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+`
devices:
  printer:
    transport: usb
    path: /dev/usb/lp0
    status: none
    store_name: 示例便利店
    header: ["上海市示例路1号", "Tel 021-5555 0100"]
    footer: ["谢谢惠顾"]
`, 0o644), nil, nil)
	require.NoError(t, err)
	p := a.Devices.Printer
	require.Equal(t, "示例便利店", p.StoreName)
	require.Equal(t, []string{"上海市示例路1号", "Tel 021-5555 0100"}, p.Header)
	require.Equal(t, []string{"谢谢惠顾"}, p.Footer)
	require.Contains(t, strings.Join(a.Warnings, "\n"), "devices.printer.status is none")
}

func TestShelfDefaults(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+`
devices:
  shelves:
    - transport: modbus
      path: /dev/edgepos/shelf0
      slots:
        - {slot: 0, sku: A, unit_g: 500}
        - {slot: 3, sku: B, unit_g: 100, register: 40}
    - transport: mqtt
      broker: tcp://127.0.0.1:1883
      topic: shelves/b
      slots:
        - {slot: 0, sku: C, unit_g: 50}
`, 0o644), nil, nil)
	require.NoError(t, err)
	m := a.Devices.Shelves[0]
	require.Equal(t, "shelf0", m.Name)
	require.Equal(t, 9600, m.Baud)
	require.Equal(t, "none", m.Parity)
	require.Equal(t, 1, m.UnitID)
	require.Equal(t, "high_first", m.WordOrder)
	require.Equal(t, time.Second, m.PollInterval)
	require.Equal(t, 500*time.Millisecond, m.ResponseTimeout)
	require.Equal(t, int64(1), m.ScaleMul)
	require.Equal(t, int64(1), m.ScaleDiv)
	require.Equal(t, 0, *m.Slots[0].Register, "default register is slot × 2")
	require.Equal(t, 40, *m.Slots[1].Register)
	q := a.Devices.Shelves[1]
	require.Equal(t, "shelf1", q.Name)
	require.Nil(t, q.Slots[0].Register, "no register on an MQTT shelf")
	for _, s := range []Shelf{m, q} {
		require.Equal(t, 3, s.StableReadings)
		require.Equal(t, 30*time.Second, s.OfflineAfter)
		require.Equal(t, 10*time.Minute, s.ShrinkWindow)
		require.Equal(t, time.Minute, s.SaleLookback)
		require.Equal(t, int64(1), s.LowStockMargin)
		require.Equal(t, int64(500_000), s.MaxG)
	}
	pw, err := q.ShelfPassword()
	require.NoError(t, err)
	require.Empty(t, pw)
}

func TestShelfPasswordFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "shelf.pw")
	require.NoError(t, os.WriteFile(pw, []byte("lan-secret\n"), 0o600))
	body := minimal + "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://127.0.0.1:1883\n      topic: s/a\n      username: shelves\n      password_file: " + pw + "\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n"
	a, err := Load(writeConfig(t, body, 0o644), nil, nil)
	require.NoError(t, err)
	got, err := a.Devices.Shelves[0].ShelfPassword()
	require.NoError(t, err)
	require.Equal(t, "lan-secret", got)

	require.NoError(t, os.Chmod(pw, 0o640))
	_, err = Load(writeConfig(t, body, 0o644), nil, nil)
	require.Contains(t, problems(t, err)["devices.shelves[0].password_file"].Reason, "chmod 600")
}

func TestEnvOverride(t *testing.T) {
	env := []string{
		"EDGEPOS_TERMINAL_ID=T9",
		"EDGEPOS_SYNC_BROKER=ssl://hq.example.com:8883",
		"EDGEPOS_SYNC_WINDOW=8",
		"EDGEPOS_TAX_INCLUSIVE=false",
		"EDGEPOS_SYNC_RETENTION=14d",
		"EDGEPOS_LOG_FORMAT=text",
		"EDGEPOS_CONFIG=/elsewhere.yaml", // not a key: left alone
		"PATH=/usr/bin",
	}
	a, err := Load(examplePath, env, nil)
	require.NoError(t, err)
	require.Equal(t, "T9", a.TerminalID)
	require.Equal(t, "ssl://hq.example.com:8883", a.Sync.Broker)
	require.Equal(t, 8, a.Sync.Window)
	require.False(t, a.TaxInclusive)
	require.Equal(t, 14*24*time.Hour, a.Sync.Retention)
	require.Equal(t, "text", a.Log.Format)

	// Environment alone, no file.
	a, err = Load("", []string{"EDGEPOS_STORE_ID=S7", "EDGEPOS_TERMINAL_ID=T2", "EDGEPOS_SYNC_BROKER=tcp://10.0.0.1:1883"}, nil)
	require.NoError(t, err)
	require.Equal(t, "S7", a.StoreID)
	require.Equal(t, "S7", a.Sync.Username)

	// Overrides (flags) beat the environment.
	a, err = Load(examplePath, []string{"EDGEPOS_TERMINAL_ID=T9"}, map[string]string{"terminal_id": "T3"})
	require.NoError(t, err)
	require.Equal(t, "T3", a.TerminalID)
}

func TestEnvBadValue(t *testing.T) {
	_, err := Load(examplePath, []string{"EDGEPOS_SYNC_WINDOW=many"}, nil)
	require.Contains(t, problems(t, err), "sync.window")
}

func TestUnknownKey(t *testing.T) {
	_, err := Load(writeConfig(t, minimal+"stor_id: S002\nsync_broker: x\n", 0o644), nil, nil)
	ps := problems(t, err)
	require.Contains(t, ps, "stor_id")
	require.Contains(t, ps, "sync_broker")
	require.Contains(t, err.Error(), "stor_id: unknown key")

	_, err = Load(writeConfig(t, minimal+"http:\n  listn: 1.2.3.4:80\n", 0o644), nil, nil)
	require.Contains(t, problems(t, err), "http.listn")

	_, err = Load(writeConfig(t, minimal+"devices:\n  scanners:\n    - path: /dev/x\n      baudrate: 9600\n", 0o644), nil, nil)
	require.Contains(t, problems(t, err), "devices.scanners[0].baudrate")

	_, err = Load(writeConfig(t, minimal, 0o644), nil, map[string]string{"no_such": "1"})
	require.Contains(t, problems(t, err), "no_such")
}

func TestMissingStoreID(t *testing.T) {
	_, err := Load(writeConfig(t, "terminal_id: T1\nsync:\n  broker: tcp://h:1883\n", 0o644), nil, nil)
	ps := problems(t, err)
	require.Contains(t, ps, "store_id")
	require.Contains(t, ps["store_id"].Reason, "EDGEPOS_STORE_ID")
}

func TestBadValues(t *testing.T) {
	cases := []struct {
		name, yaml, field string
	}{
		{"bad timezone", "timezone: Asia/Shanghia\n", "timezone"},
		{"Local timezone", "timezone: Local\n", "timezone"},
		{"bad currency", "currency: RMB\n", "currency"},
		{"lower-case currency", "currency: cny\n", "currency"},
		{"bad locale", "locale: fr\n", "locale"},
		{"bad terminal id", "terminal_id: T 1\n", "terminal_id"},
		{"negative coupon cap", "coupon_offline_cap: -1\n", "coupon_offline_cap"},
		{"bad coupon key", "coupon_keys:\n  - key_id: k1\n    public_key: abc\n", "coupon_keys[0].public_key"},
		{"bad layout", "barcode:\n  layouts:\n    - prefixes: [\"2\"]\n      length: 13\n      plu_start: 2\n      plu_len: 5\n      weight_start: 5\n      weight_len: 5\n", "barcode.layouts[0]"},
		{"bad listen", "http:\n  listen: localhost\n", "http.listen"},
		{"bad session ttl", "http:\n  session_ttl: 0s\n", "http.session_ttl"},
		{"bad duration", "sync:\n  broker: tcp://h:1883\n  ack_timeout: soon\n", "sync.ack_timeout"},
		{"batch too large", "sync:\n  broker: tcp://h:1883\n  batch_events: 5000\n", "sync.batch_events"},
		{"bad topic prefix", "sync:\n  broker: tcp://h:1883\n  topic_prefix: edgepos/#\n", "sync.topic_prefix"},
		{"TLS over tcp", "sync:\n  broker: tcp://h:1883\n  tls:\n    insecure_skip_verify: true\n", "sync.tls"},
		{"cert without key", "sync:\n  broker: ssl://h:8883\n  tls:\n    cert_file: /nonexistent/c.pem\n", "sync.tls"},
		{"missing password file", "sync:\n  broker: ssl://h:8883\n  password_file: /nonexistent/pw\n", "sync.password_file"},
		{"scanner suffix", "devices:\n  scanners:\n    - path: /dev/x\n      suffix: etx\n", "devices.scanners[0].suffix"},
		{"scanner baud", "devices:\n  scanners:\n    - path: /dev/x\n      baud: 9601\n", "devices.scanners[0].baud"},
		{"printer width", "devices:\n  printer:\n    path: /dev/x\n    width: 76\n", "devices.printer.width"},
		{"printer transport", "devices:\n  printer:\n    transport: bluetooth\n", "devices.printer.transport"},
		{"printer code page", "devices:\n  printer:\n    path: /dev/x\n    encoding: ascii\n    code_page: 42\n", "devices.printer.code_page"},
		{"printer qr", "devices:\n  printer:\n    path: /dev/x\n    qr: pdf417\n", "devices.printer.qr"},
		{"printer status", "devices:\n  printer:\n    path: /dev/x\n    status: sometimes\n", "devices.printer.status"},
		{"printer confirm without status", "devices:\n  printer:\n    path: /dev/x\n    status: none\n    confirm_processed: true\n", "devices.printer.confirm_processed"},
		{"printer name", "devices:\n  printer:\n    name: my printer\n    path: /dev/x\n", "devices.printer.name"},
		{"printer name clash", "devices:\n  scanners:\n    - name: p0\n      path: /dev/s\n  printer:\n    name: p0\n    path: /dev/x\n", "devices.printer.name"},
		{"shelf unit weight", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      slots:\n        - slot: 0\n          sku: A\n", "devices.shelves[0].slots[0].unit_g"},
		{"shelf modbus key on mqtt", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      unit_id: 2\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].unit_id"},
		{"shelf mqtt key on modbus", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      topic: s/1\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].topic"},
		{"shelf registers overlap", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      slots:\n        - {slot: 0, sku: A, unit_g: 10, register: 4}\n        - {slot: 1, sku: B, unit_g: 10, register: 5}\n", "devices.shelves[0].slots[1].register"},
		{"shelf register range", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      slots:\n        - {slot: 0, sku: A, unit_g: 10, register: 65535}\n", "devices.shelves[0].slots[0].register"},
		{"shelf word order", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      word_order: middle\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].word_order"},
		{"shelf poll interval", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      poll_interval: 1ms\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].poll_interval"},
		{"shelf scale", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      scale_div: -1\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].scale_div"},
		{"shelf parity", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      parity: mark\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].parity"},
		{"shelf qos", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      qos: 3\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].qos"},
		{"shelf broker credentials", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://u:p@h:1883\n      topic: s/1\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].broker"},
		{"shelf password without user", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      password_file: /nonexistent/pw\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].username"},
		{"shelf offline after", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      offline_after: 10ms\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].offline_after"},
		{"shelf low stock margin", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      low_stock_margin: -2\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].low_stock_margin"},
		{"shelf stable readings", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      stable_readings: 99\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].stable_readings"},
		{"shelf tolerance", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      slots:\n        - {slot: 0, sku: A, unit_g: 10, tolerance_g: 5}\n", "devices.shelves[0].slots[0].tolerance_g"},
		{"shelf unknown key", "devices:\n  shelves:\n    - transport: mqtt\n      broker: tcp://h:1883\n      topic: s/1\n      tare: 5\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].tare"},
		{"modbus unit id", "devices:\n  shelves:\n    - transport: modbus\n      path: /dev/x\n      unit_id: 300\n      slots:\n        - {slot: 0, sku: A, unit_g: 10}\n", "devices.shelves[0].unit_id"},
		{"log level", "log:\n  level: loud\n", "log.level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.yaml
			if !strings.Contains(body, "store_id:") {
				body = "store_id: S001\n" + body
			}
			if !strings.Contains(body, "terminal_id:") {
				body = "terminal_id: T1\n" + body
			}
			if !strings.Contains(body, "sync:") {
				body += "sync:\n  broker: tcp://h:1883\n"
			}
			_, err := Load(writeConfig(t, body, 0o644), nil, nil)
			ps := problems(t, err)
			require.Contains(t, ps, c.field, "problems: %v", err)
		})
	}
}

func TestBadBrokerURL(t *testing.T) {
	for _, b := range []string{"", "127.0.0.1:1883", "ftp://h:21", "tcp://h", "tcp://:1883", "tcp://user:secret@h:1883", "tcp://h:port"} {
		t.Run(b, func(t *testing.T) {
			_, err := Load("", []string{"EDGEPOS_STORE_ID=S1", "EDGEPOS_TERMINAL_ID=T1", "EDGEPOS_SYNC_BROKER=" + b}, nil)
			ps := problems(t, err)
			require.Contains(t, ps, "sync.broker")
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	_, err := Load(writeConfig(t, "stor_id: S1\ncurrency: XYZ\ntimezone: Mars/Olympus\nlog:\n  format: xml\nsync:\n  window: many\n  brokr: x\n", 0o644), nil, nil)
	ps := problems(t, err)
	for _, f := range []string{"stor_id", "sync.brokr", "sync.window", "store_id", "terminal_id", "currency", "timezone", "sync.broker", "log.format"} {
		require.Contains(t, ps, f)
	}
	require.Equal(t, "Mars/Olympus", ps["timezone"].Value)
}

func TestWorldWritableFile(t *testing.T) {
	path := writeConfig(t, minimal, 0o666)
	_, err := Load(path, nil, nil)
	var me *FileModeError
	require.ErrorAs(t, err, &me)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), "writable by every user")
}

func TestPasswordFileMode(t *testing.T) {
	body := "store_id: S001\nterminal_id: T1\nsync:\n  broker: tcp://hq.example.com:1883\n  password: hunter2hunter2\n"
	path := writeConfig(t, body, 0o640)
	_, err := Load(path, nil, nil)
	var me *FileModeError
	require.ErrorAs(t, err, &me)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), "chmod 600")
	require.NotContains(t, err.Error(), "hunter2")

	require.NoError(t, os.Chmod(path, 0o600))
	a, err := Load(path, nil, nil)
	require.NoError(t, err)
	pw, err := a.SyncPassword()
	require.NoError(t, err)
	require.Equal(t, "hunter2hunter2", pw)
	require.Len(t, a.Warnings, 1)
	require.Contains(t, a.Warnings[0], "not TLS", "a password over plain tcp to a remote broker is warned about")
}

// TestPasswordFromEnvWithGroupReadableConfig is the packaged set-up: the
// config (root:edgepos 0640) has an empty sync.password and the secret comes
// from EDGEPOS_SYNC_PASSWORD in the unit's EnvironmentFile.
func TestPasswordFromEnvWithGroupReadableConfig(t *testing.T) {
	body := "store_id: S001\nterminal_id: T1\nsync:\n  broker: ssl://hq:8883\n  password: \"\"\n"
	path := writeConfig(t, body, 0o640)
	a, err := Load(path, []string{"EDGEPOS_SYNC_PASSWORD=from-env"}, nil)
	require.NoError(t, err)
	pw, err := a.SyncPassword()
	require.NoError(t, err)
	require.Equal(t, "from-env", pw)

	// The same file with the password written in it is refused.
	path = writeConfig(t, strings.Replace(body, `password: ""`, "password: in-file", 1), 0o640)
	_, err = Load(path, []string{"EDGEPOS_SYNC_PASSWORD=from-env"}, nil)
	var me *FileModeError
	require.ErrorAs(t, err, &me)
}

func TestPasswordFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "mqtt.pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	body := "store_id: S001\nterminal_id: T1\nsync:\n  broker: ssl://hq:8883\n  password_file: " + pw + "\n"
	a, err := Load(writeConfig(t, body, 0o644), nil, nil)
	require.NoError(t, err)
	got, err := a.SyncPassword()
	require.NoError(t, err)
	require.Equal(t, "s3cret", got)

	require.NoError(t, os.Chmod(pw, 0o644))
	_, err = Load(writeConfig(t, body, 0o644), nil, nil)
	ps := problems(t, err)
	require.Contains(t, ps["sync.password_file"].Reason, "chmod 600")
}

func TestNonLoopbackListenWarns(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+"http:\n  listen: 0.0.0.0:8080\n", 0o644), nil, nil)
	require.NoError(t, err)
	require.Len(t, a.Warnings, 1)
	require.Contains(t, a.Warnings[0], "not loopback")
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil, nil)
	require.Error(t, err)
	require.True(t, errors.Is(err, os.ErrNotExist))
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0s": 0} {
		got, err := parseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"d", "xd", "-1d", "7days", "soon"} {
		_, err := parseDuration(in)
		require.Error(t, err, in)
	}
}

func TestLayoutFromYAML(t *testing.T) {
	a, err := Load(writeConfig(t, minimal+`
barcode:
  layouts:
    - name: ean13-price-verified
      prefixes: ["2"]
      length: 13
      plu_start: 1
      plu_len: 5
      price_check_digit: true
      price_check_at: 6
      price_start: 7
      price_len: 5
      check_digit: true
`, 0o644), nil, nil)
	require.NoError(t, err)
	require.Equal(t, []barcode.Layout{{Name: "ean13-price-verified", Prefixes: []string{"2"}, Length: 13, PLUStart: 1, PLULen: 5,
		PriceCheckDigit: true, PriceCheckAt: 6, PriceStart: 7, PriceLen: 5, CheckDigit: true}}, a.Barcode.Layouts)
	_, err = barcode.NewParser(a.Barcode.Layouts)
	require.NoError(t, err)
}
