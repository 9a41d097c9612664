package hq

import (
	"crypto/rand"
	"encoding/csv"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/sync/wire"
)

// Limits on what the online channel sends HQ's API.
const (
	maxTextField  = 200     // a customer name, a reason
	maxPhone      = 32      // a phone number
	maxRef        = 100     // an idempotency reference
	maxPointsMove = 1 << 40 // points one adjustment may move
)

// retailRoutes are the new-retail endpoints (README "New retail").
func (s *Service) retailRoutes(api *http.ServeMux) {
	h := s.jsonHandler
	api.Handle("PUT /api/members", h(s.apiPutMembers))
	api.Handle("GET /api/members/{id}", h(func(r *http.Request) (any, error) {
		return s.store.Member(r.Context(), r.PathValue("id"), queryLimit(r, 100))
	}))
	api.Handle("POST /api/members/{id}/points", h(s.apiAdjustPoints))
	api.Handle("GET /api/points/conflicts", h(func(r *http.Request) (any, error) { return s.store.PointsConflicts(r.Context()) }))

	api.Handle("POST /api/stores/{store}/pickup-orders", h(s.apiCreatePickup))
	api.Handle("GET /api/stores/{store}/pickup-orders", h(func(r *http.Request) (any, error) {
		store, err := storeParam(r)
		if err != nil {
			return nil, err
		}
		status := r.URL.Query().Get("status")
		switch status {
		case "", PickupOpen, PickupCancelled, PickupPartial, PickupFulfilled:
		default:
			return nil, badRequest("status %q is not open, cancelled, partially_handed_over or fulfilled", status)
		}
		return s.store.PickupOrders(r.Context(), store, status, queryLimit(r, 100))
	}))
	api.Handle("GET /api/stores/{store}/pickup-orders/{id}", h(func(r *http.Request) (any, error) {
		store, err := storeParam(r)
		if err != nil {
			return nil, err
		}
		return s.store.PickupOrder(r.Context(), store, r.PathValue("id"))
	}))
	api.Handle("POST /api/stores/{store}/pickup-orders/{id}/cancel", h(s.apiCancelPickup))
	api.Handle("GET /api/pickup-orders/conflicts", h(func(r *http.Request) (any, error) { return s.store.PickupConflicts(r.Context()) }))

	api.Handle("GET /api/coupons", h(func(r *http.Request) (any, error) {
		state := r.URL.Query().Get("state")
		switch state {
		case "", CouponIssued, CouponRedeemed, CouponRevoked, CouponExpired, CouponConflicted:
		default:
			return nil, badRequest("state %q is not issued, redeemed, revoked, expired or conflict", state)
		}
		return s.store.CouponLedger(r.Context(), state, s.opts.Now(), queryLimit(r, 100))
	}))
	api.HandleFunc("GET /api/stores/{store}/coupon-report", s.apiCouponReport)
	api.Handle("GET /api/online-refunds", h(func(r *http.Request) (any, error) {
		store, day := r.URL.Query().Get("store"), r.URL.Query().Get("day")
		if store != "" && !wire.ValidID(store) {
			return nil, badRequest("store %q is not a valid id", store)
		}
		if day != "" {
			if _, err := time.Parse(time.DateOnly, day); err != nil {
				return nil, badRequest("day %q is not YYYY-MM-DD", day)
			}
		}
		return s.store.OnlineRefunds(r.Context(), store, day)
	}))
}

func storeParam(r *http.Request) (string, error) {
	store := r.PathValue("store")
	if !wire.ValidID(store) {
		return "", badRequest("store %q is not a valid id", store)
	}
	return store, nil
}

// queryLimit reads ?limit= (1..10000), def when absent or bad.
func queryLimit(r *http.Request, def int) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, 10000)
}

func checkText(field, v string, maxLen int) error {
	if len(v) > maxLen || !utf8.ValidString(v) {
		return badRequest("%s: more than %d bytes or not UTF-8", field, maxLen)
	}
	return nil
}

// apiPutMembers creates or updates members (HQ's truth for their points):
// the same body forms as the catalog PUTs. A new member's points are its
// opening balance; an existing member's points move only through
// POST /api/members/{id}/points.
func (s *Service) apiPutMembers(r *http.Request) (any, error) {
	target, items, err := readList[wire.MemberChange](r)
	if err != nil {
		return nil, err
	}
	for _, m := range items {
		if m.MemberID == "" || len(m.MemberID) > wire.MaxMemberIDBytes || strings.ContainsAny(m.MemberID, " \t\r\n") {
			return nil, badRequest("member needs a member_id of 1..%d bytes without spaces", wire.MaxMemberIDBytes)
		}
		if m.Points < 0 || m.OfflineCap < 0 {
			return nil, badRequest("member %s: negative points or offline_cap", m.MemberID)
		}
		for _, f := range []struct {
			name, v string
			n       int
		}{{"phone", m.Phone, maxPhone}, {"name", m.Name, maxTextField}, {"tier", m.Tier, maxTextField}} {
			if err := checkText("member "+m.MemberID+" "+f.name, f.v, f.n); err != nil {
				return nil, err
			}
		}
	}
	es, err := s.store.PutMembers(r.Context(), target, items, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(r.Context(), es); err != nil {
		s.log.Error("publish members", "err", err)
	}
	return feedReply(es), nil
}

// PointsRequest is the body of POST /api/members/{id}/points.
type PointsRequest struct {
	Points int64  `json:"points"` // signed: + earns, - spends
	Ref    string `json:"ref"`    // the caller's idempotency key
	Reason string `json:"reason,omitempty"`
}

func (s *Service) apiAdjustPoints(r *http.Request) (any, error) {
	var req PointsRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if req.Points == 0 || req.Points > maxPointsMove || req.Points < -maxPointsMove {
		return nil, badRequest("points must be non-zero and at most %d either way", int64(maxPointsMove))
	}
	if req.Ref == "" || len(req.Ref) > maxRef {
		return nil, badRequest("ref (the caller's idempotency key) of 1..%d bytes is required", maxRef)
	}
	if err := checkText("reason", req.Reason, maxTextField); err != nil {
		return nil, err
	}
	e, es, err := s.store.AdjustPoints(r.Context(), r.PathValue("id"), req.Points, req.Ref, req.Reason, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(r.Context(), es); err != nil {
		s.log.Error("publish member balance", "err", err)
	}
	return map[string]any{"entry": e, "balance": e.Balance}, nil
}

// newPickupCode is 8 random digits: typed from a phone screen if the QR
// will not scan.
func newPickupCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08d", n.Int64()), nil
}

func (s *Service) apiCreatePickup(r *http.Request) (any, error) {
	store, err := storeParam(r)
	if err != nil {
		return nil, err
	}
	var o wire.PickupOrderChange
	if err := decodeBody(r, &o); err != nil {
		return nil, err
	}
	if o.OrderID == "" {
		o.OrderID = uuid.Must(uuid.NewV7()).String()
	} else if !wire.ValidID(o.OrderID) {
		return nil, badRequest("order_id %q is not a valid id (1-64 of A-Z a-z 0-9 _ . -)", o.OrderID)
	}
	if o.Status == "" {
		o.Status = PickupOpen
	}
	if o.Status != PickupOpen {
		return nil, badRequest("a new pickup order is open")
	}
	if o.Code == "" {
		if o.Code, err = newPickupCode(); err != nil {
			return nil, err
		}
	} else if !wire.ValidPickupCode(o.Code) {
		return nil, badRequest("pickup code %q must be 4..32 of A-Z a-z 0-9 -", o.Code)
	}
	if len(o.Lines) == 0 || len(o.Lines) > wire.MaxPickupLines {
		return nil, badRequest("pickup order needs a code and 1..%d lines", wire.MaxPickupLines)
	}
	seen := map[string]bool{}
	for _, l := range o.Lines {
		if l.SKU == "" || len(l.SKU) > 64 || l.Qty <= 0 {
			return nil, badRequest("pickup line needs a sku of 1..64 bytes and a positive qty")
		}
		if l.Handed != 0 || l.Missing || l.Substitute != "" {
			return nil, badRequest("pickup line %s: handed, missing and substitute are the store's to record", l.SKU)
		}
		if seen[l.SKU] {
			return nil, badRequest("pickup line %s is listed twice", l.SKU)
		}
		seen[l.SKU] = true
	}
	if o.Paid < 0 {
		return nil, badRequest("paid must not be negative")
	}
	for _, f := range []struct {
		name, v string
		n       int
	}{{"customer", o.Customer, maxTextField}, {"phone", o.Phone, maxPhone}, {"member", o.Member, wire.MaxMemberIDBytes}} {
		if err := checkText(f.name, f.v, f.n); err != nil {
			return nil, err
		}
	}
	e, err := s.store.CreatePickupOrder(r.Context(), store, o, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(r.Context(), []FeedEntry{e}); err != nil {
		s.log.Error("publish pickup order", "err", err)
	}
	return map[string]any{"order_id": o.OrderID, "code": o.Code, "qr": wire.PickupQR(store, o.Code), "version": e.Version}, nil
}

func (s *Service) apiCancelPickup(r *http.Request) (any, error) {
	store, err := storeParam(r)
	if err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	e, err := s.store.CancelPickupOrder(r.Context(), store, id, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(r.Context(), []FeedEntry{e}); err != nil {
		s.log.Error("publish pickup cancellation", "err", err)
	}
	return map[string]any{"order_id": id, "status": PickupCancelled, "version": e.Version}, nil
}

// CouponReportColumns is the CSV header of the daily coupon report, in
// the order the columns stay. Money is minor units; times RFC 3339 UTC.
var CouponReportColumns = []string{"business_day", "store", "terminal", "coupon_id", "receipt", "sale_id", "redeemed_at", "amount",
	"status", "reason", "coupon_state", "member", "issued_at", "expires", "revoked_at",
	"winner_store", "winner_terminal", "winner_receipt", "winner_at"}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// WriteCouponReportCSV writes rep as CSV with CouponReportColumns.
func WriteCouponReportCSV(w io.Writer, rep CouponReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CouponReportColumns); err != nil {
		return err
	}
	for _, x := range rep.Rows {
		if err := cw.Write([]string{x.BusinessDay, x.Store, x.Terminal, x.CouponID, x.Receipt, x.SaleID, csvTime(x.RedeemedAt),
			strconv.FormatInt(x.Amount, 10), x.Status, x.Reason, x.CouponState, x.Member, csvTime(x.IssuedAt), csvTime(x.Expires),
			csvTime(x.RevokedAt), x.WinnerStore, x.WinnerTerminal, x.WinnerReceipt, csvTime(x.WinnerAt)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// apiCouponReport answers the daily coupon reconciliation of a store as
// JSON, or CSV for ?format=csv or Accept: text/csv.
func (s *Service) apiCouponReport(w http.ResponseWriter, r *http.Request) {
	s.jsonHandler(func(r *http.Request) (any, error) {
		store, err := storeParam(r)
		if err != nil {
			return nil, err
		}
		day := r.URL.Query().Get("day")
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			return nil, badRequest("day %q is not YYYY-MM-DD", day)
		}
		format := r.URL.Query().Get("format")
		switch format {
		case "":
			if strings.Contains(r.Header.Get("Accept"), "text/csv") {
				format = "csv"
			}
		case "json", "csv":
		default:
			return nil, badRequest("format %q is not json or csv", format)
		}
		rep, err := s.store.CouponReport(r.Context(), store, day, s.opts.Now())
		if err != nil {
			return nil, err
		}
		if format != "csv" {
			return rep, nil
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="coupons-%s-%s.csv"`, store, day))
		if err := WriteCouponReportCSV(w, rep); err != nil {
			s.log.Warn("write coupon report", "store", store, "day", day, "err", err)
		}
		return rawWritten{}, nil
	})(w, r)
}

// rawWritten tells jsonHandler the handler wrote the response itself.
type rawWritten struct{}

// readList parses a PUT of a list for one store or all: either
// {"store": "S1", "items": [...]} or a bare JSON array with an optional
// ?store= (empty = every store). It returns the target (AllStores or a
// store id) and the items, 1..wire.MaxChangesPerMessage of them.
func readList[T any](r *http.Request) (string, []T, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", nil, err
	}
	store := r.URL.Query().Get("store")
	var items []T
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "[") {
		if err := strictUnmarshal(body, &items); err != nil {
			return "", nil, err
		}
	} else {
		var env struct {
			Store string `json:"store"`
			Items []T    `json:"items"`
		}
		if err := strictUnmarshal(body, &env); err != nil {
			return "", nil, err
		}
		if env.Store != "" {
			store = env.Store
		}
		items = env.Items
	}
	if len(items) == 0 {
		return "", nil, badRequest("no items")
	}
	if len(items) > wire.MaxChangesPerMessage {
		return "", nil, badRequest("%d items > %d per request", len(items), wire.MaxChangesPerMessage)
	}
	target := AllStores
	if store != "" && store != AllStores {
		if !wire.ValidID(store) {
			return "", nil, badRequest("store %q is not a valid id", store)
		}
		target = store
	}
	return target, items, nil
}
