package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/currency"

	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/sync/wire"
)

// ErrInvalid is wrapped by every *ConfigError.
var ErrInvalid = errors.New("invalid configuration")

// ValidationError is one problem with one setting.
type ValidationError struct {
	Field  string // dotted key, e.g. "sync.broker" or "devices.scanners[0].baud"
	Value  string // the offending value as given ("" when absent; secrets redacted)
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s: %q: %s", e.Field, e.Value, e.Reason)
	}
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// ConfigError lists every problem Load found in one config.
type ConfigError struct {
	File     string // "" when no file was read
	Problems []ValidationError
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "(environment)"
	}
	fmt.Fprintf(&b, "config %s: %d problem(s)", name, len(e.Problems))
	for i := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(e.Problems[i].Error())
	}
	return b.String()
}

// Unwrap returns each problem, so errors.As finds a *ValidationError and
// errors.Is finds ErrInvalid.
func (e *ConfigError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i := range e.Problems {
		out[i] = &e.Problems[i]
	}
	return out
}

// Has reports whether one of the problems is about field.
func (e *ConfigError) Has(field string) bool {
	for _, p := range e.Problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// FileModeError refuses a config file by its permissions.
type FileModeError struct {
	File   string
	Mode   fs.FileMode
	Reason string
}

func (e *FileModeError) Error() string {
	return fmt.Sprintf("config %s: mode %04o: %s", e.File, e.Mode.Perm(), e.Reason)
}

// checkFileMode refuses a file anyone may write: whoever can write the
// agent's config can point it at their own broker or database.
func checkFileMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("read config %s: is a directory", path)
	}
	if st.Mode().Perm()&0o002 != 0 {
		return &FileModeError{File: path, Mode: st.Mode(), Reason: "writable by every user; refused (chmod o-w " + path + ", or chmod 600 if it holds a password)"}
	}
	return nil
}

// checkSecretMode refuses a file holding a secret that group or others may
// read.
func checkSecretMode(path, key string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return &FileModeError{File: path, Mode: st.Mode(), Reason: fmt.Sprintf("holds %s but group or others have access to it; refused (chmod 600 %s)", key, path)}
	}
	return nil
}

// validate checks every field and returns every problem; it never touches
// the network. It also sets Location, MinorDigits (when unset) and Warnings.
func (a *Agent) validate(minorSet bool) []ValidationError {
	var p []ValidationError
	bad := func(field string, value any, format string, args ...any) {
		v := ""
		if value != nil {
			v = fmt.Sprint(value)
		}
		p = append(p, ValidationError{Field: field, Value: v, Reason: fmt.Sprintf(format, args...)})
	}
	warn := func(format string, args ...any) { a.Warnings = append(a.Warnings, fmt.Sprintf(format, args...)) }
	id := func(field, s string) {
		switch {
		case s == "":
			bad(field, nil, "required (set it in the file or %s)", EnvName(field))
		case !wire.ValidID(s):
			bad(field, s, "not a valid id (1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit)")
		}
	}
	id("store_id", a.StoreID)
	id("terminal_id", a.TerminalID)
	if a.DataDir == "" {
		bad("data_dir", nil, "required")
	}
	if a.Database == "" {
		bad("database", nil, "required")
	}

	if u, err := currency.ParseISO(a.Currency); err != nil || u.String() != a.Currency || a.Currency == "XXX" {
		bad("currency", a.Currency, "not an ISO 4217 currency code (upper case, e.g. CNY, EUR)")
	} else {
		iso, _ := currency.Standard.Rounding(u)
		switch {
		case !minorSet:
			a.MinorDigits = iso
		case a.MinorDigits != iso:
			bad("minor_digits", a.MinorDigits, "%s has %d minor digits in ISO 4217; amounts are in its minor units", a.Currency, iso)
		}
	}

	if a.Timezone == "" || a.Timezone == "Local" {
		bad("timezone", a.Timezone, "name the store's IANA time zone (e.g. Asia/Shanghai)")
	} else if loc, err := time.LoadLocation(a.Timezone); err != nil {
		bad("timezone", a.Timezone, "not an IANA time zone (e.g. Asia/Shanghai, Europe/Berlin)")
	} else {
		a.Location = loc
	}
	if a.Locale != "zh-CN" && a.Locale != "en" {
		bad("locale", a.Locale, "want zh-CN or en")
	}
	if a.CouponOfflineCap < 0 {
		bad("coupon_offline_cap", a.CouponOfflineCap, "must not be negative (0 means no cap)")
	}
	seenKey := map[string]bool{}
	for i, k := range a.CouponKeys {
		f := fmt.Sprintf("coupon_keys[%d]", i)
		if !wire.ValidID(k.KeyID) {
			bad(f+".key_id", k.KeyID, "required, a valid id")
		} else if seenKey[k.KeyID] {
			bad(f+".key_id", k.KeyID, "listed twice")
		}
		seenKey[k.KeyID] = true
		if _, err := decodeKey(k.PublicKey); err != nil {
			bad(f+".public_key", nil, "%v", err)
		}
	}
	for i, l := range a.Barcode.Layouts {
		if err := l.Validate(); err != nil {
			bad(fmt.Sprintf("barcode.layouts[%d]", i), l.Name, "%v", err)
		}
	}

	// HTTP
	if host, port, err := net.SplitHostPort(a.HTTP.Listen); err != nil {
		bad("http.listen", a.HTTP.Listen, "want host:port (127.0.0.1:8080)")
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("http.listen", a.HTTP.Listen, "port is not a number 0-65535")
	} else if !isLoopback(host) {
		warn("http.listen %s is not loopback: the cashier API is reachable from the network", a.HTTP.Listen)
	}
	if a.HTTP.SessionTTL <= 0 || a.HTTP.SessionTTL > 7*24*time.Hour {
		bad("http.session_ttl", a.HTTP.SessionTTL, "want more than 0 and at most 7d")
	}

	a.validateSync(bad, warn)
	a.validateDevices(bad)

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.Log.Level)); err != nil {
		bad("log.level", a.Log.Level, "want debug, info, warn or error")
	}
	if a.Log.Format != "json" && a.Log.Format != "text" {
		bad("log.format", a.Log.Format, "want json or text")
	}
	return p
}

type badFunc func(field string, value any, format string, args ...any)

func (a *Agent) validateSync(bad badFunc, warn func(string, ...any)) {
	s := &a.Sync
	var scheme string
	if s.Broker == "" {
		bad("sync.broker", nil, "required (tcp://host:1883 or ssl://host:8883; or %s)", EnvName("sync.broker"))
	} else if u, err := url.Parse(s.Broker); err != nil {
		bad("sync.broker", s.Broker, "not a URL (tcp://host:1883 or ssl://host:8883)")
	} else {
		scheme = u.Scheme
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			bad("sync.broker", s.Broker, "scheme %q: want tcp, ssl, mqtt, mqtts, ws or wss", u.Scheme)
		}
		if _, port, err := net.SplitHostPort(u.Host); err != nil || u.Hostname() == "" {
			bad("sync.broker", s.Broker, "want scheme://host:port")
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("sync.broker", s.Broker, "port is not a number")
		}
		if u.User != nil {
			bad("sync.broker", u.Redacted(), "put credentials in sync.username and sync.password_file, not in the URL")
		}
	}
	tlsScheme := scheme == "ssl" || scheme == "tls" || scheme == "mqtts" || scheme == "wss"
	if s.Username != "" && !wire.ValidID(s.Username) { // "" only when store_id is missing, reported already
		bad("sync.username", s.Username, "not a valid id (the broker's ACL matches it against the store id)")
	}
	if s.Password != "" && s.PasswordFile != "" {
		bad("sync.password", "(redacted)", "set sync.password or sync.password_file, not both")
	}
	if s.PasswordFile != "" {
		if st, err := os.Stat(s.PasswordFile); err != nil {
			bad("sync.password_file", s.PasswordFile, "cannot be read: %v", errors.Unwrap(err))
		} else if st.Mode().Perm()&0o077 != 0 {
			bad("sync.password_file", s.PasswordFile, "mode %04o gives group or others access to the password; chmod 600 %s", st.Mode().Perm(), s.PasswordFile)
		}
	}
	if (s.Password != "" || s.PasswordFile != "") && !tlsScheme && scheme != "" {
		if u, err := url.Parse(s.Broker); err == nil && !isLoopback(u.Hostname()) {
			warn("sync.broker %s is not TLS: the broker password crosses the network in clear", s.Broker)
		}
	}
	t := s.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("sync.tls", nil, "cert_file and key_file go together")
	}
	for _, f := range []struct{ key, path string }{{"sync.tls.ca_file", t.CAFile}, {"sync.tls.cert_file", t.CertFile}, {"sync.tls.key_file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.key, f.path, "cannot be read: %v", errors.Unwrap(err))
		}
	}
	if (t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify) && scheme != "" && !tlsScheme {
		bad("sync.tls", nil, "TLS settings need an ssl:// (or mqtts://, wss://) broker, not %s://", scheme)
	}
	if t.InsecureSkipVerify {
		warn("sync.tls.insecure_skip_verify is on: the broker's certificate is not checked")
	}
	if p := s.TopicPrefix; p == "" || strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "/") ||
		strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$") || strings.Contains(p, "//") {
		bad("sync.topic_prefix", p, "want levels without wildcards or empty levels (edgepos/v1)")
	}
	if s.BatchEvents < 1 || s.BatchEvents > wire.MaxBatchEvents {
		bad("sync.batch_events", s.BatchEvents, "want 1..%d", wire.MaxBatchEvents)
	}
	if s.BatchBytes < 4<<10 || s.BatchBytes > wire.MaxMessageBytes/2 {
		bad("sync.batch_bytes", s.BatchBytes, "want %d..%d (HQ refuses messages over %d bytes)", 4<<10, wire.MaxMessageBytes/2, wire.MaxMessageBytes)
	}
	if s.Window < 1 || s.Window > 64 {
		bad("sync.window", s.Window, "want 1..64 batches in flight")
	}
	if s.AckTimeout < time.Second || s.AckTimeout > 10*time.Minute {
		bad("sync.ack_timeout", s.AckTimeout, "want 1s..10m")
	}
	if s.Retention < time.Hour {
		bad("sync.retention", s.Retention, "want at least 1h (acked events kept for support)")
	}
}

func (a *Agent) validateDevices(bad badFunc) {
	names := map[string]bool{}
	name := func(field, n string) {
		if !wire.ValidID(n) {
			bad(field, n, "not a valid device name (A-Z a-z 0-9 _ . -)")
		} else if names[n] {
			bad(field, n, "another device has this name")
		}
		names[n] = true
	}
	for i, s := range a.Devices.Scanners {
		f := fmt.Sprintf("devices.scanners[%d]", i)
		name(f+".name", s.Name)
		if s.Path == "" {
			bad(f+".path", nil, "required (e.g. /dev/edgepos/scanner0)")
		}
		serialParams(bad, f, s.Baud, s.DataBits, s.Parity, s.StopBits)
		switch s.Suffix {
		case "cr", "lf", "crlf", "tab":
		default:
			bad(f+".suffix", s.Suffix, "want cr, lf, crlf or tab")
		}
		if s.DedupeWindow < 0 || s.DedupeWindow > 10*time.Second {
			bad(f+".dedupe_window", s.DedupeWindow, "want 0..10s")
		}
	}
	if p := a.Devices.Printer; p != nil {
		const f = "devices.printer"
		name(f+".name", p.Name)
		switch p.Transport {
		case "tcp":
			if _, port, err := net.SplitHostPort(p.Address); err != nil || port == "" {
				bad(f+".address", p.Address, "want host:port (ESC/POS over TCP is usually port 9100)")
			}
		case "serial":
			if p.Path == "" {
				bad(f+".path", nil, "required for a serial printer (e.g. /dev/edgepos/printer0)")
			}
			serialParams(bad, f, p.Baud, 8, "none", 1)
		case "usb":
			if p.Path == "" {
				bad(f+".path", nil, "required for a USB printer (e.g. /dev/usb/lp0)")
			}
		default:
			bad(f+".transport", p.Transport, "want tcp, serial or usb")
		}
		if p.Width != 58 && p.Width != 80 {
			bad(f+".width", p.Width, "want 58 or 80 (mm)")
		}
		switch p.Encoding {
		case "ascii", "gbk", "gb18030":
		default:
			bad(f+".encoding", p.Encoding, "want ascii, gbk or gb18030")
		}
		if p.CodePage < 0 || p.CodePage > 255 || !escpos.CodePage(p.CodePage).Known() {
			bad(f+".code_page", p.CodePage, "unknown code page (known: 0 PC437, 2 PC850, 16 WPC1252, 17 PC866, 19 PC858)")
		}
		switch p.QR {
		case "native", "raster", "none":
		default:
			bad(f+".qr", p.QR, "want native, raster or none")
		}
		switch p.Status {
		case "required":
		case "none":
			if p.ConfirmProcessed {
				bad(f+".confirm_processed", true, "needs a printer that answers (status: required)")
			}
			a.Warnings = append(a.Warnings, f+".status is none: receipts are not confirmed and paper out is not detected")
		default:
			bad(f+".status", p.Status, "want required or none")
		}
	}
	for i, s := range a.Devices.Shelves {
		f := fmt.Sprintf("devices.shelves[%d]", i)
		name(f+".name", s.Name)
		// A key of the other transport would silently not apply.
		only := func(transport string, set map[string]bool) {
			for k, isSet := range set {
				if isSet {
					bad(f+"."+k, nil, "only for a %s shelf", transport)
				}
			}
		}
		switch s.Transport {
		case "mqtt":
			if u, err := url.Parse(s.Broker); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
				bad(f+".broker", s.Broker, "want tcp://host:port or ssl://host:port")
			} else if u.User != nil {
				bad(f+".broker", u.Redacted(), "put credentials in username and password_file, not in the URL")
			}
			if s.Topic == "" || strings.ContainsAny(s.Topic, "+#") {
				bad(f+".topic", s.Topic, "required, without wildcards")
			}
			if s.PasswordFile != "" {
				if st, err := os.Stat(s.PasswordFile); err != nil {
					bad(f+".password_file", s.PasswordFile, "cannot be read: %v", errors.Unwrap(err))
				} else if st.Mode().Perm()&0o077 != 0 {
					bad(f+".password_file", s.PasswordFile, "mode %04o gives group or others access to the password; chmod 600 %s", st.Mode().Perm(), s.PasswordFile)
				}
				if s.Username == "" {
					bad(f+".username", nil, "required with password_file")
				}
			}
			if strings.ContainsAny(s.ClientID, "+#/ ") {
				bad(f+".client_id", s.ClientID, "must not contain wildcards, '/' or spaces")
			}
			if s.QoS < 0 || s.QoS > 2 {
				bad(f+".qos", s.QoS, "want 0, 1 or 2")
			}
			regs := false
			for _, sl := range s.Slots {
				regs = regs || sl.Register != nil
			}
			only("modbus", map[string]bool{"path": s.Path != "", "baud": s.Baud != 0, "unit_id": s.UnitID != 0, "word_order": s.WordOrder != "",
				"poll_interval": s.PollInterval != 0, "response_timeout": s.ResponseTimeout != 0, "scale_mul": s.ScaleMul != 0,
				"scale_div": s.ScaleDiv != 0, "parity": s.Parity != "", "slots[].register": regs})
		case "modbus":
			if s.Path == "" {
				bad(f+".path", nil, "required for a Modbus RTU shelf")
			}
			serialParams(bad, f, s.Baud, 8, s.Parity, 1)
			if s.UnitID < 1 || s.UnitID > 247 {
				bad(f+".unit_id", s.UnitID, "want 1..247 (Modbus RTU slave address)")
			}
			if s.WordOrder != "high_first" && s.WordOrder != "low_first" {
				bad(f+".word_order", s.WordOrder, "want high_first or low_first (order of the two 16-bit registers of a 32-bit weight)")
			}
			if s.PollInterval < 50*time.Millisecond || s.PollInterval > time.Minute {
				bad(f+".poll_interval", s.PollInterval, "want 50ms..1m")
			}
			if s.ResponseTimeout < 10*time.Millisecond || s.ResponseTimeout > 10*time.Second {
				bad(f+".response_timeout", s.ResponseTimeout, "want 10ms..10s")
			}
			if s.ScaleMul < 1 || s.ScaleMul > 1000 {
				bad(f+".scale_mul", s.ScaleMul, "want 1..1000")
			}
			if s.ScaleDiv < 1 || s.ScaleDiv > 1000 {
				bad(f+".scale_div", s.ScaleDiv, "want 1..1000")
			}
			only("mqtt", map[string]bool{"broker": s.Broker != "", "topic": s.Topic != "", "username": s.Username != "",
				"password_file": s.PasswordFile != "", "client_id": s.ClientID != "", "qos": s.QoS != 0})
		default:
			bad(f+".transport", s.Transport, "want mqtt or modbus")
		}
		if s.StableReadings < 1 || s.StableReadings > 50 {
			bad(f+".stable_readings", s.StableReadings, "want 1..50")
		}
		if s.StableBandG < 0 {
			bad(f+".stable_band_g", s.StableBandG, "must not be negative (0: each slot's tolerance)")
		}
		if s.OfflineAfter < time.Second || s.OfflineAfter > time.Hour {
			bad(f+".offline_after", s.OfflineAfter, "want 1s..1h (MQTT sensors must publish more often than this)")
		}
		if s.ShrinkWindow < time.Second || s.ShrinkWindow > 24*time.Hour {
			bad(f+".shrink_window", s.ShrinkWindow, "want 1s..24h")
		}
		if s.SaleLookback < 0 || s.SaleLookback > time.Hour {
			bad(f+".sale_lookback", s.SaleLookback, "want 0..1h")
		}
		if s.LowStockMargin < 1 {
			bad(f+".low_stock_margin", s.LowStockMargin, "want at least 1 (the hysteresis above low_stock)")
		}
		if s.MaxG < 1 {
			bad(f+".max_g", s.MaxG, "must be positive")
		}
		if len(s.Slots) == 0 {
			bad(f+".slots", nil, "a shelf needs at least one slot")
		}
		slots := map[int]bool{}
		regs := map[int]int{}
		for j, sl := range s.Slots {
			g := fmt.Sprintf("%s.slots[%d]", f, j)
			if sl.Slot < 0 || sl.Slot > 1023 {
				bad(g+".slot", sl.Slot, "want 0..1023")
			} else if slots[sl.Slot] {
				bad(g+".slot", sl.Slot, "listed twice on this shelf")
			}
			slots[sl.Slot] = true
			if sl.SKU == "" {
				bad(g+".sku", nil, "required")
			}
			if sl.UnitG <= 0 {
				bad(g+".unit_g", sl.UnitG, "the weight of one item in grams must be positive")
			}
			if sl.TareG < 0 {
				bad(g+".tare_g", sl.TareG, "must not be negative")
			}
			if sl.ToleranceG < 0 || (sl.UnitG > 0 && sl.ToleranceG*2 >= sl.UnitG) {
				bad(g+".tolerance_g", sl.ToleranceG, "want 0 up to less than half of unit_g, or counts become ambiguous")
			}
			if sl.LowStock < 0 {
				bad(g+".low_stock", sl.LowStock, "must not be negative")
			}
			if s.Transport == "modbus" && sl.Register != nil {
				r := *sl.Register
				if r < 0 || r > 65534 {
					bad(g+".register", r, "want 0..65534 (a weight takes this register and the next)")
					continue
				}
				for _, x := range []int{r, r + 1} {
					if o, dup := regs[x]; dup {
						bad(g+".register", r, "register %d is also slot %d's (a weight takes two registers)", x, o)
					}
					regs[x] = sl.Slot
				}
			}
		}
	}
}

func serialParams(bad badFunc, f string, baud, dataBits int, parity string, stopBits int) {
	switch baud {
	case 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200:
	default:
		bad(f+".baud", baud, "not a standard rate (1200..115200)")
	}
	if dataBits < 5 || dataBits > 8 {
		bad(f+".data_bits", dataBits, "want 5..8")
	}
	if parity != "none" && parity != "odd" && parity != "even" {
		bad(f+".parity", parity, "want none, odd or even")
	}
	if stopBits != 1 && stopBits != 2 {
		bad(f+".stop_bits", stopBits, "want 1 or 2")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
