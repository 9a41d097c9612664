package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/devset"
	"github.com/edgepos/edgepos/devices/printer"
	"github.com/edgepos/edgepos/devices/printer/escpos"
	"github.com/edgepos/edgepos/devices/scanner"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/devices/shelf"
	"github.com/edgepos/edgepos/internal/config"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/link"
)

// ledgerConfig translates the validated config into the ledger's plain
// options (config at the edge: package agent never sees YAML).
func ledgerConfig(cfg *config.Agent, log *slog.Logger) (agent.LedgerConfig, error) {
	keys, err := cfg.CouponKeyMap()
	if err != nil {
		return agent.LedgerConfig{}, err
	}
	return agent.LedgerConfig{
		Store:            cfg.StoreID,
		Terminal:         cfg.TerminalID,
		Currency:         cfg.Currency,
		MinorDigits:      cfg.MinorDigits,
		TaxInclusive:     cfg.TaxInclusive,
		Location:         cfg.Location,
		CouponOfflineCap: cfg.CouponOfflineCap,
		CouponKeys:       keys,
		Layouts:          cfg.Barcode.Layouts,
		Logger:           log,
	}, nil
}

// agentOptions translates the whole config into the agent runtime's plain
// options: ledger, sync link, devices, and the POS API and UI served on
// the HTTP listener (agent.ServeAPI; the agent ends the API's event
// streams when it shuts its HTTP server down).
func agentOptions(cfg *config.Agent, log *slog.Logger) (agent.Options, error) {
	lc, err := ledgerConfig(cfg, log)
	if err != nil {
		return agent.Options{}, err
	}
	lo := link.Options{}
	if cfg.Sync.Broker != "" {
		if lo, err = linkOptions(cfg, log); err != nil {
			return agent.Options{}, err
		}
	}
	do, err := deviceOptions(cfg, log)
	if err != nil {
		return agent.Options{}, err
	}
	ds, err := devset.New(do)
	if err != nil {
		return agent.Options{}, err
	}
	return agent.Options{
		Database:   cfg.Database,
		DB:         localdb.Options{Logger: log},
		Ledger:     lc,
		Link:       lo,
		HTTPListen: cfg.HTTP.Listen,
		SessionTTL: cfg.HTTP.SessionTTL,
		Locale:     cfg.Locale,
		Version:    version,
		Devices:    ds,
		APIHandler: agent.ServeAPI(agent.APIConfig{Hardware: ds, Logger: log}),
		Logger:     log,
	}, nil
}

// linkOptions translates the sync section into sync/link's options. It
// reads the password file and the TLS files (local files only, no network).
// The caller sets Apply, OnAck and the Notify wiring.
func linkOptions(cfg *config.Agent, log *slog.Logger) (link.Options, error) {
	pw, err := cfg.SyncPassword()
	if err != nil {
		return link.Options{}, err
	}
	tc, err := tlsConfig(cfg.Sync.TLS)
	if err != nil {
		return link.Options{}, err
	}
	s := cfg.Sync
	return link.Options{
		Store:        cfg.StoreID,
		Terminal:     cfg.TerminalID,
		Broker:       s.Broker,
		Username:     s.Username,
		Password:     pw,
		TLS:          tc,
		TopicPrefix:  s.TopicPrefix,
		AgentVersion: version,
		BatchEvents:  s.BatchEvents,
		BatchBytes:   s.BatchBytes,
		Window:       s.Window,
		AckTimeout:   s.AckTimeout,
		Retention:    s.Retention,
		Logger:       log,
	}, nil
}

// tlsConfig builds the broker TLS settings; nil when none are set (the
// ssl:// scheme then uses the system roots).
func tlsConfig(t config.TLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" && !t.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, warned about by config
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sync.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("sync.tls.ca_file: no PEM certificate in " + t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("sync.tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// deviceOptions translates the devices section into devset's plain
// options. It touches no device: a device that is not plugged in is the
// driver's business at run time, not a config error.
func deviceOptions(cfg *config.Agent, log *slog.Logger) (devset.Options, error) {
	d := cfg.Devices
	opts := devset.Options{Logger: log}
	for i, s := range d.Scanners {
		parity, err := serialport.ParseParity(s.Parity)
		if err != nil {
			return devset.Options{}, fmt.Errorf("devices.scanners[%d]: %w", i, err)
		}
		opts.Scanners = append(opts.Scanners, devset.ScannerOptions{Config: scanner.Config{
			Name:        s.Name,
			Port:        serialport.Config{Path: s.Path, Baud: s.Baud, DataBits: s.DataBits, Parity: parity, StopBits: s.StopBits},
			Suffix:      scanner.Suffix(s.Suffix),
			AIM:         s.AIM,
			DedupWindow: s.DedupeWindow,
		}})
	}
	lang := printer.LangEN
	if strings.HasPrefix(cfg.Locale, "zh") {
		lang = printer.LangZH
	}
	opts.Language = lang
	if p := d.Printer; p != nil {
		enc, err := escpos.ParseEncoding(p.Encoding)
		if err != nil {
			return devset.Options{}, fmt.Errorf("devices.printer.encoding: %w", err)
		}
		mode, err := printer.ParseStatusMode(p.Status)
		if err != nil {
			return devset.Options{}, fmt.Errorf("devices.printer.status: %w", err)
		}
		var tr printer.Transport
		switch p.Transport {
		case "tcp":
			tr = printer.NewTCP(p.Address)
		case "serial":
			tr = printer.NewSerial(serialport.Config{Path: p.Path, Baud: p.Baud})
		case "usb":
			tr = printer.NewUSB(p.Path)
		default:
			return devset.Options{}, fmt.Errorf("devices.printer.transport %q: want tcp, serial or usb", p.Transport)
		}
		layout := printer.Layout{Width: p.Width, Encoding: enc, CodePage: escpos.CodePage(p.CodePage), QR: printer.QRMode(p.QR), Language: printer.LangEN}
		if lang == printer.LangZH {
			if enc.Chinese() {
				layout.Language = printer.LangZH
			} else if log != nil {
				log.Warn("config: locale is zh-CN but the printer is ascii: receipts are printed with English labels")
			}
		}
		opts.Language = layout.Language
		opts.Printer = &devset.PrinterOptions{
			Config:    printer.Config{Name: p.Name, StatusMode: mode, ConfirmProcessed: p.ConfirmProcessed},
			Transport: tr,
			Layout:    layout,
			Drawer:    p.DrawerOnCash,
		}
		opts.StoreName, opts.Header, opts.Footer = p.StoreName, p.Header, p.Footer
	}
	if len(d.Shelves) > 0 {
		var so []devset.ShelfOptions
		for i, c := range d.Shelves {
			sc, err := shelfConfig(c)
			if err != nil {
				return devset.Options{}, fmt.Errorf("devices.shelves[%d]: %w", i, err)
			}
			so = append(so, devset.ShelfOptions{Config: sc})
		}
		shelves, err := devset.NewShelves(so, log)
		if err != nil {
			return devset.Options{}, err
		}
		opts.Attachments = append(opts.Attachments, shelves)
	}
	return opts, nil
}

// shelfConfig translates one devices.shelves entry (defaults filled and
// validated by internal/config) into the shelf driver's configuration. It
// reads the password file (a local file) and opens nothing.
func shelfConfig(c config.Shelf) (shelf.Config, error) {
	sc := shelf.Config{
		Name: c.Name, Transport: shelf.Transport(c.Transport),
		StableReadings: c.StableReadings, StableBandG: c.StableBandG,
		OfflineAfter: c.OfflineAfter, ShrinkWindow: c.ShrinkWindow, SaleLookback: c.SaleLookback,
		LowStockMargin: c.LowStockMargin, MaxG: c.MaxG,
	}
	for _, s := range c.Slots {
		sl := shelf.Slot{Slot: s.Slot, SKU: s.SKU, TareG: s.TareG, UnitG: s.UnitG, ToleranceG: s.ToleranceG, LowStock: s.LowStock}
		if s.Register != nil { // config fills slot × 2 for modbus shelves
			sl.Register = uint16(*s.Register)
		}
		sc.Slots = append(sc.Slots, sl)
	}
	switch c.Transport {
	case "mqtt":
		pw, err := c.ShelfPassword()
		if err != nil {
			return shelf.Config{}, err
		}
		sc.MQTT = shelf.MQTTConfig{Broker: c.Broker, Topic: c.Topic, Username: c.Username, Password: pw, ClientID: c.ClientID, QoS: byte(c.QoS)}
	case "modbus":
		par, err := serialport.ParseParity(c.Parity)
		if err != nil {
			return shelf.Config{}, err
		}
		sc.Modbus = shelf.ModbusConfig{
			Port:   serialport.Config{Path: c.Path, Baud: c.Baud, Parity: par},
			UnitID: byte(c.UnitID), WordOrder: shelf.WordOrder(c.WordOrder),
			PollInterval: c.PollInterval, ResponseTimeout: c.ResponseTimeout,
			ScaleMul: c.ScaleMul, ScaleDiv: c.ScaleDiv,
		}
	default:
		return shelf.Config{}, fmt.Errorf("transport %q: want mqtt or modbus", c.Transport)
	}
	return sc, nil
}
