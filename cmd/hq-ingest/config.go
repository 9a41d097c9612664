package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/viper"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/sync/wire"
)

// Config is configs/hq.yaml. Every key can also come from the environment
// as EDGEPOS_HQ_<KEY>, nested keys joined by '_' (EDGEPOS_HQ_API_LISTEN).
type Config struct {
	DataDir     string    `mapstructure:"data_dir"`
	Database    string    `mapstructure:"database"` // sqlite:///path or postgres://…
	Broker      string    `mapstructure:"broker"`   // tcp://host:1883 or ssl://host:8883
	Username    string    `mapstructure:"username"`
	Password    string    `mapstructure:"password"`
	ClientID    string    `mapstructure:"client_id"`
	SharedGroup string    `mapstructure:"shared_group"`
	TopicPrefix string    `mapstructure:"topic_prefix"`
	Workers     int       `mapstructure:"workers"`
	LogLevel    string    `mapstructure:"log_level"`
	TLS         TLSConfig `mapstructure:"tls"`
	API         APIConfig `mapstructure:"api"`
}

// TLSConfig names PEM files for the broker connection.
type TLSConfig struct {
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// APIConfig is the operator HTTP API.
type APIConfig struct {
	Listen    string   `mapstructure:"listen"`
	Tokens    []string `mapstructure:"tokens"`
	TokenFile string   `mapstructure:"token_file"`
}

func defaults(v *viper.Viper) {
	v.SetDefault("data_dir", "/var/lib/edgepos-hq")
	v.SetDefault("database", "")
	v.SetDefault("broker", "tcp://127.0.0.1:1883")
	v.SetDefault("username", "hq")
	v.SetDefault("password", "")
	v.SetDefault("client_id", "hq-ingest")
	v.SetDefault("shared_group", "")
	v.SetDefault("topic_prefix", wire.DefaultPrefix)
	v.SetDefault("workers", 4)
	v.SetDefault("log_level", "info")
	v.SetDefault("tls.ca", "")
	v.SetDefault("tls.cert", "")
	v.SetDefault("tls.key", "")
	v.SetDefault("api.listen", "127.0.0.1:8090")
	v.SetDefault("api.tokens", []string{})
	v.SetDefault("api.token_file", "")
}

// loadConfig reads path (optional) and the environment, refusing unknown
// keys, and validates the result without touching the network.
func loadConfig(path string) (*Config, error) {
	v := viper.NewWithOptions(viper.ExperimentalBindStruct())
	defaults(v)
	v.SetEnvPrefix("EDGEPOS_HQ")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: required"))
	}
	if c.Database == "" {
		c.Database = "sqlite://" + filepath.Join(c.DataDir, "hq.db")
	}
	if _, _, err := splitDatabase(c.Database); err != nil {
		errs = append(errs, err)
	}
	u, err := url.Parse(c.Broker)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
		errs = append(errs, fmt.Errorf("broker: %q is not tcp://host:port or ssl://host:port", c.Broker))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id: required (and stable: the broker queues for it)"))
	}
	if c.SharedGroup != "" && !wire.ValidID(c.SharedGroup) {
		errs = append(errs, fmt.Errorf("shared_group: %q is not a valid topic level", c.SharedGroup))
	}
	if c.Workers <= 0 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers: %d is not 1..256", c.Workers))
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, errors.New("tls: cert and key go together"))
	}
	if c.API.Listen != "" {
		if _, _, err := net.SplitHostPort(c.API.Listen); err != nil {
			errs = append(errs, fmt.Errorf("api.listen: %v", err))
		}
		if len(c.API.Tokens) == 0 && c.API.TokenFile == "" {
			errs = append(errs, errors.New("api: set api.tokens or api.token_file (the API refuses every request without a token)"))
		}
	}
	for _, t := range c.API.Tokens {
		if len(t) < 16 {
			errs = append(errs, errors.New("api.tokens: a token shorter than 16 characters"))
			break
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log_level: %q is not debug|info|warn|error", s)
	}
	return l, nil
}

// splitDatabase returns ("sqlite", path) or ("postgres", url).
func splitDatabase(db string) (kind, target string, err error) {
	switch {
	case strings.HasPrefix(db, "sqlite://"):
		p := strings.TrimPrefix(db, "sqlite://")
		if p == "" {
			return "", "", errors.New("database: sqlite:// needs a path (sqlite:///var/lib/edgepos-hq/hq.db)")
		}
		return "sqlite", p, nil
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", db, nil
	}
	return "", "", fmt.Errorf("database: %q is not sqlite:///path or postgres://…", db)
}

// tokens returns api.tokens plus the lines of api.token_file.
func (c *Config) tokens() ([]string, error) {
	out := append([]string(nil), c.API.Tokens...)
	if c.API.TokenFile == "" {
		return out, nil
	}
	f, err := os.Open(c.API.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("api.token_file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 16 {
			return nil, errors.New("api.token_file: a token shorter than 16 characters")
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("api.token_file: %w", err)
	}
	return out, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.TLS.CA == "" && c.TLS.Cert == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS.CA != "" {
		pem, err := os.ReadFile(c.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: no certificate in %s", c.TLS.CA)
		}
		t.RootCAs = pool
	}
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("tls cert/key: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// options translates the config into hq.Options (reading token and TLS
// files, not connecting anywhere).
func (c *Config) options(log *slog.Logger) (hq.Options, error) {
	tokens, err := c.tokens()
	if err != nil {
		return hq.Options{}, err
	}
	tlsc, err := c.tlsConfig()
	if err != nil {
		return hq.Options{}, err
	}
	kind, target, _ := splitDatabase(c.Database)
	open := func(ctx context.Context) (hq.Store, error) {
		if kind == "postgres" {
			return pgstore.Open(ctx, target, pgstore.Options{Logger: log})
		}
		return sqlitestore.Open(ctx, target, sqlitestore.Options{Logger: log})
	}
	return hq.Options{
		OpenStore: open, DataDir: c.DataDir,
		Broker: c.Broker, Username: c.Username, Password: c.Password, ClientID: c.ClientID,
		SharedGroup: c.SharedGroup, TopicPrefix: c.TopicPrefix, TLS: tlsc, Workers: c.Workers,
		APIListen: c.API.Listen, APITokens: tokens, Version: version, Logger: log,
	}, nil
}
