package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/sync/wire"
)

// saleAnswer is what every endpoint that changes a cart returns.
type saleAnswer struct {
	Sale *Sale `json:"sale"`
	// Kind says what a scan added: "item", "coupon" or "member".
	Kind string `json:"kind,omitempty"`
	// Drawer reports a cash drawer that did not open after a cash sale;
	// the sale itself is recorded.
	Drawer string `json:"drawer,omitempty"`
	// Replay is true when a completion was answered from an earlier
	// request with the same idempotency key.
	Replay bool `json:"replay,omitempty"`
}

func (a *API) saleRoutes(h func(string, handlerFunc)) {
	h("POST /api/sales", a.openSale)
	h("GET /api/sales/open", a.openCarts)
	h("GET /api/sales/suspended", a.listSuspended)
	h("GET /api/sales/{id}", a.getSale)
	h("GET /api/receipts/{receipt}", a.findByReceipt)
	h("POST /api/sales/{id}/scan", a.scan)
	h("POST /api/sales/{id}/items", a.addItem)
	h("PATCH /api/sales/{id}/lines/{line}", a.setQty)
	h("DELETE /api/sales/{id}/lines/{line}", a.voidLine)
	h("PUT /api/sales/{id}/lines/{line}/discount", a.itemDiscount)
	h("PUT /api/sales/{id}/lines/{line}/price", a.overridePrice)
	h("PUT /api/sales/{id}/discount", a.saleDiscount)
	h("PUT /api/sales/{id}/member", a.attachMember)
	h("POST /api/sales/{id}/coupons", a.applyCoupon)
	h("DELETE /api/sales/{id}/coupons/{coupon}", a.removeCoupon)
	h("POST /api/sales/{id}/tenders", a.addTender)
	h("DELETE /api/sales/{id}/tenders", a.clearTenders)
	h("POST /api/sales/{id}/suspend", a.suspend)
	h("POST /api/sales/{id}/resume", a.resume)
	h("POST /api/sales/{id}/cancel", a.cancel)
	h("POST /api/sales/{id}/complete", a.complete)
	h("POST /api/sales/{id}/void", a.voidSale)
	h("GET /api/sales/{id}/receipt", a.receiptText)
	h("POST /api/sales/{id}/reprint", a.reprint)
	h("POST /api/returns", a.returns)
	h("POST /api/returns/quote", a.returnQuote)
}

func lineOf(c *call) (int, error) {
	n, err := strconv.Atoi(c.r.PathValue("line"))
	if err != nil || n < 1 {
		return 0, newErr(http.StatusBadRequest, "bad_request", fmt.Errorf("line %q is not a line number", c.r.PathValue("line")))
	}
	return n, nil
}

func answer(s *Sale, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return saleAnswer{Sale: tidy(s)}, nil
}

// tidy makes empty lists JSON arrays, not null (a cloned empty cart has
// nil slices).
func tidy(s *Sale) *Sale {
	if s != nil {
		if s.Lines == nil {
			s.Lines = []Line{}
		}
		if s.Tenders == nil {
			s.Tenders = []Tender{}
		}
	}
	return s
}

func (a *API) openSale(c *call) (any, error) {
	if err := c.decode(&struct{}{}); err != nil {
		return nil, err
	}
	return answer(a.l.OpenSale(c.ctx(), c.s.user.ID))
}

// openCarts lists this user's open carts (a reloaded screen picks its
// cart up again).
func (a *API) openCarts(c *call) (any, error) {
	out := []*Sale{}
	for _, s := range a.l.OpenCarts() {
		if s.Cashier == c.s.user.ID {
			out = append(out, tidy(s))
		}
	}
	return map[string]any{"sales": out}, nil
}

func (a *API) listSuspended(c *call) (any, error) {
	ss, err := a.l.ListSuspended(c.ctx())
	if err != nil {
		return nil, err
	}
	if ss == nil {
		ss = []*Sale{}
	}
	for _, s := range ss {
		tidy(s)
	}
	return map[string]any{"sales": ss}, nil
}

func (a *API) getSale(c *call) (any, error) {
	return answer(a.l.GetSale(c.ctx(), c.r.PathValue("id")))
}

func (a *API) findByReceipt(c *call) (any, error) {
	return answer(a.l.FindSaleByReceipt(c.ctx(), c.r.PathValue("receipt")))
}

type scanReq struct {
	Code string `json:"code"`
	// Source is "wedge", "serial" or "keyed"; it is logged only.
	Source     string `json:"source,omitempty"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

// scan adds what a scanned code names; a coupon token goes to coupon
// entry. An unknown or unreadable code leaves the sale untouched.
func (a *API) scan(c *call) (any, error) {
	var req scanReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	id := c.r.PathValue("id")
	// A coupon QR is longer than any product code the parser takes, so
	// it is recognised before parsing; so is a member QR.
	_, body := barcode.StripAIM(strings.TrimSpace(req.Code))
	if _, ok := wire.ParseMemberQR(body); ok {
		s, err := a.l.AttachMember(c.ctx(), id, body)
		if err != nil {
			return nil, err
		}
		return saleAnswer{Sale: tidy(s), Kind: "member"}, nil
	}
	var s *Sale
	err := barcode.ErrNotProduct
	if !strings.HasPrefix(body, wire.CouponPrefix) {
		s, err = a.l.Scan(c.ctx(), id, req.Code)
	}
	if errors.Is(err, barcode.ErrNotProduct) {
		s, err = a.couponOn(c, id, body, req.ManagerPIN)
		if err != nil {
			return nil, err
		}
		return saleAnswer{Sale: tidy(s), Kind: "coupon"}, nil
	}
	if errors.Is(err, ErrUnknownCode) {
		return nil, newErr(http.StatusUnprocessableEntity, "unknown_code", err, printable(req.Code))
	}
	if err != nil {
		return nil, err
	}
	return saleAnswer{Sale: tidy(s), Kind: "item"}, nil
}

// printable shortens a scanned code for a message.
func printable(s string) string {
	s = strings.TrimSpace(s)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return s
}

type addItemReq struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"` // thousandths; 0 means one
}

func (a *API) addItem(c *call) (any, error) {
	var req addItemReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if req.Qty == 0 {
		req.Qty = 1000
	}
	return answer(a.l.AddItem(c.ctx(), c.r.PathValue("id"), req.SKU, req.Qty))
}

type qtyReq struct {
	Qty int64 `json:"qty"`
}

func (a *API) setQty(c *call) (any, error) {
	line, err := lineOf(c)
	if err != nil {
		return nil, err
	}
	var req qtyReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return answer(a.l.SetQty(c.r.PathValue("id"), line, req.Qty))
}

func (a *API) voidLine(c *call) (any, error) {
	line, err := lineOf(c)
	if err != nil {
		return nil, err
	}
	return answer(a.l.VoidLine(c.r.PathValue("id"), line))
}

func (a *API) itemDiscount(c *call) (any, error) {
	line, err := lineOf(c)
	if err != nil {
		return nil, err
	}
	var d Discount
	if err := c.decode(&d); err != nil {
		return nil, err
	}
	return answer(a.l.SetItemDiscount(c.r.PathValue("id"), line, d))
}

func (a *API) saleDiscount(c *call) (any, error) {
	var d Discount
	if err := c.decode(&d); err != nil {
		return nil, err
	}
	return answer(a.l.SetSaleDiscount(c.r.PathValue("id"), d))
}

type priceReq struct {
	Price      int64  `json:"price"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

func (a *API) overridePrice(c *call) (any, error) {
	line, err := lineOf(c)
	if err != nil {
		return nil, err
	}
	var req priceReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	mgr, err := c.manager(req.ManagerPIN)
	if err != nil {
		return nil, err
	}
	return answer(a.l.OverridePrice(c.ctx(), c.r.PathValue("id"), line, req.Price, mgr))
}

type memberReq struct {
	Member string `json:"member"`
}

func (a *API) attachMember(c *call) (any, error) {
	var req memberReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return answer(a.l.AttachMember(c.ctx(), c.r.PathValue("id"), req.Member))
}

type couponReq struct {
	Token      string `json:"token"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

func (a *API) applyCoupon(c *call) (any, error) {
	var req couponReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	_, token := barcode.StripAIM(strings.TrimSpace(req.Token))
	return answer(a.couponOn(c, c.r.PathValue("id"), token, req.ManagerPIN))
}

// couponOn applies a coupon. A manager's approval is asked for only when
// the ledger needs one (past the offline coupon budget): with a PIN given,
// that manager approves; a manager's own session approves on retry.
func (a *API) couponOn(c *call, saleID, token, pin string) (*Sale, error) {
	if pin != "" || c.r.Header.Get("X-Manager-PIN") != "" {
		mgr, err := c.manager(pin)
		if err != nil {
			return nil, err
		}
		return a.l.ApplyCoupon(c.ctx(), saleID, token, mgr)
	}
	s, err := a.l.ApplyCoupon(c.ctx(), saleID, token, "")
	if errors.Is(err, ErrNeedsManager) && c.s.user.Role == RoleManager {
		return a.l.ApplyCoupon(c.ctx(), saleID, token, c.s.user.ID)
	}
	return s, err
}

func (a *API) removeCoupon(c *call) (any, error) {
	return answer(a.l.RemoveCoupon(c.r.PathValue("id"), c.r.PathValue("coupon")))
}

func (a *API) addTender(c *call) (any, error) {
	var t Tender
	if err := c.decode(&t); err != nil {
		return nil, err
	}
	switch t.Kind {
	case TenderCash:
	case TenderCard, TenderWallet:
		if strings.TrimSpace(t.Ref) == "" {
			return nil, newErr(http.StatusUnprocessableEntity, "tender_ref", errors.New("reference required"))
		}
	default:
		return nil, newErr(http.StatusUnprocessableEntity, "tender_kind", fmt.Errorf("kind %q", t.Kind))
	}
	return answer(a.l.AddTender(c.r.PathValue("id"), t))
}

func (a *API) clearTenders(c *call) (any, error) {
	return answer(a.l.ClearTenders(c.r.PathValue("id")))
}

func (a *API) suspend(c *call) (any, error) {
	if err := a.l.SuspendSale(c.ctx(), c.r.PathValue("id")); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}

func (a *API) resume(c *call) (any, error) {
	return answer(a.l.ResumeSale(c.ctx(), c.r.PathValue("id")))
}

func (a *API) cancel(c *call) (any, error) {
	id := c.r.PathValue("id")
	if _, err := a.l.GetSale(c.ctx(), id); err != nil {
		return nil, err
	}
	if err := a.l.CancelSale(c.ctx(), id); err != nil {
		return nil, err
	}
	return map[string]bool{"ok": true}, nil
}

// complete records a paid sale. The Idempotency-Key header is required: a
// double-submitted request gets the same receipt, and the drawer opens
// once.
func (a *API) complete(c *call) (any, error) {
	key := strings.TrimSpace(c.r.Header.Get("Idempotency-Key"))
	if key == "" || len(key) > 200 {
		return nil, newErr(http.StatusBadRequest, "idempotency_key", errors.New("Idempotency-Key header of 1 to 200 characters required"))
	}
	if err := c.decode(&struct{}{}); err != nil {
		return nil, err
	}
	s, err := a.l.CompleteSale(c.ctx(), c.r.PathValue("id"), key)
	if err != nil {
		return nil, err
	}
	ans := saleAnswer{Sale: tidy(s), Replay: !a.firstCompletion(key)}
	if ans.Replay {
		return ans, nil
	}
	a.log.Info("sale completed", "sale", s.ID, "receipt", s.Receipt, "user", c.s.user.ID, "total", s.Total)
	if hw := a.cfg.Hardware; hw != nil {
		hw.PrintNow()
		if tookCash(s) && a.hasDrawer() {
			if err := hw.KickDrawer(c.ctx()); err != nil {
				a.log.Warn("drawer did not open after a cash sale", "sale", s.ID, "err", err)
				ans.Drawer = a.message("drawer_failed", err)
			}
		}
	}
	if a.cfg.Hub != nil {
		a.cfg.Hub.Publish("sale", map[string]string{"id": s.ID, "receipt": s.Receipt, "state": s.State})
	}
	return ans, nil
}

// firstCompletion reports whether key is answered for the first time.
func (a *API) firstCompletion(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.completed[key] {
		return false
	}
	if len(a.completed) >= 4096 {
		clear(a.completed) // at worst a retried old key opens the drawer again
	}
	a.completed[key] = true
	return true
}

func tookCash(s *Sale) bool {
	for _, t := range s.Tenders {
		if t.Kind == TenderCash {
			return true
		}
	}
	return false
}

type voidReq struct {
	Reason     string `json:"reason"`
	ManagerPIN string `json:"manager_pin,omitempty"`
}

func (a *API) voidSale(c *call) (any, error) {
	var req voidReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return nil, newErr(http.StatusUnprocessableEntity, "reason_required", nil)
	}
	mgr, err := c.manager(req.ManagerPIN)
	if err != nil {
		return nil, err
	}
	return answer(a.l.VoidSale(c.ctx(), c.r.PathValue("id"), mgr, strings.TrimSpace(req.Reason)))
}

func (a *API) receiptText(c *call) (any, error) {
	id := c.r.PathValue("id")
	s, err := a.l.GetSale(c.ctx(), id)
	if err != nil {
		return nil, err
	}
	var text string
	if a.cfg.Hardware != nil && s.Receipt != "" {
		if text, err = a.cfg.Hardware.ReceiptText(c.ctx(), id); err != nil {
			return nil, err
		}
	} else {
		text = a.plainReceipt(s)
	}
	return map[string]string{"text": text, "receipt": s.Receipt, "print_state": s.PrintState}, nil
}

// plainReceipt is the preview when no hardware renders one (and for an
// open cart).
func (a *API) plainReceipt(s *Sale) string {
	var b strings.Builder
	lc := a.l.Config()
	fmt.Fprintf(&b, "%s / %s\n", lc.Store, lc.Terminal)
	if s.Receipt != "" {
		fmt.Fprintf(&b, "%s  %s\n", s.Receipt, s.CompletedAt.In(lc.Location).Format("2006-01-02 15:04"))
	}
	b.WriteString(strings.Repeat("-", 32) + "\n")
	for _, ln := range s.Lines {
		if ln.Voided {
			continue
		}
		fmt.Fprintf(&b, "%s\n  %s x %s = %s\n", ln.Name, qtyText(ln), a.money(ln.UnitPrice), a.money(ln.Gross))
		if ln.Discount > 0 {
			fmt.Fprintf(&b, "  -%s\n", a.money(ln.Discount))
		}
	}
	b.WriteString(strings.Repeat("-", 32) + "\n")
	fmt.Fprintf(&b, "TOTAL %s\n", a.money(s.Total))
	for _, t := range s.Tenders {
		fmt.Fprintf(&b, "%s %s\n", strings.ToUpper(t.Kind), a.money(t.Amount))
	}
	if s.ChangeDue > 0 {
		fmt.Fprintf(&b, "CHANGE %s\n", a.money(s.ChangeDue))
	}
	return b.String()
}

func qtyText(ln Line) string {
	if ln.Unit == "kg" {
		return fmt.Sprintf("%d.%03dkg", ln.Qty/1000, ln.Qty%1000)
	}
	return strconv.FormatInt(ln.Qty/1000, 10)
}

// money formats minor units for text output (never a float).
func (a *API) money(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	d := a.cfg.MinorDigits
	p := int64(1)
	for range d {
		p *= 10
	}
	s := strconv.FormatInt(v/p, 10)
	if d > 0 {
		s += fmt.Sprintf(".%0*d", d, v%p)
	}
	if neg {
		s = "-" + s
	}
	return a.cfg.Currency + " " + s
}

func (a *API) reprint(c *call) (any, error) {
	j, err := a.l.Reprint(c.ctx(), c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if a.cfg.Hardware != nil {
		a.cfg.Hardware.PrintNow()
	}
	return j, nil
}

type returnReq struct {
	Receipt    string       `json:"receipt,omitempty"`
	Lines      []ReturnLine `json:"lines,omitempty"`
	Blind      []BlindLine  `json:"blind,omitempty"`
	Channel    string       `json:"channel,omitempty"`
	Refunds    []Tender     `json:"refunds"`
	ManagerPIN string       `json:"manager_pin,omitempty"`
}

// returnQuote answers what a return would refund and how (money, and
// points for the part the sale paid with points), recording nothing: the
// POS fills in the refund tenders from it.
func (a *API) returnQuote(c *call) (any, error) {
	var req returnReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	return a.l.QuoteReturn(c.ctx(), ReturnRequest{Receipt: strings.TrimSpace(req.Receipt), Lines: req.Lines, Blind: req.Blind, Channel: req.Channel})
}

// returns records a return. Every refund needs a manager's approval (the
// store's policy: money leaves the drawer), not only blind returns.
func (a *API) returns(c *call) (any, error) {
	var req returnReq
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	for _, t := range req.Refunds {
		if t.Kind != TenderCash && t.Kind != TenderCard && t.Kind != TenderWallet && t.Kind != TenderOnline {
			return nil, newErr(http.StatusUnprocessableEntity, "tender_kind", fmt.Errorf("refund kind %q", t.Kind))
		}
	}
	mgr, err := c.manager(req.ManagerPIN)
	if err != nil {
		return nil, err
	}
	ret, err := a.l.ReturnItems(c.ctx(), ReturnRequest{Receipt: strings.TrimSpace(req.Receipt), Lines: req.Lines, Blind: req.Blind,
		Channel: req.Channel, Refunds: req.Refunds, Cashier: c.s.user.ID, Manager: mgr})
	if err != nil {
		return nil, err
	}
	a.log.Info("return recorded", "receipt", ret.Receipt, "user", c.s.user.ID, "manager", mgr, "total", ret.Total)
	a.printNow() // its slip is queued
	ans := map[string]any{"return": ret}
	for _, t := range ret.Refunds {
		if t.Kind == TenderCash && a.hasDrawer() {
			if err := a.cfg.Hardware.KickDrawer(c.ctx()); err != nil {
				ans["drawer"] = a.message("drawer_failed", err)
			}
			break
		}
	}
	return ans, nil
}
