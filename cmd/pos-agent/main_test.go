package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/config"
	"github.com/edgepos/edgepos/localdb"
)

const exampleConfig = "../../configs/agent.yaml"

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs the command in-process and returns exit code, stdout, stderr.
func runCmd(tb testing.TB, args ...string) (int, string, string) {
	tb.Helper()
	var out, errb syncBuffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// dataArgs points the example config's database into a temp dir.
func dataArgs(tb testing.TB) (args []string, dbPath string) {
	tb.Helper()
	dir := tb.TempDir()
	dbPath = filepath.Join(dir, "pos.db")
	return []string{"--config", exampleConfig, "--set", "data_dir=" + dir, "--set", "database=" + dbPath}, dbPath
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "pos-agent dev")
	require.Contains(t, out, runtime.Version())
}

func TestUsage(t *testing.T) {
	code, _, errOut := runCmd(t)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "usage: pos-agent")

	code, _, errOut = runCmd(t, "frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "frobnicate"`)
}

func TestCheckConfigExample(t *testing.T) {
	code, out, errOut := runCmd(t, "--config", exampleConfig, "check-config")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ok")
	require.Contains(t, out, "store S001, terminal T1")
	require.Contains(t, out, "tcp://127.0.0.1:1883")

	// --config after the command works too.
	code, _, errOut = runCmd(t, "check-config", "--config", exampleConfig)
	require.Equal(t, 0, code, errOut)
}

func TestCheckConfigBad(t *testing.T) {
	body, err := os.ReadFile(exampleConfig)
	require.NoError(t, err)
	bad := strings.Replace(string(body), "timezone: Asia/Shanghai", "timezone: Asia/Shanghia", 1)
	bad = strings.Replace(bad, "store_id: S001", "store_idd: S001", 1)
	path := filepath.Join(t.TempDir(), "agent.yaml")
	require.NoError(t, os.WriteFile(path, []byte(bad), 0o600))

	code, out, errOut := runCmd(t, "--config", path, "check-config")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Contains(t, errOut, "timezone")
	require.Contains(t, errOut, "Asia/Shanghia")
	require.Contains(t, errOut, "store_idd: unknown key")
	require.Contains(t, errOut, path)

	code, _, errOut = runCmd(t, "--config", filepath.Join(t.TempDir(), "missing.yaml"), "check-config")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "missing.yaml")
}

func TestUsersCatalogBackup(t *testing.T) {
	args, dbPath := dataArgs(t)

	stdin = strings.NewReader("4711\n")
	t.Cleanup(func() { stdin = os.Stdin })
	code, out, errOut := runCmd(t, append(args, "users", "add", "--id", "u1", "--name", "Li Na", "--role", "manager", "--pin-stdin")...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "user u1 (manager) saved")

	code, _, errOut = runCmd(t, append(args, "users", "add", "--id", "u2", "--name", "Wang", "--pin", "12")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "PIN must be 4 to 12 digits")

	code, _, errOut = runCmd(t, append(args, "users", "add", "--id", "u2", "--name", "Wang")...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--pin-stdin")

	csvPath := filepath.Join(t.TempDir(), "catalog.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("sku,name,unit,tax_class,price,barcodes,plu,active\n"+
		"A1,Green tea,each,VAT13:1300,350,4006381333931,,true\n"+
		"B2,Apples,kg,VAT9:900,1290,,00123,true\n"), 0o600))
	code, out, errOut = runCmd(t, append(args, "catalog", "import", csvPath)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "imported 2 products")

	badCSV := filepath.Join(t.TempDir(), "bad.csv")
	require.NoError(t, os.WriteFile(badCSV, []byte("sku,name\nX,Y\n"), 0o600))
	code, _, errOut = runCmd(t, append(args, "catalog", "import", badCSV)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "header lacks")

	dest := filepath.Join(t.TempDir(), "backup.db")
	code, out, errOut = runCmd(t, append(args, "backup", dest)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, dest)

	// The copy opens on its own and holds what was written.
	ctx := context.Background()
	db, err := localdb.Open(ctx, dest, localdb.Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	var users, products int
	require.NoError(t, db.Read.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&users))
	require.NoError(t, db.Read.QueryRowContext(ctx, "SELECT count(*) FROM products").Scan(&products))
	require.Equal(t, 1, users)
	require.Equal(t, 2, products)

	live, err := localdb.Open(ctx, dbPath, localdb.Options{})
	require.NoError(t, err)
	defer live.Close(ctx)
	require.Equal(t, live.ID(), db.ID(), "a backup is the same database")
}

func TestBackupWithoutDatabase(t *testing.T) {
	args, dbPath := dataArgs(t)
	dest := filepath.Join(t.TempDir(), "backup.db")
	code, _, errOut := runCmd(t, append(args, "backup", dest)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, dbPath)
	require.NoFileExists(t, dbPath, "backup must not create an empty database")
	require.NoFileExists(t, dest)
}

func TestRunStopsOnSignal(t *testing.T) {
	args, dbPath := dataArgs(t)
	var out syncBuffer
	r := startRun(t, append(args, "--set", "log.format=text", "--set", "http.listen=127.0.0.1:0", "--set", "sync.broker=tcp://127.0.0.1:1", "run"), &out)
	require.FileExists(t, dbPath)
	r.stop(t, 10*time.Second, "run did not stop on SIGINT")
	errb := r.logs
	require.Contains(t, errb.String(), "msg=stopping")
	require.Contains(t, errb.String(), "msg=stopped")
	require.Contains(t, errb.String(), "store=S001")
}

// runningAgent is `pos-agent run` started in the background by startRun.
type runningAgent struct {
	logs *syncBuffer      // stderr: the text log
	addr string           // the HTTP address of the ready line
	sig  chan<- os.Signal // where run waits for SIGINT/SIGTERM
	done chan int         // run's exit status
}

// startRun runs the command args (ending in "run", text logs) in the
// background, and returns once it waits for signals and logged ready.
func startRun(t *testing.T, args []string, stdout io.Writer) *runningAgent {
	t.Helper()
	sigs := make(chan chan<- os.Signal, 1)
	orig := notifySignals
	notifySignals = func(c chan<- os.Signal) func() { sigs <- c; return func() {} }
	t.Cleanup(func() { notifySignals = orig })
	r := &runningAgent{logs: &syncBuffer{}, done: make(chan int, 1)}
	go func() { r.done <- run(args, stdout, r.logs) }()
	select {
	case r.sig = <-sigs:
	case code := <-r.done:
		t.Fatalf("run exited %d before waiting for signals: %s", code, r.logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("run never asked for signals")
	}
	re := regexp.MustCompile(`msg=ready .*http=(\S+)`)
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(r.logs.String())
		if m != nil {
			r.addr = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "log: %s", r.logs.String())
	return r
}

// stop sends SIGINT and requires run to exit 0 within d.
func (r *runningAgent) stop(t *testing.T, d time.Duration, what string) {
	t.Helper()
	r.sig <- os.Interrupt
	select {
	case code := <-r.done:
		require.Equal(t, 0, code, r.logs.String())
	case <-time.After(d):
		t.Fatal(what)
	}
}

func TestRunBadConfig(t *testing.T) {
	args, _ := dataArgs(t)
	code, _, errOut := runCmd(t, append(args, "--set", "currency=RMB", "run")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "currency")
}

func TestOptionsTranslation(t *testing.T) {
	cfg, err := config.Load(exampleConfig, nil, nil)
	require.NoError(t, err)
	lc, err := ledgerConfig(cfg, nil)
	require.NoError(t, err)
	require.Equal(t, "S001", lc.Store)
	require.Equal(t, "T1", lc.Terminal)
	require.Equal(t, "CNY", lc.Currency)
	require.Equal(t, 2, lc.MinorDigits)
	require.Equal(t, "Asia/Shanghai", lc.Location.String())
	require.Equal(t, int64(20000), lc.CouponOfflineCap)
	require.Len(t, lc.CouponKeys, 1)
	require.Len(t, lc.Layouts, 2)

	lo, err := linkOptions(cfg, nil)
	require.NoError(t, err)
	require.Equal(t, "tcp://127.0.0.1:1883", lo.Broker)
	require.Equal(t, "S001", lo.Username)
	require.Nil(t, lo.TLS)
	require.Equal(t, 500, lo.BatchEvents)
	require.Equal(t, 7*24*time.Hour, lo.Retention)

	cfg.Sync.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(cfg.Sync.TLS.CAFile, []byte("not a certificate"), 0o600))
	_, err = linkOptions(cfg, nil)
	require.ErrorContains(t, err, "no PEM certificate")
}
