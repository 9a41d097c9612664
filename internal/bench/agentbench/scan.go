package agentbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/devices/scanner"
	"github.com/edgepos/edgepos/devices/scanner/scannersim"
	"github.com/edgepos/edgepos/devices/serialport"
	"github.com/edgepos/edgepos/internal/bench"
)

// ScanResult holds the scan-to-screen latencies of one run.
type ScanResult struct {
	Lat []time.Duration
	// Wiring says which device wiring carried the scans (see ScanDevices).
	Wiring string
}

// ScanDevices returns the agent.DeviceSet that attaches one serial scanner
// at path to the agent, and names the wiring for the report.
//
// Until agent/devset lands this is scannerBridge: the real serial driver
// (devices/scanner) on the pseudo-terminal, each scan published on the
// agent's UI hub as a "scan" event — the path devset takes. When devset
// lands, return devset's DeviceSet configured with the one scanner here,
// and nothing else in the scenario changes.
func ScanDevices(path string) (agent.DeviceSet, string) {
	return &scannerBridge{path: path}, "devices/scanner → agent.Hub (bridge in internal/bench/agentbench; agent/devset not yet merged)"
}

// scannerBridge is a minimal agent.DeviceSet: one serial scanner whose
// scans are published on the agent's hub.
type scannerBridge struct {
	path   string
	sc     *scanner.Scanner
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (b *scannerBridge) Start(ctx context.Context, a *agent.Agent) error {
	b.sc = scanner.New(scanner.Config{Name: "scanner0", Port: serialport.Config{Path: b.path}}, scanner.Options{Logger: a.Logger()})
	if err := b.sc.Open(ctx); err != nil {
		return err
	}
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-b.sc.Scans():
				a.Hub().Publish("scan", s)
			}
		}
	}()
	return nil
}

func (b *scannerBridge) States() []agent.DeviceState {
	if b.sc == nil {
		return nil
	}
	st := b.sc.Status()
	return []agent.DeviceState{{Name: st.Device, Kind: st.Kind, State: string(st.State), Reason: st.Reason, At: st.At}}
}

func (b *scannerBridge) Stop(ctx context.Context) error {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	if b.sc != nil {
		return b.sc.Close(ctx)
	}
	return nil
}

// ScanToScreen measures n scans from the moment a code is written to the
// scanner's pseudo-terminal to the moment the scan event arrives at a
// logged-in UI client over the agent's Server-Sent Events stream
// (GET /api/events), through a real agent (agent.Open, its HTTP server and
// agent.NewAPI).
func ScanToScreen(ctx context.Context, dir string, n int) (ScanResult, error) {
	var r ScanResult
	sim, err := scannersim.New(filepath.Join(dir, "scanner0"))
	if err != nil {
		return r, err
	}
	defer sim.Close()
	devs, wiring := ScanDevices(sim.Path())
	r.Wiring = wiring
	var api *agent.API
	a := agent.New(agent.Options{
		Database:   filepath.Join(dir, "pos.db"),
		Ledger:     agent.LedgerConfig{Store: "S001", Terminal: "T1", TaxInclusive: true, BcryptCost: bcrypt.MinCost},
		HTTPListen: "127.0.0.1:0",
		Devices:    devs,
		Logger:     slog.New(slog.DiscardHandler),
		APIHandler: func(a *agent.Agent) (http.Handler, error) {
			var err error
			api, err = agent.NewAPI(agent.APIConfig{Ledger: a.Ledger(), Hub: a.Hub(), Status: a, Locale: "en"})
			if err != nil {
				return nil, err
			}
			return api.Handler(), nil
		},
	})
	if err := a.Open(ctx); err != nil {
		return r, err
	}
	defer func() {
		if api != nil {
			api.Close() // ends the event stream, so Shutdown need not wait for it
		}
		a.Close(context.WithoutCancel(ctx))
	}()
	if err := agent.SeedDemoUsers(ctx, a.Ledger()); err != nil {
		return r, err
	}
	if err := bench.WaitUntil(ctx, 10*time.Second, "the scanner to open", func() bool {
		st := devs.States()
		return len(st) == 1 && (st[0].State == "idle" || st[0].State == "busy")
	}); err != nil {
		return r, err
	}

	base := "http://" + a.Addr()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"user": agent.DemoCashier, "pin": agent.DemoCashierPIN})
	res, err := hc.Post(base+"/api/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return r, fmt.Errorf("login: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return r, fmt.Errorf("login: %s", res.Status)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/api/events", nil)
	res, err = hc.Do(req)
	if err != nil {
		return r, fmt.Errorf("events: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return r, fmt.Errorf("events: %s", res.Status)
	}
	arrived := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(arrived)
		sc := bufio.NewScanner(res.Body)
		scanEvent := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: scan":
				scanEvent = true
			case scanEvent && strings.HasPrefix(line, "data: "):
				scanEvent = false
				var ev struct {
					Data struct {
						Code string `json:"code"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) == nil {
					arrived <- ev.Data.Code
				}
			case line == "":
				scanEvent = false
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()
	if err := bench.WaitUntil(ctx, 10*time.Second, "the UI client to subscribe", func() bool { return a.Hub().Subscribers() == 1 }); err != nil {
		return r, err
	}

	r.Lat = make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		code := ean13(fmt.Sprintf("690%09d", i+1))
		t0 := time.Now()
		if err := sim.Scan("", code); err != nil {
			return r, err
		}
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case got, ok := <-arrived:
				if !ok {
					return r, errors.New("scan to screen: event stream ended")
				}
				if got == code {
					r.Lat = append(r.Lat, time.Since(t0))
					break wait
				}
			case <-timeout:
				return r, fmt.Errorf("scan to screen: %s did not reach the UI in 5 s", code)
			case <-ctx.Done():
				return r, ctx.Err()
			}
		}
		// A cashier scans a few codes a second, not back to back.
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	return r, nil
}

// ean13 completes 12 digits with their GS1 check digit.
func ean13(d12 string) string {
	c, err := barcode.CheckDigit(d12)
	if err != nil {
		return d12 + "0"
	}
	return d12 + string(c)
}

// Figures turns a scan result into report figures.
func (r ScanResult) Figures() []bench.Figure {
	m := fmt.Sprintf("scanner pty → UI over SSE (%d scans)", len(r.Lat))
	return []bench.Figure{
		{Scenario: "scan", Metric: m + ", p50", Unit: "ms", Ours: bench.Ms(bench.Percentile(r.Lat, 50)), LowerIsBetter: true},
		{Scenario: "scan", Metric: m + ", p99", Unit: "ms", Ours: bench.Ms(bench.Percentile(r.Lat, 99)), Goal: "≤ 50 ms", LowerIsBetter: true},
	}
}
