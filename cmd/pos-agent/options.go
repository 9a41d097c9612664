package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/edgepos/edgepos/agent"
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
// options.
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
	return agent.Options{
		Database:   cfg.Database,
		DB:         localdb.Options{Logger: log},
		Ledger:     lc,
		Link:       lo,
		HTTPListen: cfg.HTTP.Listen,
		SessionTTL: cfg.HTTP.SessionTTL,
		Locale:     cfg.Locale,
		Version:    version,
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
