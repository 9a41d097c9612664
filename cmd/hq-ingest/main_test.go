package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeConfig(tb testing.TB, body string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "hq.yaml")
	require.NoError(tb, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestExampleConfigLoads(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("# operators\nabcdefghijklmnopqrstuvwxyz\n\n"), 0o600))
	t.Setenv("EDGEPOS_HQ_API_TOKEN_FILE", tokens)
	c, err := loadConfig("../../configs/hq.yaml")
	require.NoError(t, err)
	require.Equal(t, "hq-ingest", c.ClientID)
	require.Equal(t, "127.0.0.1:8090", c.API.Listen)
	toks, err := c.tokens()
	require.NoError(t, err)
	require.Equal(t, []string{"abcdefghijklmnopqrstuvwxyz"}, toks)
}

func TestEnvOverrides(t *testing.T) {
	p := writeConfig(t, "data_dir: /tmp/x\napi:\n  tokens: [0123456789abcdef]\n")
	t.Setenv("EDGEPOS_HQ_DATABASE", "postgres://hq:pw@db:5432/hq")
	t.Setenv("EDGEPOS_HQ_API_LISTEN", "127.0.0.1:9999")
	t.Setenv("EDGEPOS_HQ_SHARED_GROUP", "hq")
	c, err := loadConfig(p)
	require.NoError(t, err)
	require.Equal(t, "postgres://hq:pw@db:5432/hq", c.Database)
	require.Equal(t, "127.0.0.1:9999", c.API.Listen)
	require.Equal(t, "hq", c.SharedGroup)
}

func TestDefaultDatabaseIsSQLiteInDataDir(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "data_dir: /srv/hq\napi:\n  listen: \"\"\n"))
	require.NoError(t, err)
	require.Equal(t, "sqlite:///srv/hq/hq.db", c.Database)
}

func TestBadConfigRefused(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"unknown key":        {"data_dir: /x\nbrokr: tcp://x:1\n", "brokr"},
		"unknown nested key": {"data_dir: /x\napi:\n  tokens: [0123456789abcdef]\n  lisen: x\n", "lisen"},
		"bad database":       {"data_dir: /x\ndatabase: mysql://x\napi:\n  tokens: [0123456789abcdef]\n", "database"},
		"bad broker":         {"data_dir: /x\nbroker: http://x\napi:\n  tokens: [0123456789abcdef]\n", "broker"},
		"no api token":       {"data_dir: /x\n", "api"},
		"short token":        {"data_dir: /x\napi:\n  tokens: [short]\n", "shorter"},
		"bad shared group":   {"data_dir: /x\nshared_group: a/b\napi:\n  tokens: [0123456789abcdef]\n", "shared_group"},
		"cert without key":   {"data_dir: /x\ntls:\n  cert: /c\napi:\n  tokens: [0123456789abcdef]\n", "tls"},
		"bad log level":      {"data_dir: /x\nlog_level: loud\napi:\n  tokens: [0123456789abcdef]\n", "log_level"},
		"not YAML":           {"data_dir: [\n", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.body))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
}

func TestSubcommands(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &out, &errb))
	require.Contains(t, out.String(), "hq-ingest")

	out.Reset()
	p := writeConfig(t, "data_dir: /x\ndatabase: postgres://hq:topsecret@db/hq\napi:\n  tokens: [0123456789abcdef]\n")
	require.Equal(t, 0, run([]string{"-config", p, "check-config"}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "config ok")
	require.NotContains(t, out.String(), "topsecret", "passwords are not printed")

	errb.Reset()
	require.Equal(t, 1, run([]string{"-config", writeConfig(t, "bogus: 1\n"), "check-config"}, &out, &errb))
	require.Contains(t, errb.String(), "bogus")
	require.Equal(t, 2, run([]string{"frobnicate"}, &out, &errb))
	require.Equal(t, 2, run(nil, &out, &errb))
	require.True(t, strings.Contains(errb.String(), "usage"))
}

// TestScaleOutExampleConfigLoads checks configs/hq-postgres.yaml, the
// PostgreSQL and shared-subscription example, with the per-process values
// its comments say come from the environment.
func TestScaleOutExampleConfigLoads(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("abcdefghijklmnopqrstuvwxyz\n"), 0o600))
	ca := filepath.Join(dir, "ca.crt")
	require.NoError(t, os.WriteFile(ca, testCAPEM(t), 0o644))
	t.Setenv("EDGEPOS_HQ_API_TOKEN_FILE", tokens)
	t.Setenv("EDGEPOS_HQ_TLS_CA", ca)
	t.Setenv("EDGEPOS_HQ_CLIENT_ID", "hq-ingest-2")
	t.Setenv("EDGEPOS_HQ_PASSWORD", "from-the-unit")
	c, err := loadConfig("../../configs/hq-postgres.yaml")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(c.Database, "postgres://"))
	require.Equal(t, "hq", c.SharedGroup)
	require.Equal(t, "hq-ingest-2", c.ClientID)
	require.Equal(t, "from-the-unit", c.Password)
	require.Equal(t, "ssl://mqtt.internal:8883", c.Broker)
	opts, err := c.options(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NotNil(t, opts.TLS.RootCAs)
	require.Equal(t, "hq", opts.SharedGroup)

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"-config", "../../configs/hq-postgres.yaml", "check-config"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "postgres://")
	require.NotContains(t, out.String(), "from-the-unit")
}

// testCAPEM returns a self-signed CA certificate in PEM.
func testCAPEM(tb testing.TB) []byte {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgepos test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
