package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// JobPreviewer is an optional ability of a Hardware: it lays a print job
// out as the printer prints it and returns the text (the return slip the
// screen shows after a return). agent/devset implements it; without it
// the API previews slips as plain text.
type JobPreviewer interface {
	JobText(ctx context.Context, job PrintJob) (string, error)
}

// slipRoutes are the endpoints of print jobs by id and of the online
// return screen.
func (a *API) slipRoutes(h func(string, handlerFunc)) {
	h("GET /api/print-jobs/{id}", a.printJob)
	h("GET /api/print-jobs/{id}/text", a.printJobText)
	h("GET /api/returns/online/lookup", a.onlineReturnLookup)
}

// printNow wakes the print worker after a write that queued a job.
func (a *API) printNow() {
	if a.cfg.Hardware != nil {
		a.cfg.Hardware.PrintNow()
	}
}

// printJob answers one job: a return's slip has the return's id, a
// hand-over's slip the hand-over's, a receipt its sale's.
func (a *API) printJob(c *call) (any, error) {
	j, err := a.l.PrintJob(c.ctx(), c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": j}, nil
}

// printJobText previews a job as it prints: {"text", "kind", "receipt",
// "print_state"}.
func (a *API) printJobText(c *call) (any, error) {
	j, err := a.l.PrintJob(c.ctx(), c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	var text string
	if p, ok := a.cfg.Hardware.(JobPreviewer); ok {
		text, err = p.JobText(c.ctx(), j)
	} else {
		text, err = a.plainSlip(c.ctx(), j)
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"text": text, "kind": j.Kind, "receipt": j.Receipt, "print_state": j.State}, nil
}

// plainSlip is the preview of a job when no hardware lays it out.
func (a *API) plainSlip(ctx context.Context, j PrintJob) (string, error) {
	var b strings.Builder
	lc := a.l.Config()
	fmt.Fprintf(&b, "%s / %s\n", lc.Store, lc.Terminal)
	switch j.Kind {
	case PrintReturn:
		r, err := a.l.ReturnReceipt(ctx, j.ID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "RETURN %s  %s\n", r.Receipt, r.LocalTime)
		if r.OrigReceipt != "" {
			fmt.Fprintf(&b, "receipt %s\n", r.OrigReceipt)
		}
		if r.OrderID != "" {
			fmt.Fprintf(&b, "order %s %s\n", r.OrderCode, r.OrderID)
		}
		b.WriteString(strings.Repeat("-", 32) + "\n")
		for _, ln := range r.Lines {
			fmt.Fprintf(&b, "%s\n  %s = %s\n", ln.Name, qtyText(Line{Unit: ln.Unit, Qty: ln.Qty}), a.money(ln.Amount))
		}
		b.WriteString(strings.Repeat("-", 32) + "\n")
		fmt.Fprintf(&b, "REFUND %s\n", a.money(r.Total))
		for _, t := range r.Refunds {
			fmt.Fprintf(&b, "%s %s\n", strings.ToUpper(t.Kind), a.money(t.Amount))
		}
		if p := r.Points; p != nil {
			if p.Pending {
				fmt.Fprintf(&b, "member %s: HQ moves the points\n", p.Member)
			} else {
				fmt.Fprintf(&b, "member %s: points given back %d, taken back %d, balance %d\n", p.Member, p.GivenBack, p.TakenBack, p.Balance)
			}
		}
	case PrintPickup:
		h, err := a.l.HandoverReceipt(ctx, j.ID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "PICKUP %s  %s\n", h.Code, h.LocalTime)
		b.WriteString(strings.Repeat("-", 32) + "\n")
		for _, ln := range h.Lines {
			fmt.Fprintf(&b, "%s %s\n", ln.SKU, qtyText(Line{Unit: ln.Unit, Qty: ln.Handed}))
		}
	default:
		return "", newErr(http.StatusUnprocessableEntity, "invalid", fmt.Errorf("print job %s is a %s: its preview is GET /api/sales/{id}/receipt", j.ID, j.Kind))
	}
	return b.String(), nil
}

// onlineReturnLookup finds an online order for the return screen: GET
// /api/returns/online/lookup?q=<pickup QR, code or order id>. An order
// this store never saw is 404 pickup_unknown (with "order_id" in the
// detail when q could be an order id HQ knows): the screen then takes the
// items by hand, and a manager.
func (a *API) onlineReturnLookup(c *call) (any, error) {
	q := strings.TrimSpace(c.r.URL.Query().Get("q"))
	if q == "" || len(q) > 256 {
		return nil, newErr(http.StatusBadRequest, "bad_request", errors.New("q (pickup QR, code or online order id) of 1 to 256 characters required"))
	}
	o, err := a.l.OnlineReturnable(c.ctx(), q)
	if err != nil {
		return nil, err
	}
	return map[string]any{"order": o}, nil
}
