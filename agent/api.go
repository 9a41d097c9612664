package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/edgepos/edgepos/agent/web"
)

// APIConfig is the plain configuration of the POS API.
type APIConfig struct {
	Ledger *Ledger
	// Hub feeds GET /api/events; nil serves keep-alives only.
	Hub *Hub
	// Status feeds the status bar; nil reports the outbox only.
	Status StatusSource
	// Hardware opens the drawer, wakes the printer and renders receipt
	// previews; nil makes the drawer endpoint fail and previews plain.
	Hardware Hardware
	// Locale of messages and the UI: "zh-CN" (default) or "en".
	Locale string
	// Currency (ISO 4217) and MinorDigits for the UI's money format;
	// default the ledger's.
	Currency    string
	MinorDigits int
	// SessionTTL is how long a session lives without a request (default 8h).
	SessionTTL time.Duration
	// MaxBody caps a request body (default 64 KiB).
	MaxBody int64
	// KeepAlive is the interval of SSE keep-alive comments (default 15 s).
	KeepAlive time.Duration
	// MaxSessions caps live sessions; the oldest goes first (default 256).
	MaxSessions int
	// WedgeGap is the longest pause between two keys that the UI still
	// takes as one keyboard-wedge scanner burst (default 40 ms); slower
	// typing is a person's.
	WedgeGap time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// API is the POS's local HTTP API and UI. Every state-changing request
// needs a session cookie and the session's CSRF token; manager actions need
// a manager session or a manager PIN in the request.
type API struct {
	cfg     APIConfig
	l       *Ledger
	log     *slog.Logger
	handler http.Handler

	mu       sync.Mutex
	sessions map[string]*session
	// completed remembers idempotency keys already answered, so a
	// double-submitted completion opens the drawer once.
	completed map[string]bool

	done      chan struct{}
	closeOnce sync.Once
}

type session struct {
	id      string
	user    User
	csrf    string
	created time.Time
	expires time.Time
}

const sessionCookie = "edgepos_session"

// NewAPI returns the API over cfg.Ledger.
func NewAPI(cfg APIConfig) (*API, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("new api: ledger is required")
	}
	lc := cfg.Ledger.Config()
	switch cfg.Locale {
	case "":
		cfg.Locale = "zh-CN"
	case "zh-CN", "en":
	default:
		return nil, fmt.Errorf("new api: locale %q is not zh-CN or en", cfg.Locale)
	}
	if cfg.Currency == "" {
		cfg.Currency = lc.Currency
	}
	if cfg.MinorDigits <= 0 {
		cfg.MinorDigits = lc.MinorDigits
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 256
	}
	if cfg.WedgeGap <= 0 {
		cfg.WedgeGap = 40 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, l: cfg.Ledger, log: cfg.Logger.With("store", lc.Store, "terminal", lc.Terminal),
		sessions: map[string]*session{}, completed: map[string]bool{}, done: make(chan struct{})}
	a.handler = a.routes()
	return a, nil
}

// Handler serves /api/... and the UI at /.
func (a *API) Handler() http.Handler { return a.handler }

// Close ends the open event streams (an http.Server's Shutdown waits for
// them otherwise). The API keeps answering other requests.
func (a *API) Close() {
	a.closeOnce.Do(func() { close(a.done) })
}

func (a *API) now() time.Time { return a.cfg.Now().UTC() }

// apiError is an error with the HTTP status and stable code the client sees.
type apiError struct {
	status int
	code   string
	args   []any // for the message template
	err    error
}

func (e *apiError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.err.Error()
	}
	return e.code
}

func (e *apiError) Unwrap() error { return e.err }

func newErr(status int, code string, err error, args ...any) *apiError {
	return &apiError{status: status, code: code, err: err, args: args}
}

// errorBody is what every failed request returns.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Detail  string `json:"detail,omitempty"`
	} `json:"error"`
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := a.classify(err)
	var body errorBody
	body.Error.Code = ae.code
	body.Error.Message = a.message(ae.code, ae.args...)
	if ae.status >= 500 {
		a.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else if ae.err != nil {
		// The ledger's wording names lines, amounts and codes: useful to a
		// supervisor, never secret.
		body.Error.Detail = ae.err.Error()
	}
	writeJSON(w, ae.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// call is one authenticated API request.
type call struct {
	a *API
	w http.ResponseWriter
	r *http.Request
	s *session
}

func (c *call) ctx() context.Context { return c.r.Context() }

// decode reads the JSON body strictly into v: unknown fields, trailing
// data and bodies over MaxBody are refused. An empty body leaves v as is.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("data after the JSON value")
			if terr != nil && isTooLarge(terr) {
				err = terr
			}
		}
	}
	if err != nil {
		if isTooLarge(err) {
			return newErr(http.StatusRequestEntityTooLarge, "too_large", err, c.a.cfg.MaxBody)
		}
		return newErr(http.StatusBadRequest, "bad_json", err)
	}
	return nil
}

func isTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// manager returns the id of the manager approving this request: the one
// whose PIN came with it (field or X-Manager-PIN header), else the
// session's user if a manager. A cashier without a PIN gets needs_manager.
func (c *call) manager(pin string) (string, error) {
	if pin == "" {
		pin = c.r.Header.Get("X-Manager-PIN")
	}
	if pin != "" {
		u, err := c.a.l.AuthenticateManager(c.ctx(), pin)
		if err != nil {
			if errors.Is(err, ErrBadPIN) {
				return "", newErr(http.StatusForbidden, "bad_pin", err)
			}
			if errors.Is(err, ErrLockedOut) {
				c.a.log.Warn("manager PIN locked out on this terminal", "user", c.s.user.ID)
			}
			return "", err
		}
		return u.ID, nil
	}
	if c.s.user.Role == RoleManager {
		return c.s.user.ID, nil
	}
	return "", newErr(http.StatusForbidden, "needs_manager", ErrNeedsManager)
}

// handlerFunc is an authenticated endpoint: it returns the JSON answer or
// an error that writeError maps.
type handlerFunc func(c *call) (any, error)

func (a *API) routes() http.Handler {
	mux := http.NewServeMux()
	pub := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				a.writeError(w, r, err)
			}
		})
	}
	pub("GET /api/config", a.getConfig)
	pub("POST /api/login", a.login)
	pub("POST /api/logout", a.logout)
	pub("GET /api/session", a.getSession)
	auth := func(pattern string, fn handlerFunc) { mux.Handle(pattern, a.authed(fn)) }
	a.saleRoutes(auth)
	a.storeRoutes(auth)
	a.retailRoutes(auth)
	a.slipRoutes(auth)
	mux.Handle("GET /api/events", a.authedRaw(a.events))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, newErr(http.StatusNotFound, "not_found", fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path)))
	})
	static := http.FileServerFS(web.FS())
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
	return a.guard(mux)
}

// guard sets the security headers, caps bodies and refuses cross-origin
// writes before any handler runs.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		if unsafeMethod(r.Method) {
			if !sameOrigin(r) {
				a.writeError(w, r, newErr(http.StatusForbidden, "csrf", fmt.Errorf("origin %q is not this host %q", r.Header.Get("Origin"), r.Host)))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin accepts a request without Origin (not sent by a browser, or a
// same-origin GET) or whose Origin's host is the Host it was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// authed resolves the session, checks the CSRF token on writes, runs fn
// and writes its answer.
func (a *API) authed(fn handlerFunc) http.Handler {
	return a.authedRaw(func(c *call) error {
		v, err := fn(c)
		if err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, v)
		return nil
	})
}

func (a *API) authedRaw(fn func(c *call) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := a.sessionOf(r)
		if s == nil {
			a.writeError(w, r, newErr(http.StatusUnauthorized, "unauthenticated", nil))
			return
		}
		if unsafeMethod(r.Method) && !validCSRF(s, r.Header.Get("X-CSRF-Token")) {
			a.writeError(w, r, newErr(http.StatusForbidden, "csrf", errors.New("missing or wrong X-CSRF-Token")))
			return
		}
		if err := fn(&call{a: a, w: w, r: r, s: s}); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func validCSRF(s *session, tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

// sessionOf returns the live session of r's cookie and slides its expiry,
// or nil.
func (a *API) sessionOf(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[ck.Value]
	if !ok {
		return nil
	}
	if !now.Before(s.expires) {
		delete(a.sessions, s.id)
		return nil
	}
	s.expires = now.Add(a.cfg.SessionTTL)
	cp := *s
	return &cp
}

// alive reports whether session id still exists and has not expired.
func (a *API) alive(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[id]
	return ok && a.now().Before(s.expires)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func (a *API) newSession(u User) *session {
	now := a.now()
	s := &session{id: randomHex(32), user: u, csrf: randomHex(32), created: now, expires: now.Add(a.cfg.SessionTTL)}
	a.mu.Lock()
	defer a.mu.Unlock()
	var oldest *session
	for id, o := range a.sessions {
		if !now.Before(o.expires) {
			delete(a.sessions, id)
		} else if oldest == nil || o.created.Before(oldest.created) {
			oldest = o
		}
	}
	if len(a.sessions) >= a.cfg.MaxSessions && oldest != nil {
		delete(a.sessions, oldest.id)
	}
	a.sessions[s.id] = s
	return s
}

// uiConfig is what the UI needs before and after login.
type uiConfig struct {
	Locale      string `json:"locale"`
	Currency    string `json:"currency"`
	MinorDigits int    `json:"minor_digits"`
	Store       string `json:"store"`
	Terminal    string `json:"terminal"`
	WedgeGapMS  int64  `json:"wedge_gap_ms"`
}

func (a *API) uiConfig() uiConfig {
	lc := a.l.Config()
	return uiConfig{Locale: a.cfg.Locale, Currency: a.cfg.Currency, MinorDigits: a.cfg.MinorDigits, Store: lc.Store, Terminal: lc.Terminal,
		WedgeGapMS: a.cfg.WedgeGap.Milliseconds()}
}

func (a *API) getConfig(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.uiConfig())
	return nil
}

// sessionInfo answers login and GET /api/session.
type sessionInfo struct {
	User    User      `json:"user"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
	Config  uiConfig  `json:"config"`
}

func (a *API) info(s *session) sessionInfo {
	return sessionInfo{User: s.user, CSRF: s.csrf, Expires: s.expires, Config: a.uiConfig()}
}

type loginReq struct {
	User string `json:"user"`
	PIN  string `json:"pin"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req loginReq
	if err := (&call{a: a, w: w, r: r}).decode(&req); err != nil {
		return err
	}
	req.User = strings.TrimSpace(req.User)
	if req.User == "" || req.PIN == "" {
		return newErr(http.StatusBadRequest, "bad_pin", errors.New("user and PIN are required"))
	}
	u, err := a.l.Authenticate(r.Context(), req.User, req.PIN)
	if err != nil {
		a.log.Info("login refused", "user", req.User, "err", err)
		return err
	}
	if old, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, old.Value)
		a.mu.Unlock()
	}
	s := a.newSession(u)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	a.log.Info("login", "user", u.ID, "role", u.Role)
	writeJSON(w, http.StatusOK, a.info(s))
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	if s := a.sessionOf(r); s != nil {
		if !validCSRF(s, r.Header.Get("X-CSRF-Token")) {
			return newErr(http.StatusForbidden, "csrf", errors.New("missing or wrong X-CSRF-Token"))
		}
		a.mu.Lock()
		delete(a.sessions, s.id)
		a.mu.Unlock()
		a.log.Info("logout", "user", s.user.ID)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) error {
	s := a.sessionOf(r)
	if s == nil {
		return newErr(http.StatusUnauthorized, "unauthenticated", nil)
	}
	writeJSON(w, http.StatusOK, a.info(s))
	return nil
}
