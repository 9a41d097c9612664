package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
	"github.com/edgepos/edgepos/devices/serialport/ptysim"
	"github.com/edgepos/edgepos/internal/config"
)

// TestRunBeforePrinterIsPluggedIn starts `pos-agent run` with its serial
// printer and scanner not plugged in: it starts, serves the POS API and
// UI, sells (the receipt waits in the queue, the drawer reports it did
// not open), and prints the receipt once the printer appears. A screen's
// open event stream does not hold up the shutdown.
func TestRunBeforePrinterIsPluggedIn(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.ReplaceAll(`store_id: S001
terminal_id: T1
data_dir: DIR
database: DIR/pos.db
currency: CNY
timezone: Asia/Shanghai
locale: en
http:
  listen: 127.0.0.1:0
sync:
  broker: tcp://127.0.0.1:1
devices:
  scanners:
    - name: scanner0
      path: DIR/scanner0
  printer:
    transport: serial
    path: DIR/printer0
    width: 80
    encoding: gbk
    drawer_on_cash: true
    store_name: Demo Mart
    footer: ["Thank you"]
log:
  format: text
  level: debug
`, "DIR", dir)), 0o600))
	args := []string{"--config", cfgPath}

	code, out, errOut := runCmd(t, append(args, "check-config")...)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "printer printer0 serial "+dir+"/printer0 (80 mm, gbk, qr native, status required, drawer true)")
	code, _, errOut = runCmd(t, append(args, "users", "add", "--id", "1001", "--name", "Li", "--pin", "1234")...)
	require.Equal(t, 0, code, errOut)
	csvPath := filepath.Join(dir, "catalog.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("sku,name,unit,tax_class,price,barcodes,plu,active\nTEA500,Oolong tea 500ml,each,VAT13:1300,450,6901234567892,,true\n"), 0o600))
	code, _, errOut = runCmd(t, append(args, "catalog", "import", csvPath)...)
	require.Equal(t, 0, code, errOut)

	r := startRun(t, append(args, "run"), io.Discard)
	addr := r.addr

	c := newAPIClient(t, "http://"+addr)
	page := c.raw("GET", "/", nil)
	assert.Contains(t, page, "<html", "the UI is served")
	c.login("1001", "1234")

	var st struct {
		Devices []struct{ Name, Kind, State, Reason string }
	}
	require.Eventually(t, func() bool {
		c.do("GET", "/api/status", nil, &st)
		n := 0
		for _, d := range st.Devices {
			if d.State == "error" && d.Reason == "not connected" {
				n++
			}
		}
		return n == 2
	}, 10*time.Second, 20*time.Millisecond, "both devices reported absent: %+v", st)

	// A screen listening for events.
	evReq, err := http.NewRequest("GET", "http://"+addr+"/api/events", nil)
	require.NoError(t, err)
	evRes, err := c.hc.Do(evReq)
	require.NoError(t, err)
	defer evRes.Body.Close()
	events := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(evRes.Body)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()

	var sale struct {
		Sale struct {
			ID, Receipt, State string
		}
		Drawer string
	}
	c.do("POST", "/api/sales", nil, &sale)
	id := sale.Sale.ID
	c.do("POST", "/api/sales/"+id+"/scan", map[string]string{"code": "6901234567892"}, nil)
	c.do("POST", "/api/sales/"+id+"/tenders", map[string]any{"kind": "cash", "amount": 1000}, nil)
	c.do("POST", "/api/sales/"+id+"/complete", nil, &sale, "Idempotency-Key", "k1")
	assert.Equal(t, "completed", sale.Sale.State, "the sale completes without a printer")
	assert.NotEmpty(t, sale.Drawer, "the cashier is told the drawer did not open")

	// Plug the printer in.
	dev, err := ptysim.New(filepath.Join(dir, "printer0"))
	require.NoError(t, err)
	vp := virtualprinter.New()
	served := make(chan struct{})
	go func() { defer close(served); _ = vp.Serve(context.Background(), dev) }()
	defer func() { dev.Close(); <-served }()

	require.Eventually(t, func() bool {
		var s struct {
			Sale struct {
				PrintState string `json:"print_state"`
			}
		}
		c.do("GET", "/api/sales/"+id, nil, &s)
		return s.Sale.PrintState == "printed"
	}, 20*time.Second, 20*time.Millisecond)
	jobs := vp.Jobs()
	require.Len(t, jobs, 1)
	text := jobs[0].Text(48)
	assert.Contains(t, text, "Receipt: "+sale.Sale.Receipt)
	assert.Contains(t, text, "Oolong tea 500ml")
	sawPrint := false
	for !sawPrint {
		select {
		case ln, ok := <-events:
			require.True(t, ok, "event stream ended early")
			sawPrint = ln == "event: print"
		case <-time.After(10 * time.Second):
			t.Fatal("no print event on the screen's stream")
		}
	}

	r.stop(t, 15*time.Second, "run did not stop: an event stream held the shutdown?")
}

func TestDeviceOptionsTranslation(t *testing.T) {
	cfg, err := config.Load(exampleConfig, nil, nil)
	require.NoError(t, err)
	do, err := deviceOptions(cfg, nil)
	require.NoError(t, err)
	require.Len(t, do.Scanners, 1)
	s := do.Scanners[0].Config
	assert.Equal(t, "scanner0", s.Name)
	assert.Equal(t, "/dev/edgepos/scanner0", s.Port.Path)
	assert.True(t, s.AIM)
	assert.Equal(t, 300*time.Millisecond, s.DedupWindow)
	require.NotNil(t, do.Printer)
	assert.Equal(t, "serial:///dev/edgepos/printer0", do.Printer.Transport.String())
	assert.Equal(t, 80, do.Printer.Layout.Width)
	assert.Equal(t, "zh", string(do.Printer.Layout.Language), "zh-CN locale on a GBK printer")
	assert.True(t, do.Printer.Drawer)

	cfg.Devices.Printer.Transport, cfg.Devices.Printer.Address = "tcp", "192.0.2.10:9100"
	cfg.Devices.Printer.Encoding = "ascii"
	do, err = deviceOptions(cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, "tcp://192.0.2.10:9100", do.Printer.Transport.String())
	assert.Equal(t, "en", string(do.Printer.Layout.Language), "an ascii printer cannot print Chinese labels")
	cfg.Devices.Printer.Transport, cfg.Devices.Printer.Path = "usb", "/dev/usb/lp0"
	do, err = deviceOptions(cfg, nil)
	require.NoError(t, err)
	assert.Equal(t, "usb:///dev/usb/lp0", do.Printer.Transport.String())
}

// apiClient is a browser-like client of the POS API.
type apiClient struct {
	tb   testing.TB
	base string
	hc   *http.Client
	csrf string
}

func newAPIClient(tb testing.TB, base string) *apiClient {
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &apiClient{tb: tb, base: base, hc: &http.Client{Jar: jar}}
}

func (c *apiClient) raw(method, path string, body any, hdr ...string) string {
	c.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.tb, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	require.NoError(c.tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	require.NoError(c.tb, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.tb, err)
	require.Equal(c.tb, http.StatusOK, res.StatusCode, "%s %s: %s", method, path, b)
	return string(b)
}

func (c *apiClient) do(method, path string, body, out any, hdr ...string) {
	c.tb.Helper()
	b := c.raw(method, path, body, hdr...)
	if out != nil {
		require.NoError(c.tb, json.Unmarshal([]byte(b), out), "%s", b)
	}
}

func (c *apiClient) login(user, pin string) {
	var info struct{ CSRF string }
	c.do("POST", "/api/login", map[string]string{"user": user, "pin": pin}, &info)
	c.csrf = info.CSRF
}
