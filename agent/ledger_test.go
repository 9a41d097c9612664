package agent

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

type fixture struct {
	l    *Ledger
	db   *localdb.DB
	now  time.Time
	key  ed25519.PrivateKey
	kid  string
	path string
}

func newFixture(tb testing.TB, mod ...func(*LedgerConfig)) *fixture {
	tb.Helper()
	f := &fixture{now: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), kid: "k1"}
	f.path = filepath.Join(tb.TempDir(), "pos.db")
	copyTemplate(tb, f.path) // migrated, demo catalog and users seeded
	db, err := localdb.Open(context.Background(), f.path, localdb.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close(context.Background()) })
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(tb, err)
	f.key, f.db = priv, db
	sh, _ := time.LoadLocation("Asia/Shanghai")
	cfg := LedgerConfig{Store: "S001", Terminal: "T1", Currency: "CNY", TaxInclusive: true, Location: sh,
		CouponKeys: map[string]ed25519.PublicKey{"k1": pub}, BcryptCost: bcrypt.MinCost, Now: func() time.Time { return f.now }}
	for _, m := range mod {
		m(&cfg)
	}
	f.l, err = NewLedger(db, cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { f.l.Close() })
	return f
}

func (f *fixture) coupon(tb testing.TB, c wire.Coupon) string {
	tb.Helper()
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	c.KeyID = f.kid
	if c.Currency == "" {
		c.Currency = "CNY"
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = f.now.Add(-time.Hour)
	}
	if c.Expires.IsZero() {
		c.Expires = f.now.Add(24 * time.Hour)
	}
	tok, err := wire.SignCoupon(f.key, c)
	require.NoError(tb, err)
	return tok
}

// sale opens a cart with items and cash to cover it.
func (f *fixture) sale(tb testing.TB, skus ...string) *Sale {
	tb.Helper()
	ctx := context.Background()
	s, err := f.l.OpenSale(ctx, DemoCashier)
	require.NoError(tb, err)
	for _, sku := range skus {
		s, err = f.l.AddItem(ctx, s.ID, sku, 1000)
		require.NoError(tb, err)
	}
	return s
}

func (f *fixture) pay(tb testing.TB, s *Sale) *Sale {
	tb.Helper()
	s, err := f.l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: s.Total})
	require.NoError(tb, err)
	return s
}

func outboxTypes(tb testing.TB, db *localdb.DB) []string {
	tb.Helper()
	rows, err := db.Read.Query("SELECT type FROM outbox ORDER BY seq")
	require.NoError(tb, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		require.NoError(tb, rows.Scan(&t))
		if t != wire.EventStockLevel {
			out = append(out, t)
		}
	}
	return out
}

func TestCompleteSaleWritesEverythingOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "MILK1L")
	s, err := f.l.Scan(ctx, s.ID, "]E06901234567892\r\n") // tea again: same line, qty 2
	require.NoError(t, err)
	require.Len(t, s.Lines, 2)
	require.EqualValues(t, 2000, s.Lines[0].Qty)
	require.EqualValues(t, 450*2+1290, s.Total)
	s, err = f.l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: 5000})
	require.NoError(t, err)
	require.EqualValues(t, 5000-2190, s.ChangeDue)

	done, err := f.l.CompleteSale(ctx, s.ID, "key-1")
	require.NoError(t, err)
	require.Equal(t, "T1-000001", done.Receipt)
	require.Equal(t, "2026-11-23", done.BusinessDay, "business day in the store's zone")

	again, err := f.l.CompleteSale(ctx, s.ID, "key-1") // a double click
	require.NoError(t, err)
	require.Equal(t, done.Receipt, again.Receipt)
	again, err = f.l.CompleteSale(ctx, s.ID, "") // a retried request without key
	require.NoError(t, err)
	require.Equal(t, done.Receipt, again.Receipt)

	var sales, lines, tenders, jobs int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sales").Scan(&sales))
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sale_lines").Scan(&lines))
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM sale_tenders").Scan(&tenders))
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM print_jobs").Scan(&jobs))
	require.Equal(t, []int{1, 2, 1, 1}, []int{sales, lines, tenders, jobs})
	require.Equal(t, []string{wire.EventSaleCompleted}, outboxTypes(t, f.db))

	var payload string
	require.NoError(t, f.db.Read.QueryRow("SELECT payload FROM outbox WHERE type = 'sale.completed'").Scan(&payload))
	ev := wire.Event{Seq: 1, ID: uuid.NewString(), Type: wire.EventSaleCompleted, At: f.now, Payload: json.RawMessage(payload)}
	require.NoError(t, wire.ValidatePayload(&ev), "HQ accepts what the agent writes")
	sc, err := wire.Payload[wire.SaleCompleted](&ev)
	require.NoError(t, err)
	require.EqualValues(t, 1_000_000-2000, *sc.Lines[0].OnHand)

	stored, err := f.l.FindSaleByReceipt(ctx, "T1-000001")
	require.NoError(t, err)
	require.Equal(t, done.Total, stored.Total)
	require.Len(t, stored.Lines, 2)

	_, err = f.l.CompleteSale(ctx, f.sale(t, "WATER").ID, "key-1")
	require.ErrorIs(t, err, ErrDuplicateKey, "an idempotency key cannot complete another sale")
}

func TestPricingTaxAndRounding(t *testing.T) {
	t.Run("inclusive, half up per line", func(t *testing.T) {
		f := newFixture(t)
		s := f.sale(t, "TEA500") // 450 incl. 13 %: tax = 450×1300/11300 = 51.77 → 52
		require.EqualValues(t, 52, s.Lines[0].Tax)
		require.EqualValues(t, 450, s.Total)
	})
	t.Run("exclusive adds tax", func(t *testing.T) {
		f := newFixture(t, func(c *LedgerConfig) { c.TaxInclusive = false })
		s := f.sale(t, "TEA500") // 450 + 58.5 → 59
		require.EqualValues(t, 59, s.Lines[0].Tax)
		require.EqualValues(t, 509, s.Total)
	})
	t.Run("weighed goods", func(t *testing.T) {
		f := newFixture(t)
		s := f.sale(t)
		code := "2000001" + "01532" // PLU 1, 1.532 kg
		c, _ := barcode.CheckDigit(code)
		s, err := f.l.Scan(context.Background(), s.ID, code+string(c))
		require.NoError(t, err)
		require.EqualValues(t, 1532, s.Lines[0].Qty)
		require.EqualValues(t, 2142, s.Lines[0].Gross, "1398 × 1.532 = 2141.7 → 2142")
	})
	t.Run("sale discount spreads exactly", func(t *testing.T) {
		f := newFixture(t)
		s := f.sale(t, "TEA500", "NOODLE", "WATER")
		s, err := f.l.SetSaleDiscount(s.ID, Discount{Kind: DiscountAmount, Value: 101})
		require.NoError(t, err)
		var sum int64
		for _, ln := range s.Lines {
			sum += ln.Discount
		}
		require.EqualValues(t, 101, sum)
		require.EqualValues(t, 1300-101, s.Total)
		s, err = f.l.SetItemDiscount(s.ID, 1, Discount{Kind: DiscountPercent, Value: 1000})
		require.NoError(t, err)
		require.EqualValues(t, 1300-45-101, s.Total)
	})
}

func TestScanBadInputLeavesSaleUntouched(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500")
	for _, code := range []string{"6901234567893", "12345", "]E0", "9780201379624", "SHELF-X"} {
		_, err := f.l.Scan(ctx, s.ID, code)
		require.Error(t, err, code)
	}
	_, err := f.l.Scan(ctx, s.ID, "9780201379624") // valid GTIN, not in the catalog
	require.ErrorIs(t, err, ErrUnknownCode)
	_, err = f.l.Scan(ctx, s.ID, "6901234567893")
	require.ErrorIs(t, err, barcode.ErrCheckDigit)
	got, err := f.l.GetSale(ctx, s.ID)
	require.NoError(t, err)
	require.Len(t, got.Lines, 1)
	require.EqualValues(t, 450, got.Total)
}

func TestBadQuantitiesPricesAndTenders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500")
	_, err := f.l.AddItem(ctx, s.ID, "TEA500", 0)
	require.ErrorIs(t, err, ErrBadQuantity)
	_, err = f.l.AddItem(ctx, s.ID, "TEA500", -1000)
	require.ErrorIs(t, err, ErrBadQuantity)
	_, err = f.l.SetQty(s.ID, 1, 0)
	require.ErrorIs(t, err, ErrBadQuantity)
	_, err = f.l.AddItem(ctx, s.ID, "TEA500", 500) // half a bottle
	require.ErrorIs(t, err, ErrBadQuantity)
	_, err = f.l.OverridePrice(ctx, s.ID, 1, -1, DemoManager)
	require.ErrorIs(t, err, ErrBadPrice)
	_, err = f.l.OverridePrice(ctx, s.ID, 1, 100, "")
	require.ErrorIs(t, err, ErrNeedsManager)

	_, err = f.l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: 400})
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, s.ID, "")
	require.ErrorIs(t, err, ErrTenderShort)
	_, err = f.l.AddTender(s.ID, Tender{Kind: TenderCard, Amount: 500})
	require.Error(t, err, "card needs the terminal's reference")
	_, err = f.l.AddTender(s.ID, Tender{Kind: TenderCard, Amount: 500, Ref: "AUTH1"})
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, s.ID, "")
	require.ErrorIs(t, err, ErrChangeNotCash, "no change from a card overpayment")
	_, err = f.l.ClearTenders(s.ID)
	require.NoError(t, err)
	_, err = f.l.AddTender(s.ID, Tender{Kind: TenderCard, Amount: 200, Ref: "AUTH2"}) // split tender
	require.NoError(t, err)
	_, err = f.l.AddTender(s.ID, Tender{Kind: TenderWallet, Amount: 250, Ref: "WX9"})
	require.NoError(t, err)
	done, err := f.l.CompleteSale(ctx, s.ID, "")
	require.NoError(t, err)
	require.Len(t, done.Tenders, 2)

	s2 := f.sale(t)
	_, err = f.l.CompleteSale(ctx, s2.ID, "")
	require.ErrorIs(t, err, ErrEmptySale)
}

func TestPriceOverrideIsAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "CHOCO")
	s, err := f.l.OverridePrice(ctx, s.ID, 1, 990, DemoManager)
	require.NoError(t, err)
	require.EqualValues(t, 990, s.Total)
	log, err := f.l.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	require.Equal(t, "price_override", log[0].Action)
	require.Equal(t, DemoManager, log[0].Manager)
	require.Contains(t, outboxTypes(t, f.db), wire.EventAuditOverride)
}

func TestSuspendResume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "BREAD")
	require.NoError(t, f.l.SuspendSale(ctx, s.ID))
	_, err := f.l.AddItem(ctx, s.ID, "WATER", 1000)
	require.ErrorIs(t, err, ErrNotFound, "a suspended cart is not open")
	list, err := f.l.ListSuspended(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	// A restarted agent (new Ledger on the same file) still has it.
	l2, err := NewLedger(f.db, f.l.Config())
	require.NoError(t, err)
	defer l2.Close()
	r, err := l2.ResumeSale(ctx, s.ID)
	require.NoError(t, err)
	require.Len(t, r.Lines, 2)
	r, err = l2.AddTender(r.ID, Tender{Kind: TenderCash, Amount: r.Total})
	require.NoError(t, err)
	done, err := l2.CompleteSale(ctx, r.ID, "")
	require.NoError(t, err)
	require.Equal(t, StateCompleted, done.State)
	list, err = l2.ListSuspended(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestCoupons(t *testing.T) {
	ctx := context.Background()
	t.Run("amount off verified offline and single use", func(t *testing.T) {
		f := newFixture(t)
		tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300, MinSpend: 1000})
		s := f.sale(t, "MILK1L")
		s, err := f.l.ApplyCoupon(ctx, s.ID, tok, "")
		require.NoError(t, err)
		require.EqualValues(t, 990, s.Total)
		s = f.pay(t, s)
		_, err = f.l.CompleteSale(ctx, s.ID, "")
		require.NoError(t, err)
		require.Contains(t, outboxTypes(t, f.db), wire.EventCouponRedeemed)

		s2 := f.sale(t, "RICE5")
		_, err = f.l.ApplyCoupon(ctx, s2.ID, tok, "")
		require.ErrorIs(t, err, ErrCouponUsed)
	})
	t.Run("percent off eligible skus with cap", func(t *testing.T) {
		f := newFixture(t)
		tok := f.coupon(t, wire.Coupon{Kind: wire.CouponPercentOff, Value: 5000, MaxOff: 400, SKUs: []string{"CHOCO"}})
		s := f.sale(t, "CHOCO", "TEA500")
		s, err := f.l.ApplyCoupon(ctx, s.ID, tok, "")
		require.NoError(t, err)
		require.EqualValues(t, 1590+450-400, s.Total)
		require.Zero(t, s.Lines[1].Discount, "tea is not eligible")
	})
	t.Run("bad coupons", func(t *testing.T) {
		f := newFixture(t)
		s := f.sale(t, "TEA500")
		good := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100})
		tampered := good[:len(good)-4] + "AAAA"
		_, err := f.l.ApplyCoupon(ctx, s.ID, tampered, "")
		require.ErrorIs(t, err, ErrCouponSignature)

		otherPub, otherKey, _ := ed25519.GenerateKey(nil)
		_ = otherPub
		c := wire.Coupon{ID: uuid.NewString(), KeyID: "k9", Kind: wire.CouponAmountOff, Value: 100, Currency: "CNY", NotBefore: f.now.Add(-time.Hour), Expires: f.now.Add(time.Hour)}
		unknown, err := wire.SignCoupon(otherKey, c)
		require.NoError(t, err)
		_, err = f.l.ApplyCoupon(ctx, s.ID, unknown, "")
		require.ErrorIs(t, err, ErrCouponUnknownKey)

		expired := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100, NotBefore: f.now.Add(-48 * time.Hour), Expires: f.now.Add(-time.Hour)})
		_, err = f.l.ApplyCoupon(ctx, s.ID, expired, "")
		require.ErrorIs(t, err, ErrCouponExpired)

		minSpend := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100, MinSpend: 5000})
		_, err = f.l.ApplyCoupon(ctx, s.ID, minSpend, "")
		require.ErrorIs(t, err, ErrCouponMinSpend)

		otherSKU := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100, SKUs: []string{"RICE5"}})
		_, err = f.l.ApplyCoupon(ctx, s.ID, otherSKU, "")
		require.ErrorIs(t, err, ErrCouponNotEligible)

		usd := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 100, Currency: "USD"})
		_, err = f.l.ApplyCoupon(ctx, s.ID, usd, "")
		require.ErrorIs(t, err, ErrCouponCurrency)

		got, err := f.l.GetSale(ctx, s.ID)
		require.NoError(t, err)
		require.Empty(t, got.Coupons, "no failed coupon stays on the cart")
	})
	t.Run("revoked by HQ", func(t *testing.T) {
		f := newFixture(t)
		id := uuid.NewString()
		tok := f.coupon(t, wire.Coupon{ID: id, Kind: wire.CouponAmountOff, Value: 100})
		require.NoError(t, f.db.WriteTx(ctx, func(tx *sql.Tx) error {
			return f.l.ApplyChange(ctx, tx, wire.Change{Version: 1, Kind: wire.ChangeRevocation, Key: id, Op: wire.OpUpsert, At: f.now})
		}))
		_, err := f.l.ApplyCoupon(ctx, f.sale(t, "TEA500").ID, tok, "")
		require.ErrorIs(t, err, ErrCouponRevoked)
	})
	t.Run("offline budget needs a manager", func(t *testing.T) {
		f := newFixture(t, func(c *LedgerConfig) { c.CouponOfflineCap = 500 })
		for i, want := range []error{nil, ErrNeedsManager} {
			tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300})
			s := f.sale(t, "RICE5")
			s2, err := f.l.ApplyCoupon(ctx, s.ID, tok, "")
			if want != nil {
				require.ErrorIs(t, err, want, "coupon %d", i)
				s2, err = f.l.ApplyCoupon(ctx, s.ID, tok, DemoManager)
				require.NoError(t, err)
			} else {
				require.NoError(t, err)
			}
			_, err = f.l.CompleteSale(ctx, f.pay(t, s2).ID, "")
			require.NoError(t, err)
		}
		// HQ acknowledges: the budget frees up.
		_, err := f.db.AckThrough(ctx, 1<<40)
		require.NoError(t, err)
		// Two carts within the budget each but past it together: the one
		// that completes second needs a manager.
		a, err := f.l.ApplyCoupon(ctx, f.sale(t, "RICE5").ID, f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300}), "")
		require.NoError(t, err)
		b, err := f.l.ApplyCoupon(ctx, f.sale(t, "RICE5").ID, f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300}), "")
		require.NoError(t, err)
		_, err = f.l.CompleteSale(ctx, f.pay(t, a).ID, "")
		require.NoError(t, err)
		_, err = f.l.CompleteSale(ctx, f.pay(t, b).ID, "")
		require.ErrorIs(t, err, ErrNeedsManager)
	})
}

func TestReturnsAndVoids(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "MILK1L")
	s, err := f.l.SetQty(s.ID, 1, 3000)
	require.NoError(t, err)
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)

	_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 4000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 1800}}, Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrReturnTooMany)
	_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 451}}, Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrRefundTooLarge)
	r, err := f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 450}}, Cashier: DemoCashier})
	require.NoError(t, err)
	require.EqualValues(t, 450, r.Total)
	r, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 2000}, {Line: 2, Qty: 1000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 2190}}, Cashier: DemoCashier})
	require.NoError(t, err)
	_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 2, Qty: 1000}}, Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}, Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrReturnTooMany, "nothing left to return")
	_, err = f.l.VoidSale(ctx, done.ID, DemoManager, "oops")
	require.ErrorIs(t, err, ErrSaleState, "a sale with returns cannot be voided")

	_, err = f.l.ReturnItems(ctx, ReturnRequest{Blind: []BlindLine{{SKU: "TEA500", Qty: 1000, Amount: 450}}, Refunds: []Tender{{Kind: TenderCash, Amount: 450}}, Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrNeedsManager)
	_, err = f.l.ReturnItems(ctx, ReturnRequest{Blind: []BlindLine{{SKU: "TEA500", Qty: 1000, Amount: 450}}, Refunds: []Tender{{Kind: TenderCash, Amount: 450}}, Cashier: DemoCashier, Manager: DemoManager})
	require.NoError(t, err)

	s2, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "RICE5")).ID, "")
	require.NoError(t, err)
	_, err = f.l.VoidSale(ctx, s2.ID, "", "x")
	require.ErrorIs(t, err, ErrNeedsManager)
	v, err := f.l.VoidSale(ctx, s2.ID, DemoManager, "customer changed mind")
	require.NoError(t, err)
	require.Equal(t, StateVoided, v.State)
	_, err = f.l.VoidSale(ctx, s2.ID, DemoManager, "again")
	require.ErrorIs(t, err, ErrSaleState)

	var onHand int64
	require.NoError(t, f.db.Read.QueryRow("SELECT on_hand FROM inventory WHERE sku = 'RICE5'").Scan(&onHand))
	require.EqualValues(t, 1_000_000, onHand, "void restocked")
	require.NoError(t, f.db.Read.QueryRow("SELECT on_hand FROM inventory WHERE sku = 'TEA500'").Scan(&onHand))
	require.EqualValues(t, 1_000_000+1000, onHand, "3 sold, 3 returned, 1 blind return")
	types := outboxTypes(t, f.db)
	require.Contains(t, types, wire.EventReturnCompleted)
	require.Contains(t, types, wire.EventSaleVoided)
}

func TestShiftsAndReports(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.l.CloseShift(ctx, 0)
	require.ErrorIs(t, err, ErrNoShift)
	_, err = f.l.OpenShift(ctx, DemoCashier, 20000)
	require.NoError(t, err)
	_, err = f.l.OpenShift(ctx, DemoCashier, 20000)
	require.ErrorIs(t, err, ErrShiftOpen)
	s := f.sale(t, "RICE5")
	s, err = f.l.AddTender(s.ID, Tender{Kind: TenderCash, Amount: 10000})
	require.NoError(t, err)
	_, err = f.l.CompleteSale(ctx, s.ID, "")
	require.NoError(t, err)
	require.NoError(t, f.l.CashMovement(ctx, "paid_in", 1000, "coins", DemoCashier, ""))
	require.ErrorIs(t, f.l.CashMovement(ctx, "paid_out", 500, "window cleaner", DemoCashier, ""), ErrNeedsManager)
	require.NoError(t, f.l.CashMovement(ctx, "paid_out", 500, "window cleaner", DemoCashier, DemoManager))
	require.NoError(t, f.l.CashMovement(ctx, "no_sale", 0, "change for a customer", DemoCashier, DemoManager))

	x, err := f.l.XReport(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, x.Sales)
	require.EqualValues(t, 10000, x.Tenders["cash"])
	require.EqualValues(t, 20000+4990+1000-500, x.CashExpected)

	sh, err := f.l.CloseShift(ctx, 25400)
	require.NoError(t, err)
	require.EqualValues(t, 25490, sh.Expected)
	require.EqualValues(t, -90, sh.OverShort)
	z, err := f.l.CloseDay(ctx, DemoManager)
	require.NoError(t, err)
	require.Equal(t, "Z", z.Kind)
	require.EqualValues(t, 1, z.ZNumber)
	require.EqualValues(t, 4990, z.Net)
}

func TestUsersAndLockout(t *testing.T) {
	f := newFixture(t, func(c *LedgerConfig) { c.MaxPINFailures = 3 })
	ctx := context.Background()
	require.ErrorIs(t, f.l.AddUser(ctx, "x", "X", RoleCashier, "12"), ErrPINFormat)
	require.ErrorIs(t, f.l.AddUser(ctx, "x", "X", RoleCashier, strings.Repeat("1", 80)), ErrPINFormat)
	u, err := f.l.Authenticate(ctx, DemoCashier, DemoCashierPIN)
	require.NoError(t, err)
	require.Equal(t, RoleCashier, u.Role)
	_, err = f.l.Authenticate(ctx, "nobody", "1234")
	require.ErrorIs(t, err, ErrBadPIN)
	for i := 0; i < 2; i++ {
		_, err = f.l.Authenticate(ctx, DemoCashier, "0000")
		require.ErrorIs(t, err, ErrBadPIN)
	}
	_, err = f.l.Authenticate(ctx, DemoCashier, "0000")
	require.ErrorIs(t, err, ErrLockedOut)
	_, err = f.l.Authenticate(ctx, DemoCashier, DemoCashierPIN)
	require.ErrorIs(t, err, ErrLockedOut, "locked even with the right PIN")
	f.now = f.now.Add(6 * time.Minute)
	_, err = f.l.Authenticate(ctx, DemoCashier, DemoCashierPIN)
	require.NoError(t, err)

	m, err := f.l.AuthenticateManager(ctx, DemoManagerPIN)
	require.NoError(t, err)
	require.Equal(t, DemoManager, m.ID)
	_, err = f.l.AuthenticateManager(ctx, DemoCashierPIN)
	require.ErrorIs(t, err, ErrBadPIN, "a cashier's PIN approves nothing")
}

func TestApplyChangeFeed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	data := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	changes := []wire.Change{
		{Version: 1, Kind: wire.ChangeTaxClass, Key: "VAT6", Op: wire.OpUpsert, Data: data(wire.TaxClassChange{Code: "VAT6", Name: "VAT 6%", RateBP: 600})},
		{Version: 2, Kind: wire.ChangeProduct, Key: "SOAP", Op: wire.OpUpsert, Data: data(wire.ProductChange{SKU: "SOAP", Name: "Soap", Unit: "each", TaxClass: "VAT6", Price: 399, Active: true, Barcodes: []string{"96385074"}})},
		{Version: 3, Kind: wire.ChangeCouponKey, Key: "k2", Op: wire.OpUpsert, Data: data(wire.CouponKeyChange{KeyID: "k2", PublicKey: pub})},
		{Version: 4, Kind: wire.ChangeMember, Key: "M1", Op: wire.OpUpsert, Data: data(wire.MemberChange{MemberID: "M1", Phone: "13800000000", Tier: "gold", Points: 500, OfflineCap: 200})},
		{Version: 5, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert, Data: data(wire.StoreConfigChange{CouponOfflineCap: 12345})},
		{Version: 6, Kind: "future_kind", Key: "x", Op: wire.OpUpsert, Data: data(map[string]int{"a": 1})},
	}
	for round := 0; round < 2; round++ { // applying twice is harmless
		require.NoError(t, f.db.WriteTx(ctx, func(tx *sql.Tx) error {
			for _, c := range changes {
				if err := f.l.ApplyChange(ctx, tx, c); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	s, err := f.l.Scan(ctx, f.sale(t).ID, "96385074")
	require.NoError(t, err)
	require.EqualValues(t, 399, s.Total)
	require.EqualValues(t, 23, s.Lines[0].Tax, "399 × 600/10600 = 22.58 → 23")
	m, err := f.l.FindMember(ctx, "13800000000")
	require.NoError(t, err)
	require.Equal(t, "M1", m.ID)
	capV, err := f.l.CouponOfflineCap(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 12345, capV)

	c := wire.Coupon{ID: uuid.NewString(), KeyID: "k2", Kind: wire.CouponAmountOff, Value: 50, Currency: "CNY", NotBefore: f.now.Add(-time.Hour), Expires: f.now.Add(time.Hour)}
	tok, err := wire.SignCoupon(priv, c)
	require.NoError(t, err)
	_, err = f.l.ApplyCoupon(ctx, s.ID, tok, "")
	require.NoError(t, err, "a key that came through the feed verifies coupons")

	bad := wire.Change{Version: 7, Kind: wire.ChangeProduct, Key: "X", Op: wire.OpUpsert, Data: json.RawMessage(`{"sku":"X","bogus":1}`)}
	require.Error(t, f.db.WriteTx(ctx, func(tx *sql.Tx) error { return f.l.ApplyChange(ctx, tx, bad) }))
}

func TestImportCatalogCSV(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n, err := f.l.ImportCatalogCSV(ctx, strings.NewReader(CatalogCSVHeader+"\nSOAP,Soap,each,VAT6:600,399,96385074,,true\nLEEK,Leeks,kg,VAT9,800,,42,\n"))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = f.l.ImportCatalogCSV(ctx, strings.NewReader(CatalogCSVHeader+"\nA,A,each,VAT9,100,,,\nB,B,each,VAT9,abc,,,\n"))
	require.ErrorContains(t, err, "line 3")
	ps, err := f.l.Products(ctx, "A", 10)
	require.NoError(t, err)
	for _, p := range ps {
		require.NotEqual(t, "A", p.SKU, "all or nothing")
	}
	_, err = f.l.ImportCatalogCSV(ctx, strings.NewReader("sku,name\nA,A\n"))
	require.ErrorContains(t, err, "header lacks")
	_, err = f.l.ImportCatalogCSV(ctx, strings.NewReader(CatalogCSVHeader+"\nZ,Z,each,VAT9,100,6901234567893,,\n"))
	require.ErrorIs(t, err, barcode.ErrCheckDigit)
}

func TestLedgerRefusesNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pos.db")
	ctx := context.Background()
	db, err := localdb.Open(ctx, path, localdb.Options{})
	require.NoError(t, err)
	_, err = db.Write.Exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES(99, 'future', ?)", time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, db.Close(ctx))
	_, err = localdb.Open(ctx, path, localdb.Options{})
	require.ErrorIs(t, err, localdb.ErrTooNew)
}

func TestPrintQueue(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	done, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "TEA500")).ID, "")
	require.NoError(t, err)
	q, err := f.l.QueuedPrintJobs(ctx, 10)
	require.NoError(t, err)
	require.Len(t, q, 1)
	require.Equal(t, done.Receipt, q[0].Receipt)
	require.NoError(t, f.l.MarkPrintAttempt(ctx, q[0].ID, ErrNeedsManager, false))
	q, err = f.l.QueuedPrintJobs(ctx, 10)
	require.NoError(t, err)
	require.Len(t, q, 1, "a failed attempt keeps the job queued")
	require.Equal(t, 1, q[0].Attempts)
	require.NoError(t, f.l.MarkPrinted(ctx, q[0].ID))
	q, err = f.l.QueuedPrintJobs(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, q)
	j, err := f.l.Reprint(ctx, done.ID)
	require.NoError(t, err)
	require.Equal(t, "copy", j.Kind)
}
