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
	"github.com/edgepos/edgepos/agent/devset"
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

// ScanDevices returns the agent.DeviceSet that attaches one serial
// scanner at path to the agent, and names the wiring for the report. It
// is agent/devset's device set, the one pos-agent runs: the real serial
// driver (devices/scanner) on the pseudo-terminal, each scan forwarded by
// devset to the agent's UI hub as a "scan" event.
func ScanDevices(path string) (agent.DeviceSet, string, error) {
	ds, err := devset.New(devset.Options{
		Scanners: []devset.ScannerOptions{{Config: scanner.Config{Name: "scanner0", Port: serialport.Config{Path: path}}}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, "", err
	}
	return ds, "agent/devset: devices/scanner on the pty → agent.Hub → SSE", nil
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
	devs, wiring, err := ScanDevices(sim.Path())
	if err != nil {
		return r, err
	}
	r.Wiring = wiring
	a := agent.New(agent.Options{
		Database:   filepath.Join(dir, "pos.db"),
		Ledger:     agent.LedgerConfig{Store: "S001", Terminal: "T1", TaxInclusive: true, BcryptCost: bcrypt.MinCost},
		HTTPListen: "127.0.0.1:0",
		Devices:    devs,
		Logger:     slog.New(slog.DiscardHandler),
		APIHandler: agent.ServeAPI(agent.APIConfig{Locale: "en"}),
	})
	if err := a.Open(ctx); err != nil {
		return r, err
	}
	defer a.Close(context.WithoutCancel(ctx)) // ends the event stream too
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
