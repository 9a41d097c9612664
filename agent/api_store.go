package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (a *API) storeRoutes(h func(string, handlerFunc)) {
	h("GET /api/shift", a.currentShift)
	h("POST /api/shift/open", a.openShift)
	h("POST /api/shift/close", a.closeShift)
	h("POST /api/shift/cash", a.cashMovement)
	h("POST /api/drawer/open", a.openDrawer)
	h("GET /api/reports/x", a.xReport)
	h("GET /api/reports/z", a.zReport)
	h("GET /api/print-jobs", a.printJobs)
	h("GET /api/products", a.products)
	h("POST /api/inventory/adjust", a.adjustStock)
	h("GET /api/members/{q}", a.member)
	h("GET /api/status", a.status)
	h("GET /api/alerts", a.alerts)
	h("GET /api/pickups", a.pickups)
	h("GET /api/audit", a.audit)
}

func (a *API) currentShift(c *call) (any, error) {
	s, err := a.l.CurrentShift(c.ctx())
	if errors.Is(err, ErrNoShift) {
		return map[string]any{"shift": nil}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"shift": s}, nil
}

type openShiftReq struct {
	Float int64 `json:"float"`
}

func (a *API) openShift(c *call) (any, error) {
	var req openShiftReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	s, err := a.l.OpenShift(c.ctx(), c.s.user.ID, req.Float)
	if err != nil {
		return nil, err
	}
	a.kick(c, "open shift")
	return map[string]any{"shift": s}, nil
}

type closeShiftReq struct {
	Counted int64 `json:"counted"`
}

func (a *API) closeShift(c *call) (any, error) {
	var req closeShiftReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	s, err := a.l.CloseShift(c.ctx(), req.Counted)
	if err != nil {
		return nil, err
	}
	a.log.Info("shift closed", "user", c.s.user.ID, "shift", s.ID, "over_short", s.OverShort)
	return map[string]any{"shift": s}, nil
}

type cashReq struct {
	Kind       string `json:"kind"` // paid_in, paid_out, no_sale
	Amount     int64  `json:"amount"`
	Reason     string `json:"reason"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// cashMovement records paid-in, or with a manager paid-out and no-sale,
// and opens the drawer.
func (a *API) cashMovement(c *call) (any, error) {
	var req cashReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return a.moveCash(c, req)
}

func (a *API) moveCash(c *call, req cashReq) (any, error) {
	var mgr string
	switch req.Kind {
	case "paid_in":
	case "paid_out", "no_sale":
		if strings.TrimSpace(req.Reason) == "" {
			return nil, newErr(http.StatusUnprocessableEntity, "reason_required", nil)
		}
		var err error
		if mgr, err = c.manager(req.ManagerPIN); err != nil {
			return nil, err
		}
	default:
		return nil, newErr(http.StatusBadRequest, "bad_request", fmt.Errorf("cash movement %q is not paid_in, paid_out or no_sale", req.Kind))
	}
	if err := a.l.CashMovement(c.ctx(), req.Kind, req.Amount, strings.TrimSpace(req.Reason), c.s.user.ID, mgr); err != nil {
		return nil, err
	}
	// The movement is recorded: answer 200 even if the drawer stays shut,
	// so a retry does not record it twice.
	ans := map[string]any{"ok": true, "opened": false}
	switch {
	case !a.hasDrawer():
		ans["drawer"] = a.message("drawer_failed", "no drawer attached")
	default:
		if err := a.cfg.Hardware.KickDrawer(c.ctx()); err != nil {
			a.log.Warn("drawer did not open", "kind", req.Kind, "err", err)
			ans["drawer"] = a.message("drawer_failed", err)
		} else {
			ans["opened"] = true
		}
	}
	return ans, nil
}

// kick opens the drawer where it is a convenience, not the point of the
// request: a failure is logged only.
func (a *API) kick(c *call, why string) {
	if !a.hasDrawer() {
		return
	}
	if err := a.cfg.Hardware.KickDrawer(c.ctx()); err != nil {
		a.log.Warn("drawer did not open", "why", why, "err", err)
	}
}

type drawerReq struct {
	Reason     string `json:"reason"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// openDrawer is the no-sale drawer open: a manager approves, it is
// audited, then the drawer kicks.
func (a *API) openDrawer(c *call) (any, error) {
	var req drawerReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return a.moveCash(c, cashReq{Kind: "no_sale", Reason: req.Reason, ManagerPIN: req.ManagerPIN})
}

func (a *API) xReport(c *call) (any, error) {
	return a.l.XReport(c.ctx())
}

// zReport is the end-of-day report: a manager's.
func (a *API) zReport(c *call) (any, error) {
	if _, err := c.manager(""); err != nil {
		return nil, err
	}
	day := c.r.URL.Query().Get("day")
	if day != "" {
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			return nil, newErr(http.StatusBadRequest, "bad_request", fmt.Errorf("day %q is not YYYY-MM-DD", day))
		}
	}
	return a.l.ZReport(c.ctx(), day)
}

func queryInt(c *call, name string, def, maxV int) int {
	n, err := strconv.Atoi(c.r.URL.Query().Get(name))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, maxV)
}

// printJobs lists the newest print jobs, of one sale if sale_id is given.
func (a *API) printJobs(c *call) (any, error) {
	limit := queryInt(c, "limit", 20, 200)
	sale := c.r.URL.Query().Get("sale_id")
	n := limit
	if sale != "" {
		n = 200
	}
	js, err := a.l.PrintJobs(c.ctx(), n)
	if err != nil {
		return nil, err
	}
	out := []PrintJob{}
	for _, j := range js {
		if (sale == "" || j.SaleID == sale) && len(out) < limit {
			out = append(out, j)
		}
	}
	return map[string]any{"jobs": out}, nil
}

func (a *API) products(c *call) (any, error) {
	ps, err := a.l.Products(c.ctx(), strings.TrimSpace(c.r.URL.Query().Get("q")), queryInt(c, "limit", 20, 100))
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []Product{}
	}
	return map[string]any{"products": ps}, nil
}

// member looks a member up by QR, id or phone, with its points as this
// terminal sees them (HQ's balance, what is unconfirmed, what is spendable).
func (a *API) member(c *call) (any, error) {
	q, err := normalizeMember(c.r.PathValue("q"))
	if err != nil {
		return nil, err
	}
	m, err := a.l.MemberPoints(c.ctx(), q)
	if err != nil {
		return nil, err
	}
	return map[string]any{"member": m}, nil
}

// systemStatus is the StatusSource's answer, or the outbox alone.
func (a *API) systemStatus(c *call) SystemStatus {
	if a.cfg.Status != nil {
		st := a.cfg.Status.Status(c.ctx())
		if st.Devices == nil {
			st.Devices = []DeviceState{}
		}
		if st.Alerts == nil {
			st.Alerts = []Alert{}
		}
		return st
	}
	lc := a.l.Config()
	st := SystemStatus{Store: lc.Store, Terminal: lc.Terminal, Devices: []DeviceState{}, Alerts: []Alert{}}
	if os, err := a.l.DB().OutboxState(c.ctx()); err == nil {
		st.Sync = SyncState{Backlog: os.Backlog, OldestUnacked: os.OldestUnacked, Rejected: os.Rejected}
	}
	return st
}

// statusAnswer adds the server's clock, so the UI computes the age of the
// oldest unsynced event without trusting its own.
type statusAnswer struct {
	SystemStatus
	Now time.Time `json:"now"`
}

func (a *API) status(c *call) (any, error) {
	return statusAnswer{SystemStatus: a.systemStatus(c), Now: a.now()}, nil
}

func (a *API) alerts(c *call) (any, error) {
	return map[string]any{"alerts": a.systemStatus(c).Alerts}, nil
}

func (a *API) pickups(c *call) (any, error) {
	ps, err := a.l.apiPickups(c.ctx(), queryInt(c, "limit", 50, 200))
	if err != nil {
		return nil, err
	}
	return map[string]any{"orders": ps}, nil
}

func (a *API) audit(c *call) (any, error) {
	if _, err := c.manager(""); err != nil {
		return nil, err
	}
	es, err := a.l.AuditLog(c.ctx(), queryInt(c, "limit", 50, 500))
	if err != nil {
		return nil, err
	}
	if es == nil {
		es = []AuditEntry{}
	}
	return map[string]any{"entries": es}, nil
}

// events streams the Hub's events as Server-Sent Events until the client
// goes, the session ends or the API closes, with a keep-alive comment every
// KeepAlive so proxies and the browser keep the stream open.
func (a *API) events(c *call) error {
	rc := http.NewResponseController(c.w)
	h := c.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(c.w, "retry: 2000\n: connected\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	var ch <-chan UIEvent
	if a.cfg.Hub != nil {
		sub, cancel := a.cfg.Hub.Subscribe()
		defer cancel()
		ch = sub
	}
	tick := time.NewTicker(a.cfg.KeepAlive)
	defer tick.Stop()
	ctx := c.ctx()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.done:
			return nil
		case <-tick.C:
			if !a.alive(c.s.id) {
				fmt.Fprint(c.w, "event: logout\ndata: {}\n\n")
				rc.Flush()
				return nil
			}
			if _, err := fmt.Fprint(c.w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case ev, ok := <-ch:
			if !ok { // the hub closed: the agent is shutting down
				return nil
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(c.w, "event: %s\ndata: %s\n\n", sseName(ev.Type), b); err != nil {
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// sseName keeps an event type to one line of letters.
func sseName(t string) string {
	t = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return -1
	}, t)
	if t == "" {
		return "message"
	}
	return t
}

type stockReq struct {
	Code       string `json:"code"` // SKU or barcode
	Delta      *int64 `json:"delta"`
	Count      *int64 `json:"count"`
	Reason     string `json:"reason"`
	Note       string `json:"note"`
	ManagerPIN string `json:"manager_pin"`
}

// adjustStock records a delivery, count, write-off or transfer. Goods
// coming in need a cashier; the rest a manager (StockNeedsManager).
func (a *API) adjustStock(c *call) (any, error) {
	var req stockReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	var mgr string
	if StockNeedsManager(req.Reason) {
		var err error
		if mgr, err = c.manager(req.ManagerPIN); err != nil {
			return nil, err
		}
	}
	res, err := a.l.ChangeStock(c.ctx(), StockChange{Code: req.Code, Delta: req.Delta, Count: req.Count, Reason: req.Reason,
		Note: req.Note, User: c.s.user.ID, Manager: mgr})
	if err != nil {
		return nil, err
	}
	a.log.Info("stock changed", "sku", res.SKU, "reason", res.Reason, "delta", res.Delta, "on_hand", res.OnHand, "user", c.s.user.ID, "manager", mgr)
	return map[string]any{"stock": res}, nil
}
