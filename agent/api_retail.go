package agent

import (
	"errors"
	"net/http"
	"strings"
)

// retailRoutes are the new-retail endpoints of the POS API: pickup
// hand-over, paying with points, and online orders returned in the store.
// (A member is attached by QR, id or phone through PUT
// /api/sales/{id}/member or by scanning the member QR.)
func (a *API) retailRoutes(h func(string, handlerFunc)) {
	h("GET /api/pickups/lookup", a.lookupPickup)
	h("POST /api/pickups/{id}/handover", a.handOver)
	h("POST /api/sales/{id}/points", a.payWithPoints)
	h("POST /api/returns/online", a.onlineReturn)
}

// lookupPickup finds the order of a scanned pickup QR, a typed code, or
// the customer's phone: GET /api/pickups/lookup?q=…
func (a *API) lookupPickup(c *call) (any, error) {
	q := strings.TrimSpace(c.r.URL.Query().Get("q"))
	if q == "" || len(q) > 256 {
		return nil, newErr(http.StatusBadRequest, "bad_request", errors.New("q (pickup code, QR or phone) of 1 to 256 characters required"))
	}
	os, err := a.l.LookupPickup(c.ctx(), q)
	if err != nil {
		return nil, err
	}
	return map[string]any{"orders": os}, nil
}

type handoverReq struct {
	Lines []HandoverLine `json:"lines,omitempty"`
}

// handOver hands an order over, all of it (no lines) or part (lines with
// handed quantities, substitutes, missing items).
func (a *API) handOver(c *call) (any, error) {
	var req handoverReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	h, err := a.l.HandOverPickup(c.ctx(), HandoverRequest{Order: c.r.PathValue("id"), Lines: req.Lines, Cashier: c.s.user.ID})
	if err != nil {
		return nil, err
	}
	a.log.Info("pickup handed over", "order", h.OrderID, "code", h.Code, "final", h.Final, "complete", h.Complete, "user", c.s.user.ID)
	a.printNow() // its slip is queued
	if a.cfg.Hub != nil {
		a.cfg.Hub.Publish("pickup", map[string]any{"order_id": h.OrderID, "status": h.Order.Status})
	}
	return map[string]any{"handover": h}, nil
}

type pointsReq struct {
	Points int64 `json:"points"`
}

func (a *API) payWithPoints(c *call) (any, error) {
	var req pointsReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return answer(a.l.PayWithPoints(c.ctx(), c.r.PathValue("id"), req.Points))
}

type onlineReturnReq struct {
	Order      string             `json:"order"`
	Lines      []OnlineReturnLine `json:"lines"`
	ManagerPIN string             `json:"manager_pin,omitempty"`
}

// onlineReturn takes back goods bought online; the refund is owed by the
// online channel, so no drawer opens. Like every return it needs a
// manager.
func (a *API) onlineReturn(c *call) (any, error) {
	var req onlineReturnReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	mgr, err := c.manager(req.ManagerPIN)
	if err != nil {
		return nil, err
	}
	ret, err := a.l.ReturnOnlineOrder(c.ctx(), OnlineReturnRequest{Order: req.Order, Lines: req.Lines, Cashier: c.s.user.ID, Manager: mgr})
	if err != nil {
		return nil, err
	}
	a.log.Info("online order returned", "order", ret.OrderID, "receipt", ret.Receipt, "user", c.s.user.ID, "manager", mgr, "total", ret.Total)
	a.printNow() // its slip is queued
	return map[string]any{"return": ret}, nil
}
