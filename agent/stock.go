package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/edgepos/edgepos/agent/barcode"
)

// Why on-hand stock changes outside a sale, return, void or pickup. They
// are the Reason of the stock.level event HQ's inventory projection reads.
const (
	StockDelivery    = "delivery"     // goods received: adds
	StockTransferIn  = "transfer_in"  // from another store: adds
	StockCount       = "count"        // a counted level replaces the book level
	StockDamage      = "damage"       // broken, expired, stolen: removes
	StockTransferOut = "transfer_out" // to another store: removes
	StockCorrection  = "correction"   // a booking error, either way
)

// ErrStockReason is returned for a stock change with an unknown reason or
// one whose sign contradicts its reason (a delivery that removes stock).
var ErrStockReason = errors.New("stock change reason is unknown or does not fit the quantity")

// stockReasons maps each reason to the sign its delta must have (0: any,
// the count computes it) and whether a manager must approve it. Goods coming
// in are received by any cashier; anything that writes stock off or
// overrides the book is a manager's.
var stockReasons = map[string]struct {
	sign    int
	manager bool
}{
	StockDelivery:    {+1, false},
	StockTransferIn:  {+1, false},
	StockCount:       {0, true},
	StockDamage:      {-1, true},
	StockTransferOut: {-1, true},
	StockCorrection:  {0, true},
}

// StockNeedsManager reports whether a stock change for reason needs a
// manager's approval. An unknown reason needs none: the ledger refuses it
// before asking for one.
func StockNeedsManager(reason string) bool { return stockReasons[reason].manager }

// StockChange is a stock movement outside a sale: exactly one of Delta (a
// movement) and Count (the level counted on the shelf) is set, both in
// thousandths like sale quantities (1000 = one piece or one kg).
type StockChange struct {
	// Code is the product's SKU or a barcode scanned from it.
	Code    string
	Delta   *int64
	Count   *int64
	Reason  string
	Note    string
	User    string
	Manager string // who approved; required where StockNeedsManager
}

// StockResult is the level after a stock change.
type StockResult struct {
	SKU    string `json:"sku"`
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Before int64  `json:"before"`
	OnHand int64  `json:"on_hand"`
	Delta  int64  `json:"delta"`
	Reason string `json:"reason"`
}

// ChangeStock records a stock movement or count: the new level, a
// stock.level event for HQ and an audit entry, in one transaction. A count
// is turned into the movement that takes the book level to it, read under
// the write lock so a sale committed meanwhile is not lost from the book.
func (l *Ledger) ChangeStock(ctx context.Context, c StockChange) (StockResult, error) {
	res, err := l.changeStock(ctx, c)
	if err != nil {
		return StockResult{}, fmt.Errorf("stock %s: %w", strings.TrimSpace(c.Code), err)
	}
	return res, nil
}

func (l *Ledger) changeStock(ctx context.Context, c StockChange) (StockResult, error) {
	rule, ok := stockReasons[c.Reason]
	if !ok {
		return StockResult{}, fmt.Errorf("%w: %q (delivery, transfer_in, count, damage, transfer_out, correction)", ErrStockReason, c.Reason)
	}
	if rule.manager && c.Manager == "" {
		return StockResult{}, fmt.Errorf("%s: %w", c.Reason, ErrNeedsManager)
	}
	var qty int64
	switch {
	case (c.Delta == nil) == (c.Count == nil):
		return StockResult{}, fmt.Errorf("%w: give either a delta or a count", ErrBadQuantity)
	case c.Count != nil && c.Reason != StockCount, c.Count == nil && c.Reason == StockCount:
		return StockResult{}, fmt.Errorf("%w: a count is given as count, with reason count", ErrStockReason)
	case c.Count != nil:
		if *c.Count < 0 {
			return StockResult{}, fmt.Errorf("%w: counted %d", ErrBadQuantity, *c.Count)
		}
		qty = *c.Count
	default:
		qty = *c.Delta
		if qty == 0 || (rule.sign > 0 && qty < 0) || (rule.sign < 0 && qty > 0) {
			return StockResult{}, fmt.Errorf("%w: %s of %d", ErrStockReason, c.Reason, qty)
		}
	}
	p, err := l.stockProduct(ctx, strings.TrimSpace(c.Code))
	if err != nil {
		return StockResult{}, err
	}
	if p.Unit != "kg" && qty%1000 != 0 {
		return StockResult{}, fmt.Errorf("%w: %s is counted in whole pieces (1000 each), not %d", ErrBadQuantity, p.SKU, qty)
	}
	res := StockResult{SKU: p.SKU, Name: p.Name, Unit: p.Unit, Reason: c.Reason}
	err = l.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT on_hand FROM inventory WHERE sku = ?), 0)", p.SKU).Scan(&res.Before); err != nil {
			return err
		}
		res.Delta = qty
		if c.Count != nil {
			res.Delta = qty - res.Before
		}
		var err error
		if res.OnHand, err = l.moveStockTx(ctx, tx, p.SKU, res.Delta, c.Reason, l.now()); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s %d → %d (%+d)", p.SKU, res.Before, res.OnHand, res.Delta)
		if n := strings.TrimSpace(c.Note); n != "" {
			detail += " " + n
		}
		return l.auditTx(ctx, tx, "stock_"+c.Reason, c.User, c.Manager, "", detail)
	})
	return res, err
}

// stockProduct finds the product a stock change names: by SKU, else by a
// barcode (any form of a GTIN, or a code stored as is). Inactive products
// can still be counted and written off.
func (l *Ledger) stockProduct(ctx context.Context, code string) (product, error) {
	if code == "" {
		return product{}, fmt.Errorf("%w: no SKU or barcode", ErrUnknownCode)
	}
	p, err := l.productBy(ctx, l.stmts.productBySKU, code)
	if !errors.Is(err, ErrNotFound) {
		return p, err
	}
	key := code
	if bc, perr := l.parser.Parse(code); perr == nil {
		switch bc.Kind {
		case barcode.KindGTIN:
			key = bc.GTIN
		case barcode.KindOther:
			key = bc.Value
		}
	}
	p, err = l.productBy(ctx, l.stmts.productByCode, key)
	if errors.Is(err, ErrNotFound) {
		return product{}, fmt.Errorf("%w: %q is no SKU or barcode of this catalog", ErrUnknownCode, code)
	}
	return p, err
}
