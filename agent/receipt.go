package agent

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Receipt is a completed (or voided) sale as the receipt printer lays it
// out: everything is already priced and rounded; the layout only formats.
type Receipt struct {
	Receipt      string          `json:"receipt"` // T1-000123
	SaleID       string          `json:"sale_id"`
	Store        string          `json:"store"`
	Terminal     string          `json:"terminal"`
	State        string          `json:"state"` // completed or voided
	Cashier      string          `json:"cashier"`
	Member       string          `json:"member,omitempty"`
	BusinessDay  string          `json:"business_day"`
	CompletedAt  time.Time       `json:"completed_at"` // UTC
	LocalTime    string          `json:"local_time"`   // in the store's zone, "2006-01-02 15:04:05"
	Currency     string          `json:"currency"`
	MinorDigits  int             `json:"minor_digits"`
	TaxInclusive bool            `json:"tax_inclusive"`
	Lines        []Line          `json:"lines"`
	Subtotal     int64           `json:"subtotal"`
	Discount     int64           `json:"discount"`
	Tax          int64           `json:"tax"`
	Total        int64           `json:"total"`
	Taxes        []ReceiptTax    `json:"taxes"` // per rate, for the tax summary
	Tenders      []Tender        `json:"tenders"`
	Paid         int64           `json:"paid"`
	ChangeDue    int64           `json:"change_due"`
	Coupons      []ReceiptCoupon `json:"coupons,omitempty"`
	// Points are the member's points on the sale; nil without a member.
	// They are read with the receipt (see ReceiptPoints).
	Points *ReceiptPoints `json:"points,omitempty"`
}

// ReceiptTax is the tax of one rate on a receipt.
type ReceiptTax struct {
	RateBP int64 `json:"rate_bp"`
	Base   int64 `json:"base"` // what the lines of this rate cost after discounts
	Tax    int64 `json:"tax"`
}

// ReceiptCoupon is a coupon redeemed on a sale.
type ReceiptCoupon struct {
	CouponID string `json:"coupon_id"`
	Amount   int64  `json:"amount"`
}

// Receipt returns the receipt of a completed or voided sale. A suspended
// or open sale has none (ErrSaleState). A member's points, with the
// balance, are read now, not at the sale's commit (see ReceiptPoints).
func (l *Ledger) Receipt(ctx context.Context, saleID string) (Receipt, error) {
	s, err := l.getStored(ctx, saleID)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt of %s: %w", saleID, err)
	}
	if s.Receipt == "" || (s.State != StateCompleted && s.State != StateVoided) {
		return Receipt{}, fmt.Errorf("receipt of %s: %w: sale is %s", saleID, ErrSaleState, s.State)
	}
	r := l.receiptOf(s)
	if r.Points, err = l.receiptPoints(ctx, s); err != nil {
		return Receipt{}, fmt.Errorf("receipt of %s: %w", saleID, err)
	}
	return r, nil
}

func (l *Ledger) receiptOf(s *Sale) Receipt {
	r := Receipt{Receipt: s.Receipt, SaleID: s.ID, Store: l.cfg.Store, Terminal: l.cfg.Terminal, State: s.State, Cashier: s.Cashier,
		Member: s.Member, BusinessDay: s.BusinessDay, CompletedAt: s.CompletedAt.UTC(),
		LocalTime: s.CompletedAt.In(l.cfg.Location).Format(time.DateTime), Currency: l.cfg.Currency, MinorDigits: l.cfg.MinorDigits,
		TaxInclusive: l.cfg.TaxInclusive, Subtotal: s.Subtotal, Discount: s.Discount, Tax: s.Tax, Total: s.Total,
		Paid: s.Paid, ChangeDue: s.ChangeDue, Tenders: append([]Tender{}, s.Tenders...), Taxes: []ReceiptTax{}}
	byRate := map[int64]*ReceiptTax{}
	for _, ln := range s.Lines {
		if ln.Voided {
			continue
		}
		r.Lines = append(r.Lines, ln)
		t := byRate[ln.TaxBP]
		if t == nil {
			t = &ReceiptTax{RateBP: ln.TaxBP}
			byRate[ln.TaxBP] = t
		}
		t.Base += ln.Gross - ln.Discount
		t.Tax += ln.Tax
	}
	for _, t := range byRate {
		r.Taxes = append(r.Taxes, *t)
	}
	sort.Slice(r.Taxes, func(i, j int) bool { return r.Taxes[i].RateBP < r.Taxes[j].RateBP })
	for _, c := range s.Coupons {
		r.Coupons = append(r.Coupons, ReceiptCoupon{CouponID: c.CouponID, Amount: c.Amount})
	}
	return r
}
