package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/testenv"
	"github.com/edgepos/edgepos/sync/link"
	"github.com/edgepos/edgepos/sync/wire"
)

// mosquitto is a private Mosquitto process for one test, started with the
// project's own configs/mosquitto.acl and a password file, on free ports.
type mosquitto struct {
	url, tlsURL string
	caPEM       []byte
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startMosquitto runs mosquitto with users hq, S001, S002 (password "pw-"+user),
// the repository's ACL, a plain listener and a TLS listener whose server
// certificate is signed by a CA made for the test.
func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		testenv.Missing(t, "mosquitto binary not installed")
	}
	pwBin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		testenv.Missing(t, "mosquitto_passwd not installed")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	acl, err := os.ReadFile("../../configs/mosquitto.acl")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acl"), acl, 0o644))
	pw := filepath.Join(dir, "passwd")
	for i, u := range []string{"hq", "S001", "S002"} {
		args := []string{"-b", pw, u, "pw-" + u}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command(pwBin, args...).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	require.NoError(t, os.Chmod(pw, 0o644))
	caPEM, certPEM, keyPEM := testCerts(t)
	for name, b := range map[string][]byte{"ca.crt": caPEM, "server.crt": certPEM, "server.key": keyPEM} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	port, tport := freePort(t), freePort(t)
	conf := fmt.Sprintf(`# Tests may run as root: keep root rather than switch to a user that
# cannot read the test's temporary directory.
user root
per_listener_settings false
allow_anonymous false
password_file %[1]s/passwd
acl_file %[1]s/acl
persistence false
listener %[2]d 127.0.0.1
listener %[3]d 127.0.0.1
cafile %[1]s/ca.crt
certfile %[1]s/server.crt
keyfile %[1]s/server.key
`, dir, port, tport)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o644))
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "mosquitto.conf"))
	logb := &lockedLog{}
	cmd.Stderr, cmd.Stdout = logb, logb
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "mosquitto did not start: %s", logb)
	return &mosquitto{url: fmt.Sprintf("tcp://127.0.0.1:%d", port), tlsURL: fmt.Sprintf("ssl://127.0.0.1:%d", tport), caPEM: caPEM}
}

// lockedLog collects a child process's output; os/exec copies it from a
// goroutine of its own while the test may read it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testCerts makes a CA and a server certificate for 127.0.0.1.
func testCerts(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgepos test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// spoofReachesHQ has store S002 publish a batch on S001's events topic and
// reports whether an HQ-side subscriber saw it.
func spoofReachesHQ(t *testing.T, url string, hqUser, hqPass, spoofUser, spoofPass string) bool {
	t.Helper()
	topics := wire.NewTopics("")
	var got atomic.Int32
	hqc := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("hq-watch").SetUsername(hqUser).SetPassword(hqPass))
	tok := hqc.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer hqc.Disconnect(0)
	st := hqc.Subscribe(topics.UpFilter(), 1, func(_ paho.Client, m paho.Message) { got.Add(1) })
	require.True(t, st.WaitTimeout(5*time.Second))
	require.NoError(t, st.Error())

	spoof := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(spoofUser + "-T1").SetUsername(spoofUser).SetPassword(spoofPass))
	tok = spoof.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer spoof.Disconnect(0)
	// First its own topic (must arrive: proves the watcher works), then S001's.
	own := spoof.Publish(topics.Events(spoofUser, "T1"), 1, false, []byte(`{"v":1}`))
	own.WaitTimeout(5 * time.Second)
	require.Eventually(t, func() bool { return got.Load() == 1 }, 5*time.Second, 10*time.Millisecond, "a store's own upload reaches HQ")
	spoof.Publish(topics.Events("S001", "T1"), 1, false, []byte(`{"v":1}`)).WaitTimeout(5 * time.Second)
	// A marker after the spoof, on the spoofer's own topic, from a fresh
	// connection (a broker may disconnect a client whose publish it denied):
	// once the marker is in, the spoof had its chance to arrive first.
	marker := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(spoofUser + "-T2").SetUsername(spoofUser).SetPassword(spoofPass))
	tok = marker.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer marker.Disconnect(0)
	marker.Publish(topics.Events(spoofUser, "T2"), 1, false, []byte(`{"v":2}`)).WaitTimeout(5 * time.Second)
	require.Eventually(t, func() bool { return got.Load() >= 2 }, 5*time.Second, 10*time.Millisecond)
	return got.Load() > 2
}

func TestSecurityStoreCannotPublishAsAnotherEmbedded(t *testing.T) {
	b, err := embedbroker.Start(embedbroker.Options{Privileged: []string{"hq"}, Users: map[string]string{"hq": "h", "S001": "a", "S002": "b"}})
	require.NoError(t, err)
	defer b.Close()
	require.False(t, spoofReachesHQ(t, b.URL(), "hq", "h", "S002", "b"), "the broker ACL drops S002 publishing as S001")
}

func TestSecurityStoreCannotPublishAsAnotherMosquittoACL(t *testing.T) {
	m := startMosquitto(t)
	require.False(t, spoofReachesHQ(t, m.url, "hq", "pw-hq", "S002", "pw-S002"), "configs/mosquitto.acl drops S002 publishing as S001")
}

func TestSecurityWrongPasswordRefused(t *testing.T) {
	m := startMosquitto(t)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(m.url).SetClientID("S001-T1").SetUsername("S001").SetPassword("wrong"))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.Error(t, tok.Error())
}

// TestSecurityTLSWithTestCA syncs a terminal over TLS with the right CA and
// proves a terminal that trusts another CA never connects.
func TestSecurityTLSWithTestCA(t *testing.T) {
	m := startMosquitto(t)
	good := x509.NewCertPool()
	require.True(t, good.AppendCertsFromPEM(m.caPEM))
	otherCA, _, _ := testCerts(t)
	bad := x509.NewCertPool()
	require.True(t, bad.AppendCertsFromPEM(otherCA))

	e := &env{brokerURL: m.tlsURL, prefix: "edgepos/v1", hqDir: t.TempDir()}
	e.openStore = embeddedSQLite(t).openStore
	e.hqPass, e.hqTLS = "pw-hq", &tls.Config{RootCAs: good, MinVersion: tls.VersionTLS12}
	svc, _ := e.startHQ(t, "hq-tls")
	ok := e.startTerminal(t, "S001", "T1", "", func(o *link.Options) {
		o.Password, o.TLS = "pw-S001", &tls.Config{RootCAs: good, MinVersion: tls.VersionTLS12}
	})
	ok.sell(t, 20)
	requireExactlyOnce(t, svc.Store(), ok)

	wrong := e.startTerminal(t, "S002", "T1", "", func(o *link.Options) {
		o.Password, o.TLS = "pw-S002", &tls.Config{RootCAs: bad, MinVersion: tls.VersionTLS12}
	})
	wrong.sell(t, 5)
	require.Eventually(t, func() bool {
		st, _ := wrong.link.State(context.Background())
		return strings.Contains(st.LastError, "certificate")
	}, 10*time.Second, 20*time.Millisecond, "the TLS handshake fails on the unknown CA")
	st, err := wrong.link.State(context.Background())
	require.NoError(t, err)
	require.False(t, st.Connected)
	require.EqualValues(t, 5, st.Backlog, "nothing leaves a terminal that does not trust the broker")
}
