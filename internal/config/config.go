// Package config loads the store agent's YAML configuration
// (/etc/edgepos/agent.yaml, see configs/agent.yaml) at the edge of the
// program: defaults first, then the file, then EDGEPOS_* environment
// variables, then explicit overrides (command-line flags), and validates the
// result without touching the network. The libraries never see YAML or
// viper: cmd/pos-agent translates an Agent into their plain option structs.
//
// Load refuses what would otherwise fail quietly later: unknown keys (a
// misspelt key is a setting that silently does not apply), a missing store
// or terminal id, a config file anyone may write, and a password in a file
// others may read. It reports every problem it finds, not just the first.
package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // a terminal image may ship without /usr/share/zoneinfo

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/sync/wire"
)

// DefaultPath is where the packaged agent looks for its config.
const DefaultPath = "/etc/edgepos/agent.yaml"

// EnvPrefix starts every environment variable Load reads: the key in upper
// case with dots as underscores (sync.broker → EDGEPOS_SYNC_BROKER).
const EnvPrefix = "EDGEPOS_"

// Agent is the whole agent configuration. Field tags name the YAML keys.
type Agent struct {
	// StoreID and TerminalID identify this terminal to HQ (wire.ValidID).
	StoreID    string `yaml:"store_id" mapstructure:"store_id"`
	TerminalID string `yaml:"terminal_id" mapstructure:"terminal_id"`
	// DataDir holds the database and anything else the agent keeps.
	DataDir string `yaml:"data_dir" mapstructure:"data_dir"`
	// Database is the SQLite file; default DataDir/pos.db.
	Database string `yaml:"database" mapstructure:"database"`
	// Currency is an ISO 4217 code; MinorDigits its minor-unit digits
	// (default: ISO 4217's, 2 for CNY).
	Currency    string `yaml:"currency" mapstructure:"currency"`
	MinorDigits int    `yaml:"minor_digits" mapstructure:"minor_digits"`
	// TaxInclusive says shelf prices include tax.
	TaxInclusive bool `yaml:"tax_inclusive" mapstructure:"tax_inclusive"`
	// Timezone is the store's IANA zone, for business day and receipts.
	Timezone string `yaml:"timezone" mapstructure:"timezone"`
	// Locale of the UI and receipts: zh-CN or en.
	Locale string `yaml:"locale" mapstructure:"locale"`
	// CouponOfflineCap is the value (minor units) of coupons redeemed while
	// HQ has not yet confirmed them before a manager must approve; 0: no cap.
	CouponOfflineCap int64 `yaml:"coupon_offline_cap" mapstructure:"coupon_offline_cap"`
	// CouponKeys are bootstrap HQ coupon-signing public keys; the change
	// feed brings later ones.
	CouponKeys []CouponKey `yaml:"coupon_keys" mapstructure:"coupon_keys"`
	Barcode    Barcode     `yaml:"barcode" mapstructure:"barcode"`
	HTTP       HTTP        `yaml:"http" mapstructure:"http"`
	Sync       Sync        `yaml:"sync" mapstructure:"sync"`
	Devices    Devices     `yaml:"devices" mapstructure:"devices"`
	Log        Log         `yaml:"log" mapstructure:"log"`

	// File is the config file read, "" if none.
	File string `yaml:"-" mapstructure:"-"`
	// Location is Timezone loaded.
	Location *time.Location `yaml:"-" mapstructure:"-"`
	// Warnings are settings that are allowed but probably wrong (an HTTP
	// listener off loopback, TLS verification off). The caller logs them.
	Warnings []string `yaml:"-" mapstructure:"-"`
}

// CouponKey is one HQ coupon-signing public key.
type CouponKey struct {
	KeyID     string `yaml:"key_id" mapstructure:"key_id"`
	PublicKey string `yaml:"public_key" mapstructure:"public_key"` // standard base64 of the 32-byte Ed25519 key
}

// Barcode configures scan parsing.
type Barcode struct {
	// Layouts of the store's scale codes; empty means barcode.DefaultLayouts().
	Layouts []barcode.Layout `yaml:"layouts" mapstructure:"layouts"`
}

// HTTP is the local API and UI.
type HTTP struct {
	Listen     string        `yaml:"listen" mapstructure:"listen"`
	SessionTTL time.Duration `yaml:"session_ttl" mapstructure:"session_ttl"`
}

// Sync is the MQTT link to HQ.
type Sync struct {
	Broker       string        `yaml:"broker" mapstructure:"broker"` // tcp://host:1883 or ssl://host:8883
	Username     string        `yaml:"username" mapstructure:"username"`
	Password     string        `yaml:"password" mapstructure:"password"`
	PasswordFile string        `yaml:"password_file" mapstructure:"password_file"`
	TLS          TLS           `yaml:"tls" mapstructure:"tls"`
	TopicPrefix  string        `yaml:"topic_prefix" mapstructure:"topic_prefix"`
	BatchEvents  int           `yaml:"batch_events" mapstructure:"batch_events"`
	BatchBytes   int           `yaml:"batch_bytes" mapstructure:"batch_bytes"`
	Window       int           `yaml:"window" mapstructure:"window"`
	AckTimeout   time.Duration `yaml:"ack_timeout" mapstructure:"ack_timeout"`
	Retention    time.Duration `yaml:"retention" mapstructure:"retention"`
}

// TLS names PEM files for the broker connection.
type TLS struct {
	CAFile             string `yaml:"ca_file" mapstructure:"ca_file"`
	CertFile           string `yaml:"cert_file" mapstructure:"cert_file"`
	KeyFile            string `yaml:"key_file" mapstructure:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" mapstructure:"insecure_skip_verify"`
}

// Devices are the terminal's peripherals.
type Devices struct {
	Scanners []Scanner `yaml:"scanners" mapstructure:"scanners"`
	Printer  *Printer  `yaml:"printer" mapstructure:"printer"` // nil: no receipt printer
	Shelves  []Shelf   `yaml:"shelves" mapstructure:"shelves"`
}

// Scanner is a serial barcode scanner.
type Scanner struct {
	Name     string `yaml:"name" mapstructure:"name"`
	Path     string `yaml:"path" mapstructure:"path"` // /dev/edgepos/scanner0
	Baud     int    `yaml:"baud" mapstructure:"baud"`
	DataBits int    `yaml:"data_bits" mapstructure:"data_bits"`
	Parity   string `yaml:"parity" mapstructure:"parity"` // none|odd|even
	StopBits int    `yaml:"stop_bits" mapstructure:"stop_bits"`
	Suffix   string `yaml:"suffix" mapstructure:"suffix"` // cr|lf|crlf|tab
	// AIM says the scanner sends AIM symbology identifiers (]E0…).
	AIM bool `yaml:"aim" mapstructure:"aim"`
	// DedupeWindow drops the same code read again within this time (a
	// presentation scanner re-reading the item still in front of it).
	DedupeWindow time.Duration `yaml:"dedupe_window" mapstructure:"dedupe_window"`
}

// Printer is an ESC/POS receipt printer.
type Printer struct {
	// Name identifies the printer in the status bar and device events
	// (default printer0).
	Name      string `yaml:"name" mapstructure:"name"`
	Transport string `yaml:"transport" mapstructure:"transport"` // tcp|serial|usb
	Address   string `yaml:"address" mapstructure:"address"`     // host:9100 for tcp
	Path      string `yaml:"path" mapstructure:"path"`           // serial or usb device
	Baud      int    `yaml:"baud" mapstructure:"baud"`
	Width     int    `yaml:"width" mapstructure:"width"`       // paper, mm: 58|80
	Encoding  string `yaml:"encoding" mapstructure:"encoding"` // ascii|gbk|gb18030
	// CodePage is the ESC t table of an ascii printer (0 PC437, 2 PC850,
	// 16 WPC1252, 17 PC866, 19 PC858).
	CodePage int `yaml:"code_page" mapstructure:"code_page"`
	// QR is how the receipt id's QR code is printed: native (GS ( k),
	// raster (an image, for printers without GS ( k) or none.
	QR string `yaml:"qr" mapstructure:"qr"`
	// Status is required (DLE EOT before and after every job) or none (a
	// printer that sends nothing back: jobs are not confirmed).
	Status string `yaml:"status" mapstructure:"status"`
	// ConfirmProcessed waits for the answer to GS r 1 after each job
	// (printers that implement GS r only).
	ConfirmProcessed bool `yaml:"confirm_processed" mapstructure:"confirm_processed"`
	// DrawerOnCash says a cash drawer is wired to the printer: it opens on
	// cash tenders and the manager's no-sale.
	DrawerOnCash bool `yaml:"drawer_on_cash" mapstructure:"drawer_on_cash"`
	// StoreName, Header and Footer are printed on every receipt.
	StoreName string   `yaml:"store_name" mapstructure:"store_name"`
	Header    []string `yaml:"header" mapstructure:"header"`
	Footer    []string `yaml:"footer" mapstructure:"footer"`
}

// Shelf is a weighing shelf with one load cell per slot (devices/shelf).
type Shelf struct {
	Name      string `yaml:"name" mapstructure:"name"`
	Transport string `yaml:"transport" mapstructure:"transport"` // mqtt|modbus

	// MQTT: sensors publish JSON readings to a store-LAN broker.
	Broker       string `yaml:"broker" mapstructure:"broker"`
	Topic        string `yaml:"topic" mapstructure:"topic"`
	Username     string `yaml:"username" mapstructure:"username"`
	PasswordFile string `yaml:"password_file" mapstructure:"password_file"` // first line is the password
	ClientID     string `yaml:"client_id" mapstructure:"client_id"`         // default edgepos-shelf-<name>-<random>
	QoS          int    `yaml:"qos" mapstructure:"qos"`                     // 0|1|2, default 0

	// Modbus RTU: a weighing indicator on RS-485, polled.
	Path            string        `yaml:"path" mapstructure:"path"`
	Baud            int           `yaml:"baud" mapstructure:"baud"`
	Parity          string        `yaml:"parity" mapstructure:"parity"` // none|even|odd, default none
	UnitID          int           `yaml:"unit_id" mapstructure:"unit_id"`
	WordOrder       string        `yaml:"word_order" mapstructure:"word_order"`
	PollInterval    time.Duration `yaml:"poll_interval" mapstructure:"poll_interval"`
	ResponseTimeout time.Duration `yaml:"response_timeout" mapstructure:"response_timeout"`
	// ScaleMul and ScaleDiv turn the indicator's raw value into grams:
	// grams = raw × scale_mul ÷ scale_div (0.1 g units: div 10; 0.01 kg: mul 10).
	ScaleMul int64 `yaml:"scale_mul" mapstructure:"scale_mul"`
	ScaleDiv int64 `yaml:"scale_div" mapstructure:"scale_div"`

	// Counting (both transports).
	StableReadings int           `yaml:"stable_readings" mapstructure:"stable_readings"`
	StableBandG    int64         `yaml:"stable_band_g" mapstructure:"stable_band_g"` // 0: each slot's max(tolerance_g, 2)
	OfflineAfter   time.Duration `yaml:"offline_after" mapstructure:"offline_after"`
	ShrinkWindow   time.Duration `yaml:"shrink_window" mapstructure:"shrink_window"`
	SaleLookback   time.Duration `yaml:"sale_lookback" mapstructure:"sale_lookback"`
	LowStockMargin int64         `yaml:"low_stock_margin" mapstructure:"low_stock_margin"`
	MaxG           int64         `yaml:"max_g" mapstructure:"max_g"`

	Slots []Slot `yaml:"slots" mapstructure:"slots"`
}

// Slot is one load cell holding one SKU. Weights are grams.
type Slot struct {
	Slot       int    `yaml:"slot" mapstructure:"slot"`
	SKU        string `yaml:"sku" mapstructure:"sku"`
	TareG      int64  `yaml:"tare_g" mapstructure:"tare_g"`
	UnitG      int64  `yaml:"unit_g" mapstructure:"unit_g"`
	ToleranceG int64  `yaml:"tolerance_g" mapstructure:"tolerance_g"`
	LowStock   int64  `yaml:"low_stock" mapstructure:"low_stock"`
	// Register is the first of the two holding registers (0-based PDU
	// address, 40001 = 0) of the slot's 32-bit gross weight (Modbus);
	// default slot × 2.
	Register *int `yaml:"register" mapstructure:"register"`
}

// ShelfPassword returns the first line of the shelf's password_file, or
// "" when it has none.
func (s *Shelf) ShelfPassword() (string, error) {
	if s.PasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("devices.shelves %s password_file: %w", s.Name, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level" mapstructure:"level"`   // debug|info|warn|error
	Format string `yaml:"format" mapstructure:"format"` // json|text
}

// Defaults of the keys that have one. Device entries get theirs in fill.
var defaults = map[string]any{
	"data_dir":           "/var/lib/edgepos",
	"currency":           "CNY",
	"tax_inclusive":      true,
	"timezone":           "Asia/Shanghai",
	"locale":             "zh-CN",
	"coupon_offline_cap": 0,
	"http.listen":        "127.0.0.1:8080",
	"http.session_ttl":   "12h",
	"sync.topic_prefix":  wire.DefaultPrefix,
	"sync.batch_events":  500,
	"sync.batch_bytes":   256 << 10,
	"sync.window":        4,
	"sync.ack_timeout":   "10s",
	"sync.retention":     "7d",
	"log.level":          "info",
	"log.format":         "json",
}

// Load reads the config file at path ("" for none), then the EDGEPOS_*
// variables in env (os.Environ() form, "KEY=value"), then overrides (key →
// value, for command-line flags), and validates the result. Errors are a
// *ConfigError listing every problem, or an I/O error reading the file.
func Load(path string, env []string, overrides map[string]string) (*Agent, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	keys := Keys()
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k] = true
	}
	var problems []ValidationError
	if path != "" {
		if err := checkFileMode(path); err != nil {
			return nil, err
		}
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	// Only a password written in the file itself makes the file secret; one
	// from EDGEPOS_SYNC_PASSWORD (the unit's EnvironmentFile) or a flag does
	// not, even when the file has the key with an empty value.
	fileHasPassword := path != "" && v.InConfig("sync.password") && v.GetString("sync.password") != ""
	// Environment and overrides go through Set so that they reach
	// Unmarshal (viper's AutomaticEnv alone does not) and so that env is
	// whatever the caller passes, not this process's (tests stay hermetic).
	byEnv := make(map[string]string, len(keys))
	for _, k := range keys {
		byEnv[EnvName(k)] = k
	}
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		// Other EDGEPOS_* variables (EDGEPOS_CONFIG, EDGEPOS_HQ_*) are not
		// config keys of the agent; they are left alone, not refused.
		if k, ok := byEnv[name]; ok {
			v.Set(k, val)
		}
	}
	for k, val := range overrides {
		k = strings.ToLower(k)
		if !known[k] {
			problems = append(problems, ValidationError{Field: k, Value: val, Reason: "unknown key"})
			continue
		}
		v.Set(k, val)
	}

	var a Agent
	err := v.UnmarshalExact(&a, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		durationHook, mapstructure.StringToSliceHookFunc(","))))
	if err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	a.File = path
	if fileHasPassword {
		if err := checkSecretMode(path, "sync.password"); err != nil {
			return nil, err
		}
	}
	a.fill()
	// A value that did not decode is left zero: report it once, as the
	// decode problem, not again as "out of range".
	decoded := make(map[string]bool, len(problems))
	for _, p := range problems {
		decoded[p.Field] = true
	}
	for _, p := range a.validate(v.IsSet("minor_digits")) {
		if !decoded[p.Field] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{File: path, Problems: problems}
	}
	return &a, nil
}

// fill sets the defaults that depend on other keys or on list entries.
func (a *Agent) fill() {
	if a.Database == "" && a.DataDir != "" {
		a.Database = strings.TrimRight(a.DataDir, "/") + "/pos.db"
	}
	if a.Sync.Username == "" {
		a.Sync.Username = a.StoreID
	}
	for i := range a.Devices.Scanners {
		s := &a.Devices.Scanners[i]
		if s.Name == "" {
			s.Name = "scanner" + strconv.Itoa(i)
		}
		setInt(&s.Baud, 9600) // DEVICE-PROTOCOLS §2: 9600 8N1 is the common default
		setInt(&s.DataBits, 8)
		setInt(&s.StopBits, 1)
		setStr(&s.Parity, "none")
		setStr(&s.Suffix, "cr")
	}
	if p := a.Devices.Printer; p != nil {
		setStr(&p.Name, "printer0")
		setStr(&p.Transport, "serial")
		setInt(&p.Width, 80)
		setStr(&p.Encoding, "gbk")
		setStr(&p.QR, "native")
		setStr(&p.Status, "required")
		if p.Transport == "serial" {
			setInt(&p.Baud, 9600)
		}
	}
	for i := range a.Devices.Shelves {
		s := &a.Devices.Shelves[i]
		if s.Name == "" {
			s.Name = "shelf" + strconv.Itoa(i)
		}
		if s.Transport == "modbus" {
			setInt(&s.Baud, 9600)
			setStr(&s.Parity, "none")
			setInt(&s.UnitID, 1)
			setStr(&s.WordOrder, "high_first")
			setDur(&s.PollInterval, time.Second)
			setDur(&s.ResponseTimeout, 500*time.Millisecond)
			setInt64(&s.ScaleMul, 1)
			setInt64(&s.ScaleDiv, 1)
			for j := range s.Slots {
				if s.Slots[j].Register == nil {
					r := s.Slots[j].Slot * 2 // slots packed two registers apart
					s.Slots[j].Register = &r
				}
			}
		}
		// The defaults of devices/shelf.Config, spelt out so check-config
		// shows what applies. DEVICE-PROTOCOLS.md §3 [46]: 3 stable readings.
		setInt(&s.StableReadings, 3)
		setDur(&s.OfflineAfter, 30*time.Second)
		setDur(&s.ShrinkWindow, 10*time.Minute)
		setDur(&s.SaleLookback, time.Minute)
		setInt64(&s.LowStockMargin, 1)
		setInt64(&s.MaxG, 500_000)
	}
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setInt64(p *int64, d int64) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

func setStr(p *string, d string) {
	if *p == "" {
		*p = d
	}
}

// CouponKeyMap returns the bootstrap coupon keys by key id.
func (a *Agent) CouponKeyMap() (map[string]ed25519.PublicKey, error) {
	m := make(map[string]ed25519.PublicKey, len(a.CouponKeys))
	for i, k := range a.CouponKeys {
		pub, err := decodeKey(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("coupon_keys[%d]: %w", i, err)
		}
		m[k.KeyID] = pub
	}
	return m, nil
}

func decodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("public_key is not standard base64")
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public_key is %d bytes, an Ed25519 key is %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// SyncPassword returns sync.password, or the first line of
// sync.password_file.
func (a *Agent) SyncPassword() (string, error) {
	if a.Sync.PasswordFile == "" {
		return a.Sync.Password, nil
	}
	b, err := os.ReadFile(a.Sync.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("sync.password_file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// Keys lists every scalar config key ("sync.broker"), sorted. Lists
// (coupon_keys, devices.scanners, …) come only from the file.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]():
				walk(ft, prefix+tag+".")
			case ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer:
				// lists and optional sections: file only
			default:
				out = append(out, prefix+tag)
			}
		}
	}
	walk(reflect.TypeFor[Agent](), "")
	sort.Strings(out)
	return out
}

// EnvName is the environment variable for key: sync.tls.ca_file →
// EDGEPOS_SYNC_TLS_CA_FILE.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// durationHook accepts Go durations plus a day suffix ("7d", "1d12h"),
// since retention is naturally said in days.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		return parseDuration(d)
	case int:
		return time.Duration(d), nil // already a Duration (a default or a Set)
	}
	return data, nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: bad day count", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 10s, 12h or 7d", s)
	}
	return days + d, nil
}

// decodeProblems turns mapstructure's errors into one ValidationError per
// unknown key or undecodable value.
func decodeProblems(err error) []ValidationError {
	var out []ValidationError
	var walk func(err error)
	walk = func(err error) {
		var de *mapstructure.DecodeError
		if errors.As(err, &de) && de == err {
			inner := de.Unwrap()
			if _, ok := inner.(interface{ Unwrap() []error }); ok {
				walk(inner)
				return
			}
			if _, ok := inner.(*mapstructure.DecodeError); ok {
				walk(inner)
				return
			}
			msg := inner.Error()
			if rest, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for _, k := range strings.Split(rest, ", ") {
					field := k
					if de.Name() != "" {
						field = de.Name() + "." + k
					}
					out = append(out, ValidationError{Field: field, Reason: "unknown key (misspelt, or not a setting of this version)"})
				}
				return
			}
			out = append(out, ValidationError{Field: de.Name(), Reason: msg})
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		default:
			out = append(out, ValidationError{Reason: err.Error()})
		}
	}
	walk(err)
	return out
}
