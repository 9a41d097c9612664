package agent

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/sync/wire"
)

// Sale states.
const (
	StateOpen      = "open"
	StateSuspended = "suspended"
	StateCompleted = "completed"
	StateVoided    = "voided"
)

// Tender kinds.
const (
	TenderCash   = "cash"
	TenderCard   = "card"
	TenderWallet = "wallet"
	TenderPoints = "points"
	TenderOnline = "online"
)

// Line is one line of a sale. Qty is thousandths; money is minor units.
type Line struct {
	Line         int      `json:"line"`
	SKU          string   `json:"sku"`
	Name         string   `json:"name"`
	Unit         string   `json:"unit"`
	Qty          int64    `json:"qty"`
	UnitPrice    int64    `json:"unit_price"`
	BasePrice    int64    `json:"base_price"`
	FixedGross   int64    `json:"fixed_gross,omitempty"` // from a price-embedded scale code
	TaxClass     string   `json:"tax_class"`
	TaxBP        int64    `json:"tax_bp"`
	ItemDiscount Discount `json:"item_discount,omitzero"`
	OverrideBy   string   `json:"override_by,omitempty"`
	Voided       bool     `json:"voided,omitempty"`
	ReturnedQty  int64    `json:"returned_qty,omitempty"`

	Gross    int64 `json:"gross"`
	Discount int64 `json:"discount"`
	Tax      int64 `json:"tax"`
	Total    int64 `json:"total"`
}

// Tender is a payment on a sale.
type Tender struct {
	Kind   string `json:"kind"`
	Amount int64  `json:"amount"`
	Ref    string `json:"ref,omitempty"`
}

// AppliedCoupon is a verified coupon on a cart.
type AppliedCoupon struct {
	CouponID string      `json:"coupon_id"`
	KeyID    string      `json:"key_id"`
	Token    string      `json:"token"`
	Amount   int64       `json:"amount"`
	Manager  string      `json:"manager,omitempty"`
	Coupon   wire.Coupon `json:"coupon"`
	Problem  string      `json:"problem,omitempty"` // why it no longer applies (basket changed)
}

// Sale is a cart or a completed sale.
type Sale struct {
	ID           string    `json:"id"`
	State        string    `json:"state"`
	Cashier      string    `json:"cashier"`
	Member       string    `json:"member,omitempty"`
	ShiftID      string    `json:"shift_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	Lines        []Line    `json:"lines"`
	SaleDiscount Discount  `json:"sale_discount,omitzero"`
	// SaleDiscountAmount is what SaleDiscount took off, spread over lines.
	SaleDiscountAmount int64           `json:"sale_discount_amount,omitempty"`
	Coupons            []AppliedCoupon `json:"coupons,omitempty"`
	Tenders            []Tender        `json:"tenders"`

	Subtotal  int64 `json:"subtotal"`
	Discount  int64 `json:"discount"`
	Tax       int64 `json:"tax"`
	Total     int64 `json:"total"`
	Paid      int64 `json:"paid"`
	Due       int64 `json:"due"`
	ChangeDue int64 `json:"change_due"`
	Refunded  int64 `json:"refunded,omitempty"`

	Receipt     string    `json:"receipt,omitempty"`
	BusinessDay string    `json:"business_day,omitempty"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	PrintState  string    `json:"print_state,omitempty"`

	// Points the completed sale earned and spent; PointsPending says the
	// store did not know the member, so HQ attaches the points later.
	PointsEarned  int64 `json:"points_earned,omitempty"`
	PointsSpent   int64 `json:"points_spent,omitempty"`
	PointsPending bool  `json:"points_pending,omitempty"`
}

// recompute prices the cart by the rule in pricing.go.
func (l *Ledger) recompute(s *Sale) {
	var live []int
	for i := range s.Lines {
		ln := &s.Lines[i]
		ln.Gross, ln.Discount, ln.Tax, ln.Total = 0, 0, 0, 0
		if ln.Voided {
			continue
		}
		live = append(live, i)
		if ln.FixedGross > 0 {
			ln.Gross = ln.FixedGross
		} else {
			ln.Gross = mulDivHalfUp(ln.UnitPrice, ln.Qty, 1000)
		}
		ln.Discount = ln.ItemDiscount.of(ln.Gross)
	}
	cost := func() []int64 {
		c := make([]int64, len(live))
		for k, i := range live {
			c[k] = s.Lines[i].Gross - s.Lines[i].Discount
		}
		return c
	}
	take := func(shares []int64) {
		for k, i := range live {
			s.Lines[i].Discount += shares[k]
		}
	}
	if s.SaleDiscount.Kind != "" {
		c := cost()
		var sum int64
		for _, v := range c {
			sum += v
		}
		s.SaleDiscountAmount = s.SaleDiscount.of(sum)
		take(spread(s.SaleDiscountAmount, c, nil))
	} else {
		s.SaleDiscountAmount = 0
	}
	for ci := range s.Coupons {
		ac := &s.Coupons[ci]
		ac.Amount, ac.Problem = 0, ""
		c := cost()
		elig := make([]bool, len(live))
		var base int64
		for k, i := range live {
			elig[k] = couponCovers(ac.Coupon, s.Lines[i].SKU)
			if elig[k] {
				base += c[k]
			}
		}
		if base == 0 {
			ac.Problem = ErrCouponNotEligible.Error()
			continue
		}
		if base < ac.Coupon.MinSpend {
			ac.Problem = fmt.Sprintf("%s: needs %d, basket has %d", ErrCouponMinSpend, ac.Coupon.MinSpend, base)
			continue
		}
		var off int64
		if ac.Coupon.Kind == wire.CouponPercentOff {
			off = mulDivHalfUp(base, ac.Coupon.Value, 10000)
			if ac.Coupon.MaxOff > 0 {
				off = min(off, ac.Coupon.MaxOff)
			}
		} else {
			off = ac.Coupon.Value
		}
		shares := spread(off, c, elig)
		for _, v := range shares {
			ac.Amount += v
		}
		take(shares)
	}
	s.Subtotal, s.Discount, s.Tax, s.Total = 0, 0, 0, 0
	for _, i := range live {
		ln := &s.Lines[i]
		ln.Tax, ln.Total = lineTax(ln.Gross-ln.Discount, ln.TaxBP, l.cfg.TaxInclusive)
		s.Subtotal += ln.Gross
		s.Discount += ln.Discount
		s.Tax += ln.Tax
		s.Total += ln.Total
	}
	s.Paid = 0
	for _, t := range s.Tenders {
		s.Paid += t.Amount
	}
	s.Due = max(s.Total-s.Paid, 0)
	s.ChangeDue = max(s.Paid-s.Total, 0)
}

func couponCovers(c wire.Coupon, sku string) bool {
	if len(c.SKUs) == 0 {
		return true
	}
	for _, s := range c.SKUs {
		if s == sku {
			return true
		}
	}
	return false
}

// cart returns the open cart id; callers hold l.mu.
func (l *Ledger) cart(id string) (*Sale, error) {
	s, ok := l.carts[id]
	if !ok {
		return nil, fmt.Errorf("sale %s: %w (no open cart with that id)", id, ErrNotFound)
	}
	return s, nil
}

// edit applies fn to an open cart and reprices it. The cart is only
// changed if fn succeeds.
func (l *Ledger) edit(id string, fn func(s *Sale) error) (*Sale, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.cart(id)
	if err != nil {
		return nil, err
	}
	cp := s.clone()
	if err := fn(cp); err != nil {
		return nil, err
	}
	l.recompute(cp)
	l.carts[id] = cp
	return cp.clone(), nil
}

func (s *Sale) clone() *Sale {
	c := *s
	c.Lines = append([]Line(nil), s.Lines...)
	c.Coupons = append([]AppliedCoupon(nil), s.Coupons...)
	c.Tenders = append([]Tender(nil), s.Tenders...)
	return &c
}

// OpenSale starts a cart for cashier.
func (l *Ledger) OpenSale(ctx context.Context, cashier string) (*Sale, error) {
	if cashier == "" {
		return nil, errors.New("open sale: cashier required")
	}
	shift, _ := l.openShiftID(ctx)
	s := &Sale{ID: uuid.Must(uuid.NewV7()).String(), State: StateOpen, Cashier: cashier, ShiftID: shift, CreatedAt: l.now(), Lines: []Line{}, Tenders: []Tender{}}
	l.mu.Lock()
	l.carts[s.ID] = s
	l.mu.Unlock()
	return s.clone(), nil
}

// OpenCarts lists the carts open on this terminal.
func (l *Ledger) OpenCarts() []*Sale {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Sale, 0, len(l.carts))
	for _, s := range l.carts {
		out = append(out, s.clone())
	}
	return out
}

// product is a catalog row.
type product struct {
	SKU, Name, Unit, TaxClass string
	Price, TaxBP              int64
	Active                    bool
}

func (l *Ledger) productBy(ctx context.Context, st *sql.Stmt, arg any) (product, error) {
	var p product
	err := st.QueryRowContext(ctx, arg).Scan(&p.SKU, &p.Name, &p.Unit, &p.TaxClass, &p.Price, &p.TaxBP, &p.Active)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// AddItem adds qty (thousandths) of sku to a cart.
func (l *Ledger) AddItem(ctx context.Context, saleID, sku string, qty int64) (*Sale, error) {
	if qty <= 0 {
		return nil, fmt.Errorf("add %s: %w (got %d)", sku, ErrBadQuantity, qty)
	}
	p, err := l.productBy(ctx, l.stmts.productBySKU, sku)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("add %s: %w", sku, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", sku, err)
	}
	return l.addProduct(saleID, p, qty, 0)
}

func (l *Ledger) addProduct(saleID string, p product, qty, fixedGross int64) (*Sale, error) {
	if !p.Active {
		return nil, fmt.Errorf("add %s: %w", p.SKU, ErrInactive)
	}
	if p.Unit == "each" && fixedGross == 0 && qty%1000 != 0 {
		return nil, fmt.Errorf("add %s: %w: %s is sold by the piece, quantity must be whole", p.SKU, ErrBadQuantity, p.Name)
	}
	return l.edit(saleID, func(s *Sale) error {
		// Scanning the same piece again adds to its line.
		if p.Unit == "each" && fixedGross == 0 {
			for i := range s.Lines {
				ln := &s.Lines[i]
				if ln.SKU == p.SKU && !ln.Voided && ln.FixedGross == 0 && ln.OverrideBy == "" {
					ln.Qty += qty
					return nil
				}
			}
		}
		s.Lines = append(s.Lines, Line{Line: len(s.Lines) + 1, SKU: p.SKU, Name: p.Name, Unit: p.Unit, Qty: qty,
			UnitPrice: p.Price, BasePrice: p.Price, FixedGross: fixedGross, TaxClass: p.TaxClass, TaxBP: p.TaxBP})
		return nil
	})
}

// Scan is ScanToSale.
func (l *Ledger) Scan(ctx context.Context, saleID, raw string) (*Sale, error) {
	return l.ScanToSale(ctx, saleID, raw)
}

// ScanToSale parses a scanned code and adds what it names to a cart: a
// GTIN matches a barcode row (stored as GTIN-14, so UPC-A and EAN-13 forms
// of one code match); a variable-measure code matches a product by PLU,
// weighed goods taking their quantity from the code and price-embedded
// labels their line total. An unknown code returns ErrUnknownCode and a
// malformed one the barcode package's error (barcode.ErrMalformed,
// barcode.ErrCheckDigit); either way the cart is untouched.
func (l *Ledger) ScanToSale(ctx context.Context, saleID, raw string) (*Sale, error) {
	c, err := l.parser.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	var p product
	switch c.Kind {
	case barcode.KindGTIN:
		p, err = l.productBy(ctx, l.stmts.productByCode, c.GTIN)
	case barcode.KindOther:
		p, err = l.productBy(ctx, l.stmts.productByCode, c.Value)
	default:
		p, err = l.productBy(ctx, l.stmts.productByPLU, c.PLU)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("scan %s: %w", c.Raw, ErrUnknownCode)
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", c.Raw, err)
	}
	switch c.Kind {
	case barcode.KindWeight:
		if p.Unit != "kg" {
			return nil, fmt.Errorf("scan %s: %w: weight code for %s, which is sold by the piece", c.Raw, ErrUnknownCode, p.SKU)
		}
		return l.addProduct(saleID, p, c.Qty, 0)
	case barcode.KindPrice:
		qty := c.Qty
		if qty == 0 {
			qty = 1000
		}
		return l.addProduct(saleID, p, qty, c.Price)
	}
	return l.addProduct(saleID, p, 1000, 0)
}

// SetQty changes a line's quantity.
func (l *Ledger) SetQty(saleID string, line int, qty int64) (*Sale, error) {
	if qty <= 0 {
		return nil, fmt.Errorf("set quantity: %w (got %d)", ErrBadQuantity, qty)
	}
	return l.edit(saleID, func(s *Sale) error {
		ln, err := liveLine(s, line)
		if err != nil {
			return err
		}
		if ln.FixedGross > 0 {
			return fmt.Errorf("set quantity: %w: a scale label's price is fixed", ErrSaleState)
		}
		if ln.Unit == "each" && qty%1000 != 0 {
			return fmt.Errorf("set quantity: %w: whole pieces only", ErrBadQuantity)
		}
		ln.Qty = qty
		return nil
	})
}

func liveLine(s *Sale, line int) (*Line, error) {
	if line < 1 || line > len(s.Lines) || s.Lines[line-1].Voided {
		return nil, fmt.Errorf("line %d: %w", line, ErrNotFound)
	}
	return &s.Lines[line-1], nil
}

// VoidLine takes a line off the cart.
func (l *Ledger) VoidLine(saleID string, line int) (*Sale, error) {
	return l.edit(saleID, func(s *Sale) error {
		ln, err := liveLine(s, line)
		if err != nil {
			return err
		}
		ln.Voided = true
		return nil
	})
}

// SetItemDiscount sets a line's discount.
func (l *Ledger) SetItemDiscount(saleID string, line int, d Discount) (*Sale, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	return l.edit(saleID, func(s *Sale) error {
		ln, err := liveLine(s, line)
		if err != nil {
			return err
		}
		ln.ItemDiscount = d
		return nil
	})
}

// SetSaleDiscount sets the discount on the whole cart.
func (l *Ledger) SetSaleDiscount(saleID string, d Discount) (*Sale, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	return l.edit(saleID, func(s *Sale) error { s.SaleDiscount = d; return nil })
}

// OverridePrice sets a line's unit price; manager is a manager the caller
// authenticated. The override is audited at once.
func (l *Ledger) OverridePrice(ctx context.Context, saleID string, line int, price int64, manager string) (*Sale, error) {
	if price < 0 {
		return nil, fmt.Errorf("override price: %w (got %d)", ErrBadPrice, price)
	}
	if manager == "" {
		return nil, fmt.Errorf("override price: %w", ErrNeedsManager)
	}
	var cashier, sku string
	var old int64
	s, err := l.edit(saleID, func(s *Sale) error {
		ln, err := liveLine(s, line)
		if err != nil {
			return err
		}
		cashier, sku, old = s.Cashier, ln.SKU, ln.UnitPrice
		ln.UnitPrice, ln.FixedGross, ln.OverrideBy = price, 0, manager
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := l.Audit(ctx, "price_override", cashier, manager, saleID, fmt.Sprintf("line %d %s: %d → %d", line, sku, old, price)); err != nil {
		return nil, err
	}
	return s, nil
}

// AttachMember attaches a member (by member QR, id, or phone when no id
// matches) to a cart. A member the store has not heard of is attached as
// given: offline, the sale goes on without points here and HQ attaches
// them later. The member cannot change once points are tendered.
func (l *Ledger) AttachMember(ctx context.Context, saleID, member string) (*Sale, error) {
	member, err := normalizeMember(member)
	if err != nil {
		return nil, fmt.Errorf("attach member: %w", err)
	}
	if member != "" {
		if m, err := l.FindMember(ctx, member); err == nil {
			member = m.ID
		} else if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("attach member: %w", err)
		}
	}
	return l.edit(saleID, func(s *Sale) error {
		if p, _ := pointsSpent(s.Tenders); p > 0 && s.Member != member {
			return fmt.Errorf("attach member: %w: the member's points are tendered; remove the payments first", ErrSaleState)
		}
		s.Member = member
		return nil
	})
}

// AddTender adds a payment to a cart.
func (l *Ledger) AddTender(saleID string, t Tender) (*Sale, error) {
	if t.Amount <= 0 {
		return nil, fmt.Errorf("tender: %w (got %d)", ErrBadAmount, t.Amount)
	}
	switch t.Kind {
	case TenderCash:
	case TenderCard, TenderWallet:
		if strings.TrimSpace(t.Ref) == "" {
			return nil, fmt.Errorf("tender %s: the payment terminal's reference is required", t.Kind)
		}
	default:
		return nil, fmt.Errorf("tender: kind %q is not cash, card or wallet", t.Kind)
	}
	return l.edit(saleID, func(s *Sale) error { s.Tenders = append(s.Tenders, t); return nil })
}

// ClearTenders removes every payment from a cart.
func (l *Ledger) ClearTenders(saleID string) (*Sale, error) {
	return l.edit(saleID, func(s *Sale) error { s.Tenders = nil; return nil })
}

// SuspendSale parks a cart durably; ResumeSale brings it back.
func (l *Ledger) SuspendSale(ctx context.Context, saleID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, err := l.cart(saleID)
	if err != nil {
		return err
	}
	if len(s.Tenders) > 0 {
		return fmt.Errorf("suspend: %w: remove the payments first", ErrSaleState)
	}
	cart, err := json.Marshal(s)
	if err != nil {
		return err
	}
	err = l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sales(id, state, cashier, member, created_at, total, cart) VALUES(?, 'suspended', ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET cart = excluded.cart, total = excluded.total, member = excluded.member WHERE sales.state = 'suspended'`,
			s.ID, s.Cashier, nullStr(s.Member), s.CreatedAt, s.Total, string(cart))
		return err
	})
	if err != nil {
		return fmt.Errorf("suspend %s: %w", saleID, err)
	}
	delete(l.carts, saleID)
	return nil
}

// ListSuspended lists parked carts.
func (l *Ledger) ListSuspended(ctx context.Context) ([]*Sale, error) {
	rows, err := l.db.Read.QueryContext(ctx, "SELECT cart FROM sales WHERE state = 'suspended' ORDER BY created_at")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Sale
	for rows.Next() {
		var cart string
		if err := rows.Scan(&cart); err != nil {
			return nil, err
		}
		s := &Sale{}
		if err := json.Unmarshal([]byte(cart), s); err != nil {
			return nil, err
		}
		if _, open := l.carts[s.ID]; !open {
			s.State = StateSuspended
			out = append(out, s)
		}
	}
	return out, rows.Err()
}

// ResumeSale reopens a suspended cart on this terminal.
func (l *Ledger) ResumeSale(ctx context.Context, saleID string) (*Sale, error) {
	var cart string
	err := l.db.Read.QueryRowContext(ctx, "SELECT cart FROM sales WHERE id = ? AND state = 'suspended'", saleID).Scan(&cart)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("resume %s: %w", saleID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	s := &Sale{}
	if err := json.Unmarshal([]byte(cart), s); err != nil {
		return nil, fmt.Errorf("resume %s: %w", saleID, err)
	}
	s.State = StateOpen
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recompute(s)
	l.carts[s.ID] = s
	return s.clone(), nil
}

// CancelSale drops an open cart (nothing was recorded yet) and a
// suspended one.
func (l *Ledger) CancelSale(ctx context.Context, saleID string) error {
	l.mu.Lock()
	delete(l.carts, saleID)
	l.mu.Unlock()
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM sales WHERE id = ? AND state = 'suspended'", saleID)
		return err
	})
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CompleteSale records a paid cart: sale, lines, tenders, coupon
// redemptions, stock, receipt number, print job and outbox events in ONE
// transaction. Completing the same sale again (a double click, a retried
// request) returns the same sale and receipt; key, if given, is an
// idempotency key that must not have completed another sale.
//
// The key is looked up only when the cart is gone (a retry after the sale
// completed) or when completing fails, the sale's own insert included
// (the unique index on complete_key refuses a used key and the transaction
// rolls back): a first completion, nearly every one, skips the look-up on
// the read pool. A used key wins over any other error, as before.
func (l *Ledger) CompleteSale(ctx context.Context, saleID, key string) (done *Sale, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		if err != nil {
			if d, used, kerr := l.completedByKey(ctx, saleID, key); used {
				done, err = d, kerr
			}
		}
	}()
	s, ok := l.carts[saleID]
	if !ok {
		if done, used, err := l.completedByKey(ctx, saleID, key); used {
			return done, err
		}
		done, err := l.getStored(ctx, saleID)
		if err == nil && (done.State == StateCompleted || done.State == StateVoided) {
			return done, nil
		}
		return nil, fmt.Errorf("complete %s: %w", saleID, ErrNotFound)
	}
	s = s.clone()
	l.recompute(s)
	if err := l.checkPayable(ctx, s); err != nil {
		return nil, fmt.Errorf("complete %s: %w", saleID, err)
	}

	now := l.now()
	day, err := l.dayFor(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("complete %s: %w", saleID, err)
	}
	s.CompletedAt, s.BusinessDay, s.State = now, day, StateCompleted
	if s.ShiftID == "" {
		s.ShiftID, _ = l.openShiftID(ctx)
	}
	tenders, err := tendersJSON(s.Tenders)
	if err != nil {
		return nil, fmt.Errorf("complete %s: %w", saleID, err)
	}
	var receiptNo int64
	err = l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		st := func(p *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, p) }
		insert := func() (sql.Result, error) {
			n, err := l.receipts.next(ctx, tx)
			if err != nil {
				return nil, err
			}
			receiptNo = n
			s.Receipt = l.receipts.text(receiptNo)
			return st(l.stmts.insSale).ExecContext(ctx, s.ID, s.Receipt, nullStr(key), s.Cashier, nullStr(s.Member), nullStr(s.ShiftID),
				s.BusinessDay, s.CreatedAt, now, s.Subtotal, s.Discount, s.Tax, s.Total, s.Paid, s.ChangeDue, tenders)
		}
		res, err := insert()
		if receiptTaken(err) {
			// Another writer on this file issued the number: read the
			// numbers back and take the next one (the failed statement
			// alone was rolled back).
			l.receipts.forget()
			res, err = insert()
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: sale %s is already recorded", ErrSaleState, s.ID)
		}
		ev := wire.SaleCompleted{SaleID: s.ID, Receipt: s.Receipt, BusinessDay: s.BusinessDay, CompletedAt: now, Cashier: s.Cashier,
			Member: s.Member, Currency: l.cfg.Currency, Subtotal: s.Subtotal, Discount: s.Discount, Tax: s.Tax, Total: s.Total}
		if err := l.writeLines(ctx, tx, s, &ev); err != nil {
			return err
		}
		for _, t := range s.Tenders {
			ev.Tenders = append(ev.Tenders, wire.Tender{Kind: t.Kind, Amount: t.Amount, Ref: t.Ref})
		}
		if s.ChangeDue > 0 {
			ev.Tenders = append(ev.Tenders, wire.Tender{Kind: "change", Amount: -s.ChangeDue})
		}
		for _, ac := range s.Coupons {
			cev, err := l.db.AppendEvent(ctx, tx, wire.EventCouponRedeemed, wire.CouponRedeemed{CouponID: ac.CouponID, KeyID: ac.KeyID,
				SaleID: s.ID, Receipt: s.Receipt, Amount: ac.Amount, Member: s.Member, RedeemedAt: now, BusinessDay: s.BusinessDay}, now)
			if err != nil {
				return err
			}
			if _, err := st(l.stmts.insRedeem).ExecContext(ctx, ac.CouponID, ac.KeyID, s.ID, ac.Amount, nullStr(ac.Manager), cev.Seq, now); err != nil {
				if strings.Contains(err.Error(), "UNIQUE") || strings.Contains(err.Error(), "PRIMARY KEY") {
					return fmt.Errorf("coupon %s: %w", ac.CouponID, ErrCouponUsed)
				}
				return err
			}
			ev.Coupons = append(ev.Coupons, wire.CouponUse{CouponID: ac.CouponID, Amount: ac.Amount})
		}
		if err := writeDiscounts(ctx, tx, s); err != nil {
			return err
		}
		if s.PointsEarned, s.PointsSpent, s.PointsPending, err = l.salePoints(ctx, tx, s); err != nil {
			return fmt.Errorf("points: %w", err)
		}
		ev.PointsEarned, ev.PointsSpent, ev.PointsPending = s.PointsEarned, s.PointsSpent, s.PointsPending
		sev, err := l.db.AppendEvent(ctx, tx, wire.EventSaleCompleted, ev, now)
		if err != nil {
			return err
		}
		if s.Member != "" {
			// The sale's event seq tells which points HQ has not yet
			// confirmed (the offline cap); only member sales pay for it.
			if _, err := tx.ExecContext(ctx, "UPDATE sales SET points_earned = ?, points_spent = ?, outbox_seq = ? WHERE id = ?",
				s.PointsEarned, s.PointsSpent, sev.Seq, s.ID); err != nil {
				return fmt.Errorf("points: %w", err)
			}
		}
		// The receipt's print job has the sale's id, so a sale finds its
		// receipt's print state by key (copies get ids of their own).
		_, err = st(l.stmts.insPrint).ExecContext(ctx, s.ID, s.ID, s.Receipt, "receipt", now, now)
		return err
	})
	if err != nil {
		l.receipts.forget()
		return nil, fmt.Errorf("complete %s: %w", saleID, err)
	}
	l.receipts.commit(receiptNo)
	delete(l.carts, saleID)
	if l.cfg.OnCommit != nil {
		l.cfg.OnCommit()
	}
	s.PrintState = "queued"
	return s, nil
}

// completedByKey answers a completion whose idempotency key is already
// used: the same sale again returns it as recorded, another sale is
// refused. used is false when no sale has the key.
func (l *Ledger) completedByKey(ctx context.Context, saleID, key string) (done *Sale, used bool, err error) {
	if key == "" {
		return nil, false, nil
	}
	var other string
	err = l.db.Read.QueryRowContext(ctx, "SELECT id FROM sales WHERE complete_key = ?", key).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, true, fmt.Errorf("complete %s: %w", saleID, err)
	case other != saleID:
		return nil, true, fmt.Errorf("complete %s: %w", saleID, ErrDuplicateKey)
	}
	done, err = l.getStored(ctx, saleID)
	return done, true, err
}

// storedTender is a tender as sales.tenders stores it (the sale_tenders
// view reads kind, amount and ref; migration 0006).
type storedTender struct {
	Kind   string `json:"kind"`
	Amount int64  `json:"amount"`
	Ref    string `json:"ref"`
}

// tendersJSON is a completing sale's tenders for sales.tenders. It checks
// what the sale_tenders table's CHECKs did: a known kind and a positive
// amount.
func tendersJSON(ts []Tender) (string, error) {
	out := make([]storedTender, 0, len(ts))
	for _, t := range ts {
		switch t.Kind {
		case TenderCash, TenderCard, TenderWallet, TenderPoints, TenderOnline:
		default:
			return "", fmt.Errorf("tender: kind %q is not cash, card, wallet, points or online", t.Kind)
		}
		if t.Amount <= 0 {
			return "", fmt.Errorf("tender %s: %w (got %d)", t.Kind, ErrBadAmount, t.Amount)
		}
		out = append(out, storedTender{Kind: t.Kind, Amount: t.Amount, Ref: t.Ref})
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// writeLines inserts a completing sale's live lines and takes them off
// stock, a few multi-row statements in all, and fills the event's lines
// with the stock on hand after each line.
func (l *Ledger) writeLines(ctx context.Context, tx *sql.Tx, s *Sale, ev *wire.SaleCompleted) error {
	args := make([]any, 0, 12*len(s.Lines))
	delta := map[string]int64{}
	var skus []string // first-seen order, so statements are deterministic
	for _, ln := range s.Lines {
		if ln.Voided {
			continue
		}
		k := len(ev.Lines) + 1
		args = append(args, s.ID, k, ln.SKU, ln.Name, ln.Unit, ln.Qty, ln.UnitPrice, ln.Gross, ln.Discount, ln.Tax, ln.Total, nullStr(ln.OverrideBy), ln.TaxBP)
		ev.Lines = append(ev.Lines, wire.SaleLine{Line: k, SKU: ln.SKU, Name: ln.Name, Qty: ln.Qty, UnitPrice: ln.UnitPrice,
			Discount: ln.Discount, Tax: ln.Tax, Total: ln.Total})
		if _, seen := delta[ln.SKU]; !seen {
			skus = append(skus, ln.SKU)
		}
		delta[ln.SKU] -= ln.Qty
	}
	if err := execChunks(ctx, tx, l.stmts.insLines[:], args, 13); err != nil {
		return fmt.Errorf("lines: %w", err)
	}
	onHand := make(map[string]int64, len(skus))
	for len(skus) > 0 {
		n := min(len(skus), maxRows)
		sargs := make([]any, 0, 2*n)
		for _, sku := range skus[:n] {
			sargs = append(sargs, sku, delta[sku])
		}
		rows, err := tx.StmtContext(ctx, l.stmts.updStock[n]).QueryContext(ctx, sargs...)
		if err != nil {
			return fmt.Errorf("stock: %w", err)
		}
		for rows.Next() {
			var sku string
			var v int64
			if err := rows.Scan(&sku, &v); err != nil {
				rows.Close()
				return fmt.Errorf("stock: %w", err)
			}
			onHand[sku] = v
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("stock: %w", err)
		}
		skus = skus[n:]
	}
	// The stock after each line: walking back from the sale's end, a line
	// of a SKU sold again later had that much more on hand.
	after := onHand
	for i := len(ev.Lines) - 1; i >= 0; i-- {
		ln := &ev.Lines[i]
		v := after[ln.SKU]
		ln.OnHand = &v
		after[ln.SKU] = v + ln.Qty
	}
	return nil
}

// writeDiscounts records what each discount on s was; most sales have none
// and pay nothing for it.
func writeDiscounts(ctx context.Context, tx *sql.Tx, s *Sale) error {
	seq := 0
	add := func(line any, kind string, d Discount, amount int64, ref string) error {
		seq++
		_, err := tx.ExecContext(ctx, "INSERT INTO sale_discounts(sale_id, seq, line, kind, basis, value, amount, ref) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			s.ID, seq, line, kind, string(d.Kind), d.Value, amount, ref)
		if err != nil {
			return fmt.Errorf("discount %d: %w", seq, err)
		}
		return nil
	}
	k := 0
	for _, ln := range s.Lines {
		if ln.Voided {
			continue
		}
		k++
		if ln.ItemDiscount.Kind != "" {
			if err := add(k, "item", ln.ItemDiscount, ln.ItemDiscount.of(ln.Gross), ""); err != nil {
				return err
			}
		}
	}
	if s.SaleDiscount.Kind != "" {
		if err := add(nil, "sale", s.SaleDiscount, s.SaleDiscountAmount, ""); err != nil {
			return err
		}
	}
	for _, ac := range s.Coupons {
		d := Discount{Kind: DiscountAmount, Value: ac.Coupon.Value}
		if ac.Coupon.Kind == wire.CouponPercentOff {
			d.Kind = DiscountPercent
		}
		if err := add(nil, "coupon", d, ac.Amount, ac.CouponID); err != nil {
			return err
		}
	}
	return nil
}

// execChunks executes rows of width args each through the multi-row
// statements stmts (stmts[n] writes n rows), at most maxRows per statement.
func execChunks(ctx context.Context, tx *sql.Tx, stmts []*sql.Stmt, args []any, width int) error {
	for len(args) > 0 {
		n := min(len(args)/width, maxRows)
		if _, err := tx.StmtContext(ctx, stmts[n]).ExecContext(ctx, args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}

// checkPayable is what must hold before a cart can complete.
func (l *Ledger) checkPayable(ctx context.Context, s *Sale) error {
	live := 0
	for _, ln := range s.Lines {
		if !ln.Voided {
			live++
		}
	}
	if live == 0 {
		return ErrEmptySale
	}
	var unapproved int64 // coupon value no manager approved
	for _, ac := range s.Coupons {
		if ac.Problem != "" {
			return fmt.Errorf("coupon %s: %s", ac.CouponID, ac.Problem)
		}
		if err := l.checkCouponState(ctx, ac.CouponID); err != nil {
			return err
		}
		if ac.Manager == "" {
			unapproved += ac.Amount
		}
	}
	if unapproved > 0 {
		// Checked again here: another cart may have used the offline budget
		// since this one's coupons were applied.
		capV, err := l.CouponOfflineCap(ctx)
		if err != nil {
			return err
		}
		if capV > 0 {
			pending, err := l.unconfirmedCouponValue(ctx)
			if err != nil {
				return err
			}
			if pending+unapproved > capV {
				return fmt.Errorf("%w: coupons worth %d are not yet confirmed by HQ; this sale's (%d) would pass the offline budget of %d",
					ErrNeedsManager, pending, unapproved, capV)
			}
		}
	}
	// Checked again here: another cart on this terminal may have spent
	// the member's points since these were tendered.
	if p, _ := pointsSpent(s.Tenders); p > 0 {
		if err := l.checkPoints(ctx, s.Member, p); err != nil {
			return err
		}
	}
	if s.Paid < s.Total {
		return fmt.Errorf("%w: total %d, paid %d", ErrTenderShort, s.Total, s.Paid)
	}
	if s.ChangeDue > 0 {
		var cash int64
		for _, t := range s.Tenders {
			if t.Kind == TenderCash {
				cash += t.Amount
			}
		}
		if s.ChangeDue > cash {
			return fmt.Errorf("%w: %d change due but only %d paid in cash", ErrChangeNotCash, s.ChangeDue, cash)
		}
	}
	return nil
}

// GetSale returns an open cart or a recorded sale.
func (l *Ledger) GetSale(ctx context.Context, id string) (*Sale, error) {
	l.mu.Lock()
	if s, ok := l.carts[id]; ok {
		l.mu.Unlock()
		return s.clone(), nil
	}
	l.mu.Unlock()
	return l.getStored(ctx, id)
}

// FindSaleByReceipt returns a recorded sale by its receipt number.
func (l *Ledger) FindSaleByReceipt(ctx context.Context, receipt string) (*Sale, error) {
	var id string
	err := l.db.Read.QueryRowContext(ctx, "SELECT id FROM sales WHERE receipt = ?", strings.TrimSpace(receipt)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("receipt %s: %w", receipt, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return l.getStored(ctx, id)
}

func (l *Ledger) getStored(ctx context.Context, id string) (*Sale, error) {
	s := &Sale{ID: id}
	var member, shift, receipt, day, cart sql.NullString
	var completed sql.NullTime
	err := l.db.Read.QueryRowContext(ctx, `SELECT state, cashier, member, shift_id, receipt, business_day, created_at, completed_at,
		subtotal, discount, tax, total, paid, change_due, refunded, cart, points_earned, points_spent FROM sales WHERE id = ?`, id).
		Scan(&s.State, &s.Cashier, &member, &shift, &receipt, &day, &s.CreatedAt, &completed,
			&s.Subtotal, &s.Discount, &s.Tax, &s.Total, &s.Paid, &s.ChangeDue, &s.Refunded, &cart, &s.PointsEarned, &s.PointsSpent)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sale %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sale %s: %w", id, err)
	}
	if s.State == StateSuspended && cart.Valid {
		c := &Sale{}
		if err := json.Unmarshal([]byte(cart.String), c); err != nil {
			return nil, err
		}
		c.State = StateSuspended
		return c, nil
	}
	s.Member, s.ShiftID, s.Receipt, s.BusinessDay = member.String, shift.String, receipt.String, day.String
	if completed.Valid {
		s.CompletedAt = completed.Time.UTC()
	}
	s.CreatedAt = s.CreatedAt.UTC()
	rows, err := l.db.Read.QueryContext(ctx, `SELECT line, sku, name, unit, qty, unit_price, gross, discount, tax, total, COALESCE(override_by, ''), returned_qty, tax_bp
		FROM sale_lines WHERE sale_id = ? ORDER BY line`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ln Line
		if err := rows.Scan(&ln.Line, &ln.SKU, &ln.Name, &ln.Unit, &ln.Qty, &ln.UnitPrice, &ln.Gross, &ln.Discount, &ln.Tax, &ln.Total, &ln.OverrideBy, &ln.ReturnedQty, &ln.TaxBP); err != nil {
			return nil, err
		}
		ln.BasePrice = ln.UnitPrice
		s.Lines = append(s.Lines, ln)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	trows, err := l.db.Read.QueryContext(ctx, "SELECT kind, amount, ref FROM sale_tenders WHERE sale_id = ? ORDER BY seq", id)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	for trows.Next() {
		var t Tender
		if err := trows.Scan(&t.Kind, &t.Amount, &t.Ref); err != nil {
			return nil, err
		}
		s.Tenders = append(s.Tenders, t)
	}
	if err := trows.Err(); err != nil {
		return nil, err
	}
	crows, err := l.db.Read.QueryContext(ctx, "SELECT coupon_id, key_id, amount, COALESCE(manager, '') FROM coupon_redemptions WHERE sale_id = ?", id)
	if err != nil {
		return nil, err
	}
	defer crows.Close()
	for crows.Next() {
		var c AppliedCoupon
		if err := crows.Scan(&c.CouponID, &c.KeyID, &c.Amount, &c.Manager); err != nil {
			return nil, err
		}
		s.Coupons = append(s.Coupons, c)
	}
	if err := crows.Err(); err != nil {
		return nil, err
	}
	var ps sql.NullString
	err = l.db.Read.QueryRowContext(ctx, "SELECT state FROM print_jobs WHERE id = ?", id).Scan(&ps)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sale %s: print state: %w", id, err)
	}
	s.PrintState = ps.String
	return s, nil
}

// couponKeys returns the keys coupons may be signed with: the bootstrap
// keys and those HQ sent through the change feed, minus revoked ones.
func (l *Ledger) couponKeys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	keys := map[string]ed25519.PublicKey{}
	for k, v := range l.cfg.CouponKeys {
		keys[k] = v
	}
	rows, err := l.db.Read.QueryContext(ctx, "SELECT key_id, public_key, revoked FROM coupon_keys")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var pub []byte
		var revoked bool
		if err := rows.Scan(&id, &pub, &revoked); err != nil {
			return nil, err
		}
		if revoked {
			delete(keys, id)
		} else if len(pub) == ed25519.PublicKeySize {
			keys[id] = ed25519.PublicKey(pub)
		}
	}
	return keys, rows.Err()
}
