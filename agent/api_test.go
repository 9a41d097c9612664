package agent

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// fakeHW records what the API asked of the devices.
type fakeHW struct {
	mu       sync.Mutex
	kicks    int
	wakes    int
	kickErr  error
	rendered []string
	l        *Ledger
}

func (h *fakeHW) KickDrawer(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kicks++
	return h.kickErr
}

func (h *fakeHW) PrintNow() {
	h.mu.Lock()
	h.wakes++
	h.mu.Unlock()
}

func (h *fakeHW) ReceiptText(ctx context.Context, saleID string) (string, error) {
	s, err := h.l.GetSale(ctx, saleID)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	h.rendered = append(h.rendered, saleID)
	h.mu.Unlock()
	return "RECEIPT " + s.Receipt, nil
}

// JobText previews a slip as "RETURN SLIP T1-R00001" (the real layout is
// agent/devset's, tested there).
func (h *fakeHW) JobText(ctx context.Context, j PrintJob) (string, error) {
	if _, err := h.l.PrintJob(ctx, j.ID); err != nil {
		return "", err
	}
	return strings.ToUpper(j.Kind) + " SLIP " + j.Receipt, nil
}

func (h *fakeHW) counts() (kicks, wakes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.kicks, h.wakes
}

// fakeStatus is a StatusSource the test flips; the backlog is the real
// outbox's.
type fakeStatus struct {
	mu      sync.Mutex
	online  bool
	devices []DeviceState
	alerts  []Alert
	l       *Ledger
}

func (s *fakeStatus) set(online bool) {
	s.mu.Lock()
	s.online = online
	s.mu.Unlock()
}

func (s *fakeStatus) setDevices(d ...DeviceState) {
	s.mu.Lock()
	s.devices = d
	s.mu.Unlock()
}

func (s *fakeStatus) Status(ctx context.Context) SystemStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	lc := s.l.Config()
	st := SystemStatus{Store: lc.Store, Terminal: lc.Terminal, Version: "test", Devices: append([]DeviceState{}, s.devices...), Alerts: append([]Alert{}, s.alerts...)}
	st.Sync.Online = s.online
	if os, err := s.l.DB().OutboxState(ctx); err == nil {
		st.Sync.Backlog, st.Sync.OldestUnacked = os.Backlog, os.OldestUnacked
	}
	return st
}

type apiFixture struct {
	*fixture
	api  *API
	srv  *httptest.Server
	hub  *Hub
	hw   *fakeHW
	stat *fakeStatus

	clockMu sync.Mutex
	clock   time.Time
}

func (f *apiFixture) advance(d time.Duration) {
	f.clockMu.Lock()
	f.clock = f.clock.Add(d)
	f.clockMu.Unlock()
}

func newAPIFixture(tb testing.TB, mods ...func(*APIConfig)) *apiFixture {
	tb.Helper()
	return newAPIFixtureWith(tb, nil, mods...)
}

func newAPIFixtureWith(tb testing.TB, ledgerMod func(*LedgerConfig), mods ...func(*APIConfig)) *apiFixture {
	tb.Helper()
	var lm []func(*LedgerConfig)
	if ledgerMod != nil {
		lm = append(lm, ledgerMod)
	}
	f := &apiFixture{fixture: newFixture(tb, lm...), hub: NewHub(), clock: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)}
	f.hw = &fakeHW{l: f.l}
	f.stat = &fakeStatus{l: f.l, online: true}
	cfg := APIConfig{Ledger: f.l, Hub: f.hub, Status: f.stat, Hardware: f.hw, Locale: "en",
		Now: func() time.Time { f.clockMu.Lock(); defer f.clockMu.Unlock(); return f.clock }}
	for _, m := range mods {
		m(&cfg)
	}
	a, err := NewAPI(cfg)
	require.NoError(tb, err)
	f.api = a
	f.srv = httptest.NewServer(a.Handler())
	tb.Cleanup(func() { a.Close(); f.srv.Close() })
	return f
}

// client is a browser-like API client: cookie jar, CSRF header.
type client struct {
	tb   testing.TB
	f    *apiFixture
	hc   *http.Client
	csrf string
	user User
}

func (f *apiFixture) client(tb testing.TB) *client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	return &client{tb: tb, f: f, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) code() string {
	var e errorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r resp) message() string {
	var e errorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Message
}

func (r resp) decode(tb testing.TB, v any) {
	tb.Helper()
	require.NoError(tb, json.Unmarshal(r.body, v), "body: %s", r.body)
}

func (r resp) sale(tb testing.TB) *Sale {
	tb.Helper()
	var a saleAnswer
	r.decode(tb, &a)
	require.NotNil(tb, a.Sale, "body: %s", r.body)
	return a.Sale
}

// do sends a request; hdr are header name/value pairs. The CSRF token is
// sent unless a header pair overrides it.
func (c *client) do(method, path string, body any, hdr ...string) resp {
	c.tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(c.tb, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.f.srv.URL+path, rd)
	require.NoError(c.tb, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	require.NoError(c.tb, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(c.tb, err)
	return resp{status: res.StatusCode, header: res.Header, body: data}
}

func (c *client) ok(method, path string, body any, hdr ...string) resp {
	c.tb.Helper()
	r := c.do(method, path, body, hdr...)
	require.Equal(c.tb, http.StatusOK, r.status, "%s %s: %s", method, path, r.body)
	return r
}

func (c *client) login(user, pin string) *client {
	c.tb.Helper()
	r := c.ok("POST", "/api/login", loginReq{User: user, PIN: pin})
	var si sessionInfo
	r.decode(c.tb, &si)
	require.NotEmpty(c.tb, si.CSRF)
	c.csrf, c.user = si.CSRF, si.User
	return c
}

func (f *apiFixture) cashier(tb testing.TB) *client {
	tb.Helper()
	return f.client(tb).login(DemoCashier, DemoCashierPIN)
}

func (f *apiFixture) manager(tb testing.TB) *client {
	tb.Helper()
	return f.client(tb).login(DemoManager, DemoManagerPIN)
}

// openSale opens a cart through the API with the given items scanned.
func (c *client) openSale(codes ...string) *Sale {
	c.tb.Helper()
	s := c.ok("POST", "/api/sales", nil).sale(c.tb)
	for _, code := range codes {
		s = c.ok("POST", "/api/sales/"+s.ID+"/scan", scanReq{Code: code}).sale(c.tb)
	}
	return s
}

// completedSale sells tea for cash and returns the recorded sale.
func (c *client) completedSale() *Sale {
	c.tb.Helper()
	s := c.openSale("6901234567892")
	c.ok("POST", "/api/sales/"+s.ID+"/tenders", Tender{Kind: TenderCash, Amount: s.Total})
	return c.ok("POST", "/api/sales/"+s.ID+"/complete", nil, "Idempotency-Key", "k-"+s.ID).sale(c.tb)
}

func (f *apiFixture) auditActions(tb testing.TB) []string {
	tb.Helper()
	es, err := f.l.AuditLog(context.Background(), 100)
	require.NoError(tb, err)
	var out []string
	for _, e := range es {
		out = append(out, e.Action+":"+e.Manager)
	}
	return out
}

func TestAPIWithoutSessionIs401(t *testing.T) {
	f := newAPIFixture(t)
	c := f.client(t)
	for _, rq := range []struct{ method, path string }{
		{"GET", "/api/session"}, {"POST", "/api/sales"}, {"GET", "/api/sales/open"}, {"GET", "/api/status"},
		{"POST", "/api/sales/x/scan"}, {"POST", "/api/sales/x/complete"}, {"POST", "/api/returns"}, {"GET", "/api/reports/x"},
		{"POST", "/api/drawer/open"}, {"GET", "/api/events"}, {"GET", "/api/pickups"}, {"GET", "/api/products"},
	} {
		t.Run(rq.method+rq.path, func(t *testing.T) {
			r := c.do(rq.method, rq.path, nil)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
			require.Equal(t, "unauthenticated", r.code())
			require.Equal(t, "Please log in.", r.message())
		})
	}
	// The login screen and its configuration are public.
	r := c.ok("GET", "/api/config", nil)
	var cfg uiConfig
	r.decode(t, &cfg)
	require.Equal(t, uiConfig{Locale: "en", Currency: "CNY", MinorDigits: 2, Store: "S001", Terminal: "T1", WedgeGapMS: 40}, cfg)
	r = c.ok("GET", "/", nil)
	require.Contains(t, string(r.body), "<!doctype html>")
	require.Contains(t, r.header.Get("Content-Security-Policy"), "default-src 'self'")
}

func TestAPILoginSessionCookieAndLogout(t *testing.T) {
	f := newAPIFixture(t)
	c := f.client(t)
	r := c.do("POST", "/api/login", loginReq{User: DemoCashier, PIN: "0000"})
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "bad_pin", r.code())
	require.Equal(t, "Wrong user or PIN.", r.message())
	r = c.do("POST", "/api/login", loginReq{User: "nobody", PIN: "1234"})
	require.Equal(t, "bad_pin", r.code(), "an unknown user looks like a wrong PIN")

	r = c.ok("POST", "/api/login", loginReq{User: DemoCashier, PIN: DemoCashierPIN})
	var si sessionInfo
	r.decode(t, &si)
	require.Equal(t, User{ID: DemoCashier, Name: "Demo Cashier", Role: RoleCashier}, si.User)
	require.Len(t, si.CSRF, 64)
	ck := r.header.Get("Set-Cookie")
	require.Contains(t, ck, sessionCookie+"=")
	require.Contains(t, ck, "HttpOnly")
	require.Contains(t, ck, "SameSite=Strict")
	require.Contains(t, ck, "Path=/")
	require.NotContains(t, ck, "Secure", "plain HTTP on loopback: Secure only under TLS")
	id := strings.TrimPrefix(strings.Split(ck, ";")[0], sessionCookie+"=")
	require.Len(t, id, 64, "256-bit session id")

	c.csrf = si.CSRF
	var again sessionInfo
	c.ok("GET", "/api/session", nil).decode(t, &again)
	require.Equal(t, si.CSRF, again.CSRF)

	c.ok("POST", "/api/logout", nil)
	r = c.do("GET", "/api/session", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	r = c.do("POST", "/api/sales", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
}

func TestAPISessionExpiresAfterTTL(t *testing.T) {
	f := newAPIFixture(t, func(c *APIConfig) { c.SessionTTL = time.Hour })
	c := f.cashier(t)
	f.advance(50 * time.Minute)
	c.ok("GET", "/api/session", nil) // use slides the expiry
	f.advance(50 * time.Minute)
	c.ok("GET", "/api/session", nil)
	f.advance(61 * time.Minute)
	r := c.do("GET", "/api/session", nil)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "unauthenticated", r.code())
}

func TestAPICSRF(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	good := c.csrf
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"missing token", []string{"X-CSRF-Token", ""}},
		{"wrong token", []string{"X-CSRF-Token", strings.Repeat("0", 64)}},
		{"other session's token", []string{"X-CSRF-Token", f.manager(t).csrf}},
		{"cross-site origin", []string{"Origin", "http://evil.example"}},
		{"other port on the same host", []string{"Origin", "http://127.0.0.1:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", "/api/sales", nil, tc.hdr...)
			require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
			require.Equal(t, "csrf", r.code())
			require.Empty(t, f.l.OpenCarts(), "nothing was opened")
		})
	}
	t.Run("login from another origin", func(t *testing.T) {
		r := f.client(t).do("POST", "/api/login", loginReq{User: DemoCashier, PIN: DemoCashierPIN}, "Origin", "http://evil.example")
		require.Equal(t, http.StatusForbidden, r.status)
		require.Equal(t, "csrf", r.code())
	})
	t.Run("logout needs the token", func(t *testing.T) {
		r := c.do("POST", "/api/logout", nil, "X-CSRF-Token", "nope")
		require.Equal(t, http.StatusForbidden, r.status)
		c.ok("GET", "/api/session", nil)
	})
	c.csrf = good
	c.ok("POST", "/api/sales", nil, "Origin", f.srv.URL)
	c.ok("GET", "/api/sales/open", nil, "X-CSRF-Token", "") // reads need no token
}

func TestAPIBadBodies(t *testing.T) {
	f := newAPIFixture(t, func(c *APIConfig) { c.MaxBody = 1024 })
	c := f.cashier(t)
	s := c.openSale("6901234567892")
	path := "/api/sales/" + s.ID + "/scan"
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed JSON", `{"code": "690123`, http.StatusBadRequest, "bad_json"},
		{"not an object", `["6901234567892"]`, http.StatusBadRequest, "bad_json"},
		{"unknown field", `{"code": "6901234567892", "price": 1}`, http.StatusBadRequest, "bad_json"},
		{"wrong type", `{"code": 6901234567892}`, http.StatusBadRequest, "bad_json"},
		{"trailing data", `{"code": "6901234567892"} {"code": "6901234567892"}`, http.StatusBadRequest, "bad_json"},
		{"oversized", `{"code": "` + strings.Repeat("6", 2000) + `"}`, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", path, tc.body)
			require.Equal(t, tc.status, r.status, "%s", r.body)
			require.Equal(t, tc.code, r.code())
			got, err := f.l.GetSale(context.Background(), s.ID)
			require.NoError(t, err)
			require.Equal(t, s.Lines, got.Lines, "the sale is untouched")
		})
	}
	r := c.do("POST", "/api/login", strings.Repeat(" ", 2000))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Equal(t, "The request is too large (at most 1024 bytes).", r.message())
}

func TestAPIScanBadCodesLeaveSaleUntouched(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	s := c.openSale("6901234567892")
	for _, tc := range []struct{ code, want, msg string }{
		{"6901234567809", "unknown_code", "Barcode 6901234567809 is not in the catalog"},
		{"6901234567893", "check_digit", "check digit"},
		{"12345", "malformed_barcode", "cannot be read"},
		{"", "malformed_barcode", "cannot be read"},
	} {
		t.Run(tc.want+"/"+tc.code, func(t *testing.T) {
			r := c.do("POST", "/api/sales/"+s.ID+"/scan", scanReq{Code: tc.code})
			require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
			require.Equal(t, tc.want, r.code())
			require.Contains(t, r.message(), tc.msg)
			got := c.ok("GET", "/api/sales/"+s.ID, nil).sale(t)
			require.Equal(t, s.Lines, got.Lines)
			require.Equal(t, s.Total, got.Total)
		})
	}
	r := c.do("POST", "/api/sales/nope/scan", scanReq{Code: "6901234567892"})
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "not_found", r.code())
}

func TestAPIMessagesInChinese(t *testing.T) {
	f := newAPIFixture(t, func(c *APIConfig) { c.Locale = "zh-CN" })
	c := f.cashier(t)
	s := c.openSale()
	r := c.do("POST", "/api/sales/"+s.ID+"/scan", scanReq{Code: "6901234567809"})
	require.Equal(t, "unknown_code", r.code())
	require.Equal(t, "条码 6901234567809 不在商品目录中。请手工输入商品或联系主管。", r.message())
	_, err := NewAPI(APIConfig{Ledger: f.l, Locale: "fr"})
	require.Error(t, err)
}

func TestAPISellThroughEveryCartEndpoint(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	s := c.openSale("6901234567892", "]E06901234567892", "6907992500133")
	require.Len(t, s.Lines, 2)
	require.EqualValues(t, 2000, s.Lines[0].Qty)
	id := "/api/sales/" + s.ID
	s = c.ok("POST", id+"/items", addItemReq{SKU: "APPLE", Qty: 532}).sale(t)
	require.EqualValues(t, 532, s.Lines[2].Qty)
	r := c.do("POST", id+"/items", addItemReq{SKU: "TEA500", Qty: 500})
	require.Equal(t, "bad_quantity", r.code())
	s = c.ok("PATCH", id+"/lines/2", qtyReq{Qty: 3000}).sale(t)
	require.EqualValues(t, 3000, s.Lines[1].Qty)
	r = c.do("PATCH", id+"/lines/abc", qtyReq{Qty: 3000})
	require.Equal(t, "bad_request", r.code())
	s = c.ok("DELETE", id+"/lines/3", nil).sale(t)
	require.True(t, s.Lines[2].Voided)
	s = c.ok("PUT", id+"/lines/1/discount", Discount{Kind: DiscountAmount, Value: 100}).sale(t)
	require.EqualValues(t, 100, s.Lines[0].Discount)
	s = c.ok("PUT", id+"/discount", Discount{Kind: DiscountPercent, Value: 1000}).sale(t)
	require.Positive(t, s.Discount)
	s = c.ok("PUT", id+"/discount", Discount{}).sale(t)
	s = c.ok("PUT", id+"/member", memberReq{Member: "M-1"}).sale(t)
	require.Equal(t, "M-1", s.Member)

	r = c.do("POST", id+"/tenders", Tender{Kind: TenderCard, Amount: 100})
	require.Equal(t, "tender_ref", r.code())
	r = c.do("POST", id+"/tenders", Tender{Kind: "iou", Amount: 100})
	require.Equal(t, "tender_kind", r.code())
	r = c.do("POST", id+"/complete", nil, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "tender_short", r.code())

	c.ok("POST", id+"/suspend", nil)
	var list struct{ Sales []*Sale }
	c.ok("GET", "/api/sales/suspended", nil).decode(t, &list)
	require.Len(t, list.Sales, 1)
	s = c.ok("POST", id+"/resume", nil).sale(t)
	require.Equal(t, StateOpen, s.State)
	c.ok("GET", "/api/sales/open", nil).decode(t, &list)
	require.Len(t, list.Sales, 1)

	s = c.ok("POST", id+"/tenders", Tender{Kind: TenderCard, Amount: 1000, Ref: "AUTH1"}).sale(t)
	s = c.ok("POST", id+"/tenders", Tender{Kind: TenderCash, Amount: s.Due + 1000}).sale(t)
	require.EqualValues(t, 1000, s.ChangeDue)
	done := c.ok("POST", id+"/complete", nil, "Idempotency-Key", "k1").sale(t)
	require.Equal(t, "T1-000001", done.Receipt)
	require.Equal(t, "queued", done.PrintState)
	kicks, wakes := f.hw.counts()
	require.Equal(t, 1, kicks, "cash sale opens the drawer")
	require.Equal(t, 1, wakes, "printer woken")

	got := c.ok("GET", "/api/receipts/T1-000001", nil).sale(t)
	require.Equal(t, s.ID, got.ID)
	var rt map[string]string
	c.ok("GET", id+"/receipt", nil).decode(t, &rt)
	require.Equal(t, "RECEIPT T1-000001", rt["text"])
	var job PrintJob
	c.ok("POST", id+"/reprint", nil).decode(t, &job)
	require.Equal(t, "copy", job.Kind)
	var jobs struct{ Jobs []PrintJob }
	c.ok("GET", "/api/print-jobs?sale_id="+s.ID, nil).decode(t, &jobs)
	require.Len(t, jobs.Jobs, 2)

	// Cancel drops a cart.
	s2 := c.openSale("6901234567892")
	c.ok("POST", "/api/sales/"+s2.ID+"/cancel", nil)
	r = c.do("GET", "/api/sales/"+s2.ID, nil)
	require.Equal(t, http.StatusNotFound, r.status)

	var ps struct{ Products []Product }
	c.ok("GET", "/api/products?q=milk", nil).decode(t, &ps)
	require.Len(t, ps.Products, 1)
	require.Equal(t, "MILK1L", ps.Products[0].SKU)
	r = c.do("GET", "/api/members/nobody", nil)
	require.Equal(t, "not_found", r.code())
	r = c.do("GET", "/api/no-such-thing", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "not_found", r.code())
}

func TestAPICompleteIsIdempotent(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	s := c.openSale("6901234567892")
	path := "/api/sales/" + s.ID + "/complete"
	c.ok("POST", "/api/sales/"+s.ID+"/tenders", Tender{Kind: TenderCash, Amount: 1000})

	r := c.do("POST", path, nil)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "idempotency_key", r.code())

	// A double click: both requests at once, then a retry.
	var wg sync.WaitGroup
	answers := make([]resp, 3)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = c.do("POST", path, nil, "Idempotency-Key", "tap-1")
		}()
	}
	wg.Wait()
	answers[2] = c.do("POST", path, nil, "Idempotency-Key", "tap-1")
	var receipts []string
	replays := 0
	for _, a := range answers {
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
		var sa saleAnswer
		a.decode(t, &sa)
		receipts = append(receipts, sa.Sale.Receipt)
		if sa.Replay {
			replays++
		}
	}
	require.Equal(t, []string{"T1-000001", "T1-000001", "T1-000001"}, receipts)
	require.Equal(t, 2, replays)
	var n int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sales").Scan(&n))
	require.Equal(t, 1, n, "one sale")
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM outbox WHERE type = ?", wire.EventSaleCompleted).Scan(&n))
	require.Equal(t, 1, n, "one event for HQ")
	kicks, _ := f.hw.counts()
	require.Equal(t, 1, kicks, "the drawer opens once")

	// The same key for another sale is refused.
	s2 := c.openSale("6901234567892")
	c.ok("POST", "/api/sales/"+s2.ID+"/tenders", Tender{Kind: TenderCash, Amount: 1000})
	r = c.do("POST", "/api/sales/"+s2.ID+"/complete", nil, "Idempotency-Key", "tap-1")
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "duplicate_key", r.code())
}

// TestAPIManagerActions checks every manager-only action: a cashier alone
// is refused (nothing happens), a wrong manager PIN is refused, a manager
// PIN in the request (field or header) approves it and is audited, and a
// manager's own session needs no PIN.
func TestAPIManagerActions(t *testing.T) {
	type action struct {
		name  string
		audit string // audit action recorded, "" if none
		// run sends the request; pin "" sends none.
		run func(t *testing.T, f *apiFixture, c *client, pin string, header bool) resp
	}
	withPIN := func(body map[string]any, pin string, header bool) (map[string]any, []string) {
		if pin == "" {
			return body, nil
		}
		if header {
			return body, []string{"X-Manager-PIN", pin}
		}
		body["manager_pin"] = pin
		return body, nil
	}
	actions := []action{
		{"price override", "price_override", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			s := c.openSale("6901234567892")
			b, hdr := withPIN(map[string]any{"price": 100}, pin, h)
			return c.do("PUT", "/api/sales/"+s.ID+"/lines/1/price", b, hdr...)
		}},
		{"void sale", "void_sale", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			s := c.completedSale()
			b, hdr := withPIN(map[string]any{"reason": "customer changed mind"}, pin, h)
			return c.do("POST", "/api/sales/"+s.ID+"/void", b, hdr...)
		}},
		{"return against a receipt", "refund", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			s := c.completedSale()
			b, hdr := withPIN(map[string]any{"receipt": s.Receipt, "lines": []ReturnLine{{Line: 1, Qty: 1000}},
				"refunds": []Tender{{Kind: TenderCash, Amount: s.Lines[0].Total}}}, pin, h)
			return c.do("POST", "/api/returns", b, hdr...)
		}},
		{"blind return", "refund", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			b, hdr := withPIN(map[string]any{"blind": []BlindLine{{SKU: "TEA500", Qty: 1000, Amount: 450}},
				"refunds": []Tender{{Kind: TenderCash, Amount: 450}}}, pin, h)
			return c.do("POST", "/api/returns", b, hdr...)
		}},
		{"paid out", "paid_out", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			b, hdr := withPIN(map[string]any{"kind": "paid_out", "amount": 500, "reason": "window cleaner"}, pin, h)
			return c.do("POST", "/api/shift/cash", b, hdr...)
		}},
		{"no-sale drawer open", "no_sale", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			b, hdr := withPIN(map[string]any{"reason": "change for the till"}, pin, h)
			return c.do("POST", "/api/drawer/open", b, hdr...)
		}},
		{"coupon past the offline budget", "coupon_budget", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			s := c.openSale("6907992500133")
			tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 600})
			b, hdr := withPIN(map[string]any{"token": tok}, pin, h)
			return c.do("POST", "/api/sales/"+s.ID+"/coupons", b, hdr...)
		}},
		{"Z report", "", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			hdr := []string{}
			if pin != "" {
				hdr = []string{"X-Manager-PIN", pin}
			}
			return c.do("GET", "/api/reports/z", nil, hdr...)
		}},
		{"audit log", "", func(t *testing.T, f *apiFixture, c *client, pin string, h bool) resp {
			hdr := []string{}
			if pin != "" {
				hdr = []string{"X-Manager-PIN", pin}
			}
			return c.do("GET", "/api/audit", nil, hdr...)
		}},
	}
	newF := func(t *testing.T) *apiFixture {
		f := newAPIFixtureWith(t, func(c *LedgerConfig) { c.CouponOfflineCap = 500 })
		c := f.cashier(t)
		c.ok("POST", "/api/shift/open", openShiftReq{Float: 10000})
		return f
	}
	for _, a := range actions {
		t.Run(a.name, func(t *testing.T) {
			t.Run("cashier without PIN is refused", func(t *testing.T) {
				f := newF(t)
				r := a.run(t, f, f.cashier(t), "", false)
				require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
				require.Equal(t, "needs_manager", r.code())
				require.Equal(t, "A manager must approve this: manager PIN please.", r.message())
				require.Empty(t, f.auditActions(t))
			})
			t.Run("cashier with a wrong PIN is refused", func(t *testing.T) {
				f := newF(t)
				r := a.run(t, f, f.cashier(t), "1111", false)
				require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
				require.Equal(t, "bad_pin", r.code())
				require.Empty(t, f.auditActions(t))
			})
			t.Run("cashier's PIN is no manager's", func(t *testing.T) {
				f := newF(t)
				r := a.run(t, f, f.cashier(t), DemoCashierPIN, true)
				require.Equal(t, "bad_pin", r.code())
			})
			for _, header := range []bool{false, true} {
				name := "cashier with manager PIN in the body"
				if header {
					name = "cashier with manager PIN in X-Manager-PIN"
				}
				t.Run(name, func(t *testing.T) {
					f := newF(t)
					r := a.run(t, f, f.cashier(t), DemoManagerPIN, header)
					require.Equal(t, http.StatusOK, r.status, "%s", r.body)
					if a.audit != "" {
						require.Contains(t, f.auditActions(t), a.audit+":"+DemoManager, "approval audited")
					}
				})
			}
			t.Run("manager session", func(t *testing.T) {
				f := newF(t)
				r := a.run(t, f, f.manager(t), "", false)
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				if a.audit != "" {
					require.Contains(t, f.auditActions(t), a.audit+":"+DemoManager)
				}
			})
		})
	}
}

func TestAPICashierActionsNeedNoManager(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	var sh struct{ Shift *Shift }
	c.ok("GET", "/api/shift", nil).decode(t, &sh)
	require.Nil(t, sh.Shift)
	c.ok("POST", "/api/shift/open", openShiftReq{Float: 10000}).decode(t, &sh)
	require.EqualValues(t, 10000, sh.Shift.Float)
	r := c.do("POST", "/api/shift/open", openShiftReq{Float: 10000})
	require.Equal(t, "shift_open", r.code())
	c.ok("POST", "/api/shift/cash", cashReq{Kind: "paid_in", Amount: 2000, Reason: "float top-up"})
	s := c.completedSale()
	var x Report
	c.ok("GET", "/api/reports/x", nil).decode(t, &x)
	require.EqualValues(t, 1, x.Sales)
	require.EqualValues(t, 10000+2000+s.Total, x.CashExpected)
	c.ok("POST", "/api/shift/close", closeShiftReq{Counted: 12000}).decode(t, &sh)
	require.EqualValues(t, -s.Total, sh.Shift.OverShort)
	require.Empty(t, f.auditActions(t))
	r = c.do("POST", "/api/shift/cash", cashReq{Kind: "paid_in", Amount: 1})
	require.Equal(t, "no_shift", r.code())
}

func TestAPILockoutAfterWrongPINs(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		f := newAPIFixture(t)
		c := f.client(t)
		for i := range 4 {
			r := c.do("POST", "/api/login", loginReq{User: DemoCashier, PIN: "0000"})
			require.Equal(t, "bad_pin", r.code(), "attempt %d", i+1)
		}
		r := c.do("POST", "/api/login", loginReq{User: DemoCashier, PIN: "0000"})
		require.Equal(t, http.StatusLocked, r.status)
		require.Equal(t, "locked_out", r.code())
		r = c.do("POST", "/api/login", loginReq{User: DemoCashier, PIN: DemoCashierPIN})
		require.Equal(t, "locked_out", r.code(), "even the right PIN while locked")
		require.Contains(t, r.message(), "Too many wrong PINs")
		f.manager(t) // other users are not affected
	})
	t.Run("manager approval", func(t *testing.T) {
		f := newAPIFixture(t)
		c := f.cashier(t)
		s := c.openSale("6901234567892")
		path := "/api/sales/" + s.ID + "/lines/1/price"
		for range 4 {
			r := c.do("PUT", path, priceReq{Price: 1, ManagerPIN: "1111"})
			require.Equal(t, "bad_pin", r.code())
		}
		r := c.do("PUT", path, priceReq{Price: 1, ManagerPIN: "1111"})
		require.Equal(t, http.StatusLocked, r.status)
		require.Equal(t, "locked_out", r.code())
		r = c.do("PUT", path, priceReq{Price: 1, ManagerPIN: DemoManagerPIN})
		require.Equal(t, "locked_out", r.code())
		got := c.ok("GET", "/api/sales/"+s.ID, nil).sale(t)
		require.EqualValues(t, 450, got.Lines[0].UnitPrice, "price unchanged")
	})
}

func TestAPIScanRoutesCouponTokens(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	s := c.openSale("6907992500133")
	tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 200})
	r := c.ok("POST", "/api/sales/"+s.ID+"/scan", scanReq{Code: "]Q1" + tok, Source: "serial"})
	var sa saleAnswer
	r.decode(t, &sa)
	require.Equal(t, "coupon", sa.Kind)
	require.Len(t, sa.Sale.Coupons, 1)
	require.EqualValues(t, 1290-200, sa.Sale.Total)
	r = c.do("POST", "/api/sales/"+s.ID+"/coupons", couponReq{Token: tok})
	require.Equal(t, "coupon_used", r.code())
	r = c.do("POST", "/api/sales/"+s.ID+"/coupons", couponReq{Token: "EP1.garbage"})
	require.Equal(t, "coupon_signature", r.code())
	s = c.ok("DELETE", "/api/sales/"+s.ID+"/coupons/"+sa.Sale.Coupons[0].CouponID, nil).sale(t)
	require.Empty(t, s.Coupons)
}

func TestAPIStatusAlertsAndPickups(t *testing.T) {
	f := newAPIFixture(t)
	c := f.cashier(t)
	f.stat.setDevices(DeviceState{Name: "printer", Kind: "printer", State: "error", Reason: "paper out"})
	f.stat.mu.Lock()
	f.stat.alerts = []Alert{{Kind: "low_stock", Shelf: "A1", SKU: "TEA500", Count: 2}}
	f.stat.mu.Unlock()
	c.completedSale()
	var st statusAnswer
	c.ok("GET", "/api/status", nil).decode(t, &st)
	require.True(t, st.Sync.Online)
	require.Positive(t, st.Sync.Backlog)
	require.Equal(t, "paper out", st.Devices[0].Reason)
	var al struct{ Alerts []Alert }
	c.ok("GET", "/api/alerts", nil).decode(t, &al)
	require.Equal(t, "low_stock", al.Alerts[0].Kind)

	data, err := json.Marshal(wire.PickupOrderChange{OrderID: "o1", Code: "P-1234", Status: "open", Customer: "Li Lei", Paid: 1290,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 1000}}})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, f.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return f.l.ApplyChange(ctx, tx, wire.Change{Version: 1, Kind: wire.ChangePickupOrder, Key: "o1", Op: wire.OpUpsert, Data: data, At: f.now})
	}))
	var po struct{ Orders []apiPickup }
	c.ok("GET", "/api/pickups", nil).decode(t, &po)
	require.Len(t, po.Orders, 1)
	require.Equal(t, "P-1234", po.Orders[0].Code)
}

func TestAPIEventsStream(t *testing.T) {
	f := newAPIFixture(t, func(c *APIConfig) { c.KeepAlive = 20 * time.Millisecond })
	c := f.cashier(t)
	req, err := http.NewRequest("GET", f.srv.URL+"/api/events", nil)
	require.NoError(t, err)
	res, err := c.hc.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(want func(string) bool) string {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "stream ended")
				if want(l) {
					return l
				}
			case <-timeout:
				t.Fatal("no such line in time")
			}
		}
	}
	next(func(l string) bool { return l == ": keep-alive" })
	require.Eventually(t, func() bool { return f.hub.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)
	f.hub.Publish("scan", map[string]string{"code": "6901234567892", "device": "sc1"})
	next(func(l string) bool { return l == "event: scan" })
	data := next(func(l string) bool { return strings.HasPrefix(l, "data: ") })
	var ev UIEvent
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev))
	require.JSONEq(t, `{"code":"6901234567892","device":"sc1"}`, string(ev.Data))

	// Logging out ends the stream; so does closing the API.
	c.ok("POST", "/api/logout", nil)
	next(func(l string) bool { return l == "event: logout" })
	for range lines {
	}
	require.Eventually(t, func() bool { return f.hub.Subscribers() == 0 }, 5*time.Second, 5*time.Millisecond)

	c2 := f.cashier(t)
	res2, err := c2.hc.Get(f.srv.URL + "/api/events")
	require.NoError(t, err)
	defer res2.Body.Close()
	require.Eventually(t, func() bool { return f.hub.Subscribers() == 1 }, 5*time.Second, 5*time.Millisecond)
	f.api.Close()
	_, err = io.Copy(io.Discard, res2.Body)
	require.True(t, err == nil || errors.Is(err, io.ErrUnexpectedEOF), "stream closed: %v", err)
	require.Eventually(t, func() bool { return f.hub.Subscribers() == 0 }, 5*time.Second, 5*time.Millisecond)
}
