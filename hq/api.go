package hq

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/sync/wire"
)

// maxBody bounds an API request body.
const maxBody = 8 << 20

// maxIssue bounds the coupons one request may issue.
const maxIssue = 1000

// API error codes: stable strings clients may switch on.
const (
	CodeUnauthorized = "unauthorized"
	CodeBadRequest   = "bad_request"
	CodeNotFound     = "not_found"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable"
	CodeConflict     = "conflict"
)

type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// handler adapts a func returning (value, error) to http, mapping errors to
// JSON with stable codes.
func (s *Service) jsonHandler(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			var ae *apiError
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &ae):
				writeError(w, ae.status, ae.code, ae.message)
			case errors.As(err, &mbe):
				writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, "request body too large")
			case errors.Is(err, ErrNotFound):
				writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
			case errors.Is(err, ErrConflict):
				writeError(w, http.StatusConflict, CodeConflict, err.Error())
			case errors.Is(err, wire.ErrInvalid), errors.Is(err, wire.ErrTooLarge):
				writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
			default:
				s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
			}
			return
		}
		if _, ok := v.(rawWritten); ok {
			return
		}
		status := http.StatusOK
		if r.Method == http.MethodPost {
			status = http.StatusCreated
		}
		writeJSON(w, status, v)
	}
}

// auth accepts "Authorization: Bearer <token>" with one of the configured
// tokens, compared in constant time.
func (s *Service) auth(next http.Handler) http.Handler {
	tokens := make([][]byte, 0, len(s.opts.APITokens))
	for _, t := range s.opts.APITokens {
		if t != "" {
			tokens = append(tokens, []byte(t))
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing bearer token")
			return
		}
		match := 0
		for _, t := range tokens {
			match |= subtle.ConstantTimeCompare([]byte(got), t)
		}
		if match != 1 {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "invalid token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return badRequest("empty body")
		}
		return badRequest("body: %v", err)
	}
	if dec.More() {
		return badRequest("body: trailing data")
	}
	return nil
}

func (s *Service) newAPI() http.Handler {
	if s.metrics == nil {
		s.metrics = newMetrics(s)
	}
	api := http.NewServeMux()
	h := s.jsonHandler
	api.Handle("GET /api/fleet", h(func(r *http.Request) (any, error) { return s.store.Fleet(r.Context()) }))
	api.Handle("GET /api/sales", h(func(r *http.Request) (any, error) {
		day := r.URL.Query().Get("day")
		if day != "" {
			if _, err := time.Parse(time.DateOnly, day); err != nil {
				return nil, badRequest("day %q is not YYYY-MM-DD", day)
			}
		}
		return s.store.Sales(r.Context(), r.URL.Query().Get("store"), day)
	}))
	api.Handle("GET /api/inventory", h(func(r *http.Request) (any, error) {
		return s.store.Inventory(r.Context(), r.URL.Query().Get("store"))
	}))
	api.Handle("GET /api/coupons/conflicts", h(func(r *http.Request) (any, error) { return s.store.CouponConflicts(r.Context()) }))
	api.Handle("GET /api/coupons/{id}", h(func(r *http.Request) (any, error) { return s.store.Coupon(r.Context(), r.PathValue("id")) }))
	api.Handle("GET /api/quarantine", h(func(r *http.Request) (any, error) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 10000 {
				return nil, badRequest("limit must be 1..10000")
			}
			limit = n
		}
		return s.store.ListQuarantine(r.Context(), limit)
	}))
	api.Handle("POST /api/coupons", h(s.apiIssueCoupons))
	api.Handle("POST /api/coupons/{id}/revoke", h(s.apiRevokeCoupon))
	api.Handle("POST /api/coupon-keys/rotate", h(func(r *http.Request) (any, error) {
		kid, err := s.RotateCouponKey(r.Context())
		if err != nil {
			return nil, err
		}
		return map[string]string{"key_id": kid}, nil
	}))
	api.Handle("GET /api/coupon-keys", h(func(r *http.Request) (any, error) {
		out := []wire.CouponKeyChange{}
		for id, pub := range s.CouponKeys() {
			out = append(out, wire.CouponKeyChange{KeyID: id, PublicKey: pub})
		}
		return out, nil
	}))
	api.Handle("PUT /api/catalog/products", h(putList(s, wire.ChangeProduct, func(p wire.ProductChange) (string, error) {
		if p.SKU == "" || len(p.SKU) > 64 {
			return "", badRequest("product needs a sku of 1..64 characters")
		}
		if p.Unit != "each" && p.Unit != "kg" {
			return "", badRequest("product %s: unit must be each or kg", p.SKU)
		}
		if p.Price < 0 {
			return "", badRequest("product %s: negative price", p.SKU)
		}
		return p.SKU, nil
	})))
	api.Handle("PUT /api/tax-classes", h(putList(s, wire.ChangeTaxClass, func(c wire.TaxClassChange) (string, error) {
		if c.Code == "" || c.RateBP < 0 || c.RateBP > 10000 {
			return "", badRequest("tax class needs a code and rate_bp 0..10000")
		}
		return c.Code, nil
	})))
	api.Handle("PUT /api/stores/{store}/config", h(func(r *http.Request) (any, error) {
		store := r.PathValue("store")
		if !wire.ValidID(store) {
			return nil, badRequest("store %q is not a valid id", store)
		}
		var c wire.StoreConfigChange
		if err := decodeBody(r, &c); err != nil {
			return nil, err
		}
		if c.PointsPerUnit < 0 || c.PointValue < 0 || c.CouponOfflineCap < 0 {
			return nil, badRequest("negative setting")
		}
		data, _ := json.Marshal(c)
		return s.appendAndPublish(r.Context(), []ChangeInput{{Store: store, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert, Data: data, At: s.opts.Now()}})
	}))
	s.retailRoutes(api)

	root := http.NewServeMux()
	root.Handle("/api/", http.MaxBytesHandler(s.auth(api), maxBody))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if !s.Ready() {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"mqtt": s.Ready(), "version": s.opts.Version})
	})
	// /metrics carries no sales data, only counts and lags, so it is served
	// without the operator token, for Prometheus on the HQ network.
	root.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	root.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(dashboardHTML)
	})
	return root
}

// putList handles a PUT of a list of change data for one store or all
// (see readList) and appends one feed entry per item.
func putList[T any](s *Service, kind string, key func(T) (string, error)) func(r *http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		target, items, err := readList[T](r)
		if err != nil {
			return nil, err
		}
		now := s.opts.Now().UTC()
		changes := make([]ChangeInput, 0, len(items))
		for _, it := range items {
			k, err := key(it)
			if err != nil {
				return nil, err
			}
			data, err := json.Marshal(it)
			if err != nil {
				return nil, err
			}
			changes = append(changes, ChangeInput{Store: target, Kind: kind, Key: k, Op: wire.OpUpsert, Data: data, At: now})
		}
		es, err := s.appendAndPublish(r.Context(), changes)
		if err != nil {
			return nil, err
		}
		return feedReply(es), nil
	}
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: %v", err)
	}
	if dec.More() {
		return badRequest("body: trailing data")
	}
	return nil
}

type feedEntryReply struct {
	Version int64  `json:"version"`
	Store   string `json:"store"`
	Kind    string `json:"kind"`
	Key     string `json:"key"`
}

func feedReply(es []FeedEntry) []feedEntryReply {
	out := make([]feedEntryReply, len(es))
	for i, e := range es {
		out[i] = feedEntryReply{e.Version, e.Store, e.Kind, e.Key}
	}
	return out
}

// IssueRequest is the body of POST /api/coupons.
type IssueRequest struct {
	Kind      string    `json:"kind"`
	Value     int64     `json:"value"`
	MaxOff    int64     `json:"max_off,omitempty"`
	MinSpend  int64     `json:"min_spend,omitempty"`
	SKUs      []string  `json:"skus,omitempty"`
	Currency  string    `json:"currency"`
	ValidFrom time.Time `json:"valid_from,omitzero"`
	Expires   time.Time `json:"expires"`
	Member    string    `json:"member,omitempty"`
	Stores    []string  `json:"stores,omitempty"`
	Count     int       `json:"count,omitempty"` // default 1
}

// IssuedToken is one coupon in the reply of POST /api/coupons.
type IssuedToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// IssueReply is the reply of POST /api/coupons.
type IssueReply struct {
	KeyID   string        `json:"key_id"`
	Coupons []IssuedToken `json:"coupons"`
}

func (s *Service) apiIssueCoupons(r *http.Request) (any, error) {
	var req IssueRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	return s.IssueCoupons(r.Context(), req)
}

// IssueCoupons signs req.Count coupons with the current key, records them
// and, for a member's coupons, publishes them to the stores.
func (s *Service) IssueCoupons(ctx context.Context, req IssueRequest) (IssueReply, error) {
	if s.keys == nil {
		return IssueReply{}, &apiError{http.StatusServiceUnavailable, CodeUnavailable, "no coupon key: HQ has no data dir"}
	}
	if req.Count == 0 {
		req.Count = 1
	}
	if req.Count < 0 || req.Count > maxIssue {
		return IssueReply{}, badRequest("count must be 1..%d", maxIssue)
	}
	for _, st := range req.Stores {
		if !wire.ValidID(st) {
			return IssueReply{}, badRequest("store %q is not a valid id", st)
		}
	}
	now := s.opts.Now().UTC()
	if req.ValidFrom.IsZero() {
		req.ValidFrom = now
	}
	kid, key, ok := s.keys.signer()
	if !ok {
		return IssueReply{}, &apiError{http.StatusServiceUnavailable, CodeUnavailable, "no current coupon key"}
	}
	reply := IssueReply{KeyID: kid, Coupons: make([]IssuedToken, 0, req.Count)}
	issued := make([]IssuedCoupon, 0, req.Count)
	var changes []ChangeInput
	for range req.Count {
		id, err := uuid.NewV7()
		if err != nil {
			return IssueReply{}, err
		}
		c := wire.Coupon{ID: id.String(), KeyID: kid, Kind: req.Kind, Value: req.Value, MaxOff: req.MaxOff, MinSpend: req.MinSpend,
			SKUs: req.SKUs, Currency: req.Currency, Member: req.Member, NotBefore: req.ValidFrom.UTC(), Expires: req.Expires.UTC(), Stores: req.Stores}
		tok, err := wire.SignCoupon(key, c)
		if err != nil {
			return IssueReply{}, badRequest("%v", err)
		}
		issued = append(issued, IssuedCoupon{Coupon: c, Token: tok, IssuedAt: now})
		reply.Coupons = append(reply.Coupons, IssuedToken{ID: c.ID, Token: tok})
		if req.Member != "" {
			data, _ := json.Marshal(wire.CouponChange{CouponID: c.ID, Member: req.Member, Token: tok})
			targets := req.Stores
			if len(targets) == 0 {
				targets = []string{AllStores}
			}
			for _, st := range targets {
				changes = append(changes, ChangeInput{Store: st, Kind: wire.ChangeCoupon, Key: c.ID, Op: wire.OpUpsert, Data: data, At: now})
			}
		}
	}
	es, err := s.store.IssueCoupons(ctx, issued, changes)
	if err != nil {
		return IssueReply{}, err
	}
	if err := s.publishEntries(ctx, es); err != nil {
		s.log.Error("publish member coupons", "err", err)
	}
	return reply, nil
}

func (s *Service) apiRevokeCoupon(r *http.Request) (any, error) {
	var req struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
	}
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return nil, badRequest("coupon id is not a UUID")
	}
	e, err := s.store.RevokeCoupon(r.Context(), id, req.Reason, s.opts.Now())
	if err != nil {
		return nil, err
	}
	if err := s.publishEntries(r.Context(), []FeedEntry{e}); err != nil {
		s.log.Error("publish revocation", "err", err)
	}
	return feedReply([]FeedEntry{e})[0], nil
}
