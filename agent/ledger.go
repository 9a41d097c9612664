// Package agent is the store terminal's domain: catalog, carts, pricing and
// tax, tenders, coupons, returns, shifts, inventory and users (the Ledger),
// and the local HTTP API and UI that cashiers use.
//
// Every business change is written together with its outbox event in one
// SQLite transaction (localdb), so a sale the cashier saw completed survives
// kill -9 and power loss and reaches HQ exactly once. An open cart is held in
// memory until it is suspended or completed: that keeps a sale to a single
// durable commit.
package agent

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/localdb"
)

// Errors of the ledger. HTTP maps each to a stable code (see api.go).
var (
	ErrNotFound          = errors.New("not found")
	ErrUnknownCode       = errors.New("unknown barcode")
	ErrBadQuantity       = errors.New("quantity must be positive")
	ErrBadPrice          = errors.New("price must not be negative")
	ErrBadAmount         = errors.New("amount must be positive")
	ErrInactive          = errors.New("product is not for sale")
	ErrSaleState         = errors.New("sale is not in a state that allows this")
	ErrEmptySale         = errors.New("sale has no lines")
	ErrTenderShort       = errors.New("tenders do not cover the total")
	ErrChangeNotCash     = errors.New("change can only be given from cash")
	ErrRefundTooLarge    = errors.New("refund exceeds what was paid")
	ErrReturnTooMany     = errors.New("return exceeds what was sold and not yet returned")
	ErrNeedsManager      = errors.New("a manager must approve this")
	ErrNotManager        = errors.New("user is not a manager")
	ErrBadPIN            = errors.New("wrong user or PIN")
	ErrLockedOut         = errors.New("too many wrong PINs: locked for a while")
	ErrPINFormat         = errors.New("PIN must be 4 to 12 digits")
	ErrShiftOpen         = errors.New("a shift is already open")
	ErrNoShift           = errors.New("no shift is open")
	ErrDuplicateKey      = errors.New("idempotency key was used for another sale")
	ErrCouponSignature   = errors.New("coupon signature is not valid")
	ErrCouponUnknownKey  = errors.New("coupon signed by a key this store does not know")
	ErrCouponExpired     = errors.New("coupon is expired or not yet valid")
	ErrCouponUsed        = errors.New("coupon was already redeemed")
	ErrCouponMinSpend    = errors.New("basket is below the coupon's minimum spend")
	ErrCouponNotEligible = errors.New("coupon does not apply to these items")
	ErrCouponRevoked     = errors.New("coupon was revoked by HQ")
	ErrCouponCurrency    = errors.New("coupon is for another currency")
	ErrCouponStore       = errors.New("coupon is not valid in this store")
)

// LedgerConfig is the plain configuration a Ledger takes.
type LedgerConfig struct {
	Store, Terminal string
	Currency        string // ISO 4217
	MinorDigits     int
	TaxInclusive    bool
	Location        *time.Location // business day and receipts; default UTC
	// CouponOfflineCap is the value of coupons that may be redeemed while
	// HQ has not yet acknowledged them; past it a manager must approve.
	// 0 means no cap.
	CouponOfflineCap int64
	// CouponKeys are bootstrap HQ public keys by key id, besides those the
	// change feed brings.
	CouponKeys map[string]ed25519.PublicKey
	Layouts    []barcode.Layout
	// BcryptCost for PIN hashes; default bcrypt.DefaultCost.
	BcryptCost int
	// MaxPINFailures before a user is locked out (default 5) and for how
	// long (default 5m).
	MaxPINFailures int
	LockoutFor     time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	// OnCommit is called after every transaction that appended outbox
	// events (the sync link's Notify).
	OnCommit func()
}

// Ledger is the store's domain over its database.
type Ledger struct {
	db     *localdb.DB
	cfg    LedgerConfig
	parser *barcode.Parser
	log    *slog.Logger

	mu    sync.Mutex
	carts map[string]*Sale // open carts by sale id

	stmts *stmts
	// receipts hands out receipt numbers (receiptno.go); guarded by mu.
	receipts receiptSeq

	shiftMu    sync.Mutex
	shiftID    string
	shiftKnown bool
	// closedDay is the last business day a Z report closed ("" if none),
	// read once (dayMu guards it).
	dayMu     sync.Mutex
	closedDay string
	dayKnown  bool
	// mgrFails counts wrong manager PINs (manager approval has no user id to
	// lock, so the terminal slows guessing down instead).
	mgrFails  int
	mgrLocked time.Time
}

// NewLedger returns a Ledger over db.
func NewLedger(db *localdb.DB, cfg LedgerConfig) (*Ledger, error) {
	if cfg.Store == "" || cfg.Terminal == "" {
		return nil, errors.New("new ledger: store and terminal ids are required")
	}
	if cfg.Currency == "" {
		cfg.Currency = "CNY"
	}
	if cfg.MinorDigits == 0 {
		cfg.MinorDigits = 2
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MaxPINFailures <= 0 {
		cfg.MaxPINFailures = 5
	}
	if cfg.LockoutFor <= 0 {
		cfg.LockoutFor = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := barcode.NewParser(cfg.Layouts)
	if err != nil {
		return nil, fmt.Errorf("new ledger: %w", err)
	}
	l := &Ledger{db: db, cfg: cfg, parser: p, log: cfg.Logger.With("store", cfg.Store, "terminal", cfg.Terminal), carts: map[string]*Sale{},
		receipts: receiptSeq{terminal: cfg.Terminal}}
	if l.stmts, err = prepare(context.Background(), db.Write, db.Read); err != nil {
		return nil, fmt.Errorf("new ledger: %w", err)
	}
	return l, nil
}

// DB is the ledger's database.
func (l *Ledger) DB() *localdb.DB { return l.db }

// Config returns the ledger's configuration.
func (l *Ledger) Config() LedgerConfig { return l.cfg }

func (l *Ledger) now() time.Time { return l.cfg.Now().UTC() }

// businessDay is the store-local date of t.
func (l *Ledger) businessDay(t time.Time) string { return t.In(l.cfg.Location).Format(time.DateOnly) }

// write runs fn in a write transaction and tells the sync link afterwards.
func (l *Ledger) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := l.db.WriteTx(ctx, fn); err != nil {
		return err
	}
	if l.cfg.OnCommit != nil {
		l.cfg.OnCommit()
	}
	return nil
}

// stmts are the statements of the hot path (completing a sale), prepared
// once on the single write connection: modernc's prepare costs more than
// the statement itself.
type stmts struct {
	insSale, insPrint, insRedeem *sql.Stmt
	// insLines[n] and updStock[n] write n rows in one statement
	// (n = 1..maxRows): a sale's lines are one round trip, not one per
	// line.
	insLines, updStock [maxRows + 1]*sql.Stmt
	// productBySKU, productByCode and productByPLU run on the read pool.
	productBySKU, productByCode, productByPLU *sql.Stmt
}

// maxRows is the most rows one multi-row statement writes; longer sales
// take several.
const maxRows = 8

const productCols = `SELECT p.sku, p.name, p.unit, p.tax_class, p.price, t.rate_bp, p.active
		FROM products p JOIN tax_classes t ON t.code = p.tax_class WHERE `

func prepare(ctx context.Context, db, read *sql.DB) (*stmts, error) {
	s := &stmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.insSale, `INSERT INTO sales(id, state, receipt, complete_key, cashier, member, shift_id, business_day, created_at, completed_at,
			subtotal, discount, tax, total, paid, change_due, tenders) VALUES(?, 'completed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET state = 'completed', receipt = excluded.receipt, complete_key = excluded.complete_key,
			cashier = excluded.cashier, member = excluded.member, shift_id = excluded.shift_id, business_day = excluded.business_day,
			completed_at = excluded.completed_at, subtotal = excluded.subtotal, discount = excluded.discount, tax = excluded.tax,
			total = excluded.total, paid = excluded.paid, change_due = excluded.change_due, tenders = excluded.tenders, cart = NULL
			WHERE sales.state = 'suspended'`},
		{&s.insPrint, insQueueSQL},
		{&s.insRedeem, `INSERT INTO coupon_redemptions(coupon_id, key_id, sale_id, amount, manager, outbox_seq, redeemed_at) VALUES(?, ?, ?, ?, ?, ?, ?)`},
	} {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			return nil, fmt.Errorf("prepare %.40s…: %w", p.q, err)
		}
		*p.dst = st
	}
	for n := 1; n <= maxRows; n++ {
		for _, p := range []struct {
			dst  **sql.Stmt
			head string
			row  string
			tail string
		}{
			{&s.insLines[n], "INSERT INTO sale_lines(sale_id, line, sku, name, unit, qty, unit_price, gross, discount, tax, total, override_by, tax_bp) VALUES", "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ""},
			{&s.updStock[n], "INSERT INTO inventory(sku, on_hand) VALUES", "(?, ?)", " ON CONFLICT(sku) DO UPDATE SET on_hand = inventory.on_hand + excluded.on_hand RETURNING sku, on_hand"},
		} {
			q := p.head + strings.Repeat(p.row+", ", n-1) + p.row + p.tail
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("prepare %.40s…: %w", q, err)
			}
			*p.dst = st
		}
	}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.productBySKU, productCols + "p.sku = ?"},
		{&s.productByCode, productCols + "p.sku = (SELECT sku FROM barcodes WHERE code = ?)"},
		{&s.productByPLU, productCols + "p.plu = ?"},
	} {
		st, err := read.PrepareContext(ctx, p.q)
		if err != nil {
			return nil, fmt.Errorf("prepare %.40s…: %w", p.q, err)
		}
		*p.dst = st
	}
	return s, nil
}

// Close releases the prepared statements.
func (l *Ledger) Close() error {
	var errs []error
	all := []*sql.Stmt{l.stmts.insSale, l.stmts.insPrint, l.stmts.insRedeem,
		l.stmts.productBySKU, l.stmts.productByCode, l.stmts.productByPLU}
	for n := 1; n <= maxRows; n++ {
		all = append(all, l.stmts.insLines[n], l.stmts.updStock[n])
	}
	for _, st := range all {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
