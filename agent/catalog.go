package agent

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/sync/wire"
)

// Product is a catalog entry with its barcodes.
type Product struct {
	SKU      string   `json:"sku"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"` // each or kg
	TaxClass string   `json:"tax_class"`
	Price    int64    `json:"price"` // per each or per kg
	Active   bool     `json:"active"`
	PLU      string   `json:"plu,omitempty"`
	Barcodes []string `json:"barcodes,omitempty"`
	OnHand   int64    `json:"on_hand"`
}

// TaxClass is a tax rate.
type TaxClass struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	RateBP int64  `json:"rate_bp"`
}

// UpsertTaxClass creates or updates a tax class.
func (l *Ledger) UpsertTaxClass(ctx context.Context, t TaxClass) error {
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error { return upsertTaxClass(ctx, tx, t) })
}

func upsertTaxClass(ctx context.Context, tx *sql.Tx, t TaxClass) error {
	if t.Code == "" || t.RateBP < 0 || t.RateBP > 100000 {
		return fmt.Errorf("tax class %q: code required and rate 0..100000 basis points", t.Code)
	}
	if t.Name == "" {
		t.Name = t.Code
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO tax_classes(code, name, rate_bp) VALUES(?, ?, ?)
		ON CONFLICT(code) DO UPDATE SET name = excluded.name, rate_bp = excluded.rate_bp`, t.Code, t.Name, t.RateBP)
	return err
}

// UpsertProduct creates or updates a product and replaces its barcodes.
func (l *Ledger) UpsertProduct(ctx context.Context, p Product) error {
	return l.db.WriteTx(ctx, func(tx *sql.Tx) error { return upsertProduct(ctx, tx, p, false) })
}

// upsertProduct writes p; keepPLU leaves a stored PLU alone when p has none.
func upsertProduct(ctx context.Context, tx *sql.Tx, p Product, keepPLU bool) error {
	if p.SKU == "" || p.Name == "" {
		return errors.New("product: sku and name are required")
	}
	if p.Unit != "each" && p.Unit != "kg" {
		return fmt.Errorf("product %s: unit %q is not each or kg", p.SKU, p.Unit)
	}
	if p.Price < 0 {
		return fmt.Errorf("product %s: %w", p.SKU, ErrBadPrice)
	}
	codes := make([]string, 0, len(p.Barcodes))
	for _, b := range p.Barcodes {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if g, err := barcode.NormalizeGTIN(b); err == nil {
			b = g
		} else if isDigits(b) {
			return fmt.Errorf("product %s: barcode %s: %w", p.SKU, b, err)
		}
		codes = append(codes, b)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO products(sku, name, unit, tax_class, price, active, plu) VALUES(?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(sku) DO UPDATE SET name = excluded.name, unit = excluded.unit, tax_class = excluded.tax_class,
		price = excluded.price, active = excluded.active, plu = CASE WHEN ? AND excluded.plu IS NULL THEN products.plu ELSE excluded.plu END`,
		p.SKU, p.Name, p.Unit, p.TaxClass, p.Price, p.Active, nullStr(strings.TrimLeft(p.PLU, "0")), keepPLU)
	if err != nil {
		if strings.Contains(err.Error(), "FOREIGN KEY") {
			return fmt.Errorf("product %s: tax class %q does not exist", p.SKU, p.TaxClass)
		}
		return fmt.Errorf("product %s: %w", p.SKU, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM barcodes WHERE sku = ?", p.SKU); err != nil {
		return err
	}
	for _, c := range codes {
		if _, err := tx.ExecContext(ctx, "INSERT INTO barcodes(code, sku) VALUES(?, ?) ON CONFLICT(code) DO UPDATE SET sku = excluded.sku", c, p.SKU); err != nil {
			return fmt.Errorf("product %s: barcode %s: %w", p.SKU, c, err)
		}
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// CatalogCSVHeader is the header ImportCatalogCSV expects. barcodes are
// separated by '|'; unit is each or kg; price is minor units (per kg for kg
// items); active is true/false (default true). The tax class must exist or
// be given as code:rate_bp (e.g. "VAT13:1300").
const CatalogCSVHeader = "sku,name,unit,tax_class,price,barcodes,plu,active"

// ImportCatalogCSV loads products from CSV in one transaction: all rows or
// none. Errors name the line.
func (l *Ledger) ImportCatalogCSV(ctx context.Context, r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("import catalog: header: %w", err)
	}
	for i := range head {
		head[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(head[i], "\ufeff")))
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"sku", "name", "unit", "tax_class", "price"} {
		if _, ok := col[need]; !ok {
			return 0, fmt.Errorf("import catalog: header lacks %q (want %s)", need, CatalogCSVHeader)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	n := 0
	err = l.db.WriteTx(ctx, func(tx *sql.Tx) error {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return nil
			}
			line, _ := cr.FieldPos(0)
			if err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			price, err := strconv.ParseInt(get(rec, "price"), 10, 64)
			if err != nil {
				return fmt.Errorf("line %d: price %q is not whole minor units", line, get(rec, "price"))
			}
			tc := get(rec, "tax_class")
			if code, rate, ok := strings.Cut(tc, ":"); ok {
				bp, err := strconv.ParseInt(rate, 10, 64)
				if err != nil {
					return fmt.Errorf("line %d: tax rate %q is not basis points", line, rate)
				}
				if err := upsertTaxClass(ctx, tx, TaxClass{Code: code, RateBP: bp}); err != nil {
					return fmt.Errorf("line %d: %w", line, err)
				}
				tc = code
			}
			active := true
			if a := get(rec, "active"); a != "" {
				if active, err = strconv.ParseBool(a); err != nil {
					return fmt.Errorf("line %d: active %q is not true/false", line, a)
				}
			}
			var codes []string
			if b := get(rec, "barcodes"); b != "" {
				codes = strings.Split(b, "|")
			}
			p := Product{SKU: get(rec, "sku"), Name: get(rec, "name"), Unit: get(rec, "unit"), TaxClass: tc, Price: price,
				Barcodes: codes, PLU: get(rec, "plu"), Active: active}
			if err := upsertProduct(ctx, tx, p, false); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			n++
		}
	})
	if err != nil {
		return 0, fmt.Errorf("import catalog: %w", err)
	}
	return n, nil
}

// Products searches the catalog by SKU, name or barcode (empty q: all),
// with stock on hand.
func (l *Ledger) Products(ctx context.Context, q string, limit int) ([]Product, error) {
	if limit <= 0 {
		limit = 50
	}
	like := "%" + strings.ReplaceAll(strings.ReplaceAll(q, "%", ""), "_", "") + "%"
	rows, err := l.db.Read.QueryContext(ctx, `SELECT p.sku, p.name, p.unit, p.tax_class, p.price, p.active, COALESCE(p.plu, ''), COALESCE(i.on_hand, 0),
		COALESCE((SELECT group_concat(code, '|') FROM barcodes b WHERE b.sku = p.sku), '')
		FROM products p LEFT JOIN inventory i ON i.sku = p.sku
		WHERE ? = '' OR p.sku = ? OR p.name LIKE ? OR p.sku IN (SELECT sku FROM barcodes WHERE code LIKE ?)
		ORDER BY p.name LIMIT ?`, q, q, like, like, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		var p Product
		var codes string
		if err := rows.Scan(&p.SKU, &p.Name, &p.Unit, &p.TaxClass, &p.Price, &p.Active, &p.PLU, &p.OnHand, &codes); err != nil {
			return nil, err
		}
		if codes != "" {
			p.Barcodes = strings.Split(codes, "|")
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AdjustStock moves on-hand stock of sku by delta (a count, a delivery)
// and tells HQ.
func (l *Ledger) AdjustStock(ctx context.Context, sku string, delta int64, reason string) (int64, error) {
	var onHand int64
	err := l.write(ctx, func(tx *sql.Tx) (err error) {
		onHand, err = l.moveStockTx(ctx, tx, sku, delta, reason, l.now())
		return err
	})
	return onHand, err
}

// moveStockTx moves sku's on-hand stock by delta inside tx and queues the
// stock.level event (at now) HQ's inventory reads; it returns the new level.
func (l *Ledger) moveStockTx(ctx context.Context, tx *sql.Tx, sku string, delta int64, reason string, now time.Time) (int64, error) {
	var onHand int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO inventory(sku, on_hand) VALUES(?, ?)
		ON CONFLICT(sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand RETURNING on_hand`, sku, delta).Scan(&onHand); err != nil {
		return 0, err
	}
	_, err := l.db.AppendEvent(ctx, tx, wire.EventStockLevel, wire.StockLevel{SKU: sku, OnHand: onHand, Delta: delta, Reason: reason, At: now}, now)
	return onHand, err
}

// ApplyChange applies one change-feed entry from HQ inside tx (the sync
// link commits its feed cursor in the same transaction). It is idempotent;
// unknown kinds are skipped for forward compatibility.
//
// Deletes: a product is deactivated (past sales keep naming it), a coupon
// key is revoked, a revocation is lifted, a member or issued coupon is
// removed, a pickup order is cancelled unless already handed over, store
// config falls back to the terminal's; a tax class is kept (products may
// still use it).
func (l *Ledger) ApplyChange(ctx context.Context, tx *sql.Tx, c wire.Change) error {
	if err := l.applyChange(ctx, tx, c); err != nil {
		return fmt.Errorf("apply change %d (%s %s): %w", c.Version, c.Kind, c.Key, err)
	}
	return nil
}

func (l *Ledger) applyChange(ctx context.Context, tx *sql.Tx, c wire.Change) error {
	switch c.Op {
	case wire.OpUpsert, "":
	case wire.OpDelete:
		return l.applyDelete(ctx, tx, c)
	default:
		return fmt.Errorf("op %q is not upsert or delete", c.Op)
	}
	switch c.Kind {
	case wire.ChangeProduct:
		var p wire.ProductChange
		if err := strictJSON(c.Data, &p); err != nil {
			return err
		}
		if p.TaxClass == "" {
			p.TaxClass = "STD"
		}
		res, err := tx.ExecContext(ctx, "INSERT INTO tax_classes(code, name, rate_bp) VALUES(?, ?, 0) ON CONFLICT DO NOTHING", p.TaxClass, p.TaxClass)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			// HQ sends tax classes before the products that use them; until
			// this one arrives the product sells at 0 %, which must show.
			l.log.Warn("product names a tax class the store does not have; created at 0 % until HQ sends it", "sku", p.SKU, "class", p.TaxClass)
		}
		// HQ's product carries no PLU: a scale PLU set at the store stays.
		return upsertProduct(ctx, tx, Product{SKU: p.SKU, Name: p.Name, Unit: p.Unit, TaxClass: p.TaxClass, Price: p.Price, Active: p.Active, Barcodes: p.Barcodes}, true)
	case wire.ChangeTaxClass:
		var t wire.TaxClassChange
		if err := strictJSON(c.Data, &t); err != nil {
			return err
		}
		return upsertTaxClass(ctx, tx, TaxClass{Code: t.Code, Name: t.Name, RateBP: t.RateBP})
	case wire.ChangeCouponKey:
		var k wire.CouponKeyChange
		if err := strictJSON(c.Data, &k); err != nil {
			return err
		}
		if len(k.PublicKey) != 32 {
			return fmt.Errorf("coupon key %s: public key is %d bytes, want 32", k.KeyID, len(k.PublicKey))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO coupon_keys(key_id, public_key, revoked) VALUES(?, ?, ?)
			ON CONFLICT(key_id) DO UPDATE SET public_key = excluded.public_key, revoked = excluded.revoked`, k.KeyID, k.PublicKey, k.Revoked)
		return err
	case wire.ChangeRevocation:
		var r wire.RevocationChange
		if len(c.Data) > 0 {
			if err := strictJSON(c.Data, &r); err != nil {
				return err
			}
		}
		if r.CouponID == "" {
			r.CouponID = c.Key
		}
		if r.RevokedAt.IsZero() {
			r.RevokedAt = c.At
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO coupon_revocations(coupon_id, reason, revoked_at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING", r.CouponID, r.Reason, r.RevokedAt.UTC())
		return err
	case wire.ChangeCoupon:
		var cc wire.CouponChange
		if err := strictJSON(c.Data, &cc); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO coupons_issued(coupon_id, member, token) VALUES(?, ?, ?) ON CONFLICT(coupon_id) DO UPDATE SET member = excluded.member, token = excluded.token",
			cc.CouponID, nullStr(cc.Member), cc.Token)
		return err
	case wire.ChangeMember:
		var m wire.MemberChange
		if err := strictJSON(c.Data, &m); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO members(id, phone, name, tier, points, offline_cap) VALUES(?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET phone = excluded.phone, name = excluded.name, tier = excluded.tier, points = excluded.points, offline_cap = excluded.offline_cap`,
			m.MemberID, nullStr(m.Phone), nullStr(m.Name), nullStr(m.Tier), m.Points, m.OfflineCap)
		return err
	case wire.ChangePickupOrder:
		var o wire.PickupOrderChange
		if err := strictJSON(c.Data, &o); err != nil {
			return err
		}
		if o.OrderID == "" || o.Code == "" {
			return errors.New("pickup order without id or code")
		}
		lines, err := json.Marshal(o.Lines)
		if err != nil {
			return err
		}
		if o.Status == "fulfilled" {
			o.Status = PickupHandedOver // handed over in full at another terminal
		}
		// A hand-over recorded here is never undone by HQ's view.
		_, err = tx.ExecContext(ctx, `INSERT INTO pickup_orders(id, code, status, customer, phone, member, paid, lines, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET status = CASE WHEN pickup_orders.status = 'handed_over' THEN pickup_orders.status ELSE excluded.status END,
			customer = excluded.customer, phone = excluded.phone, member = excluded.member, paid = excluded.paid, lines = excluded.lines, updated_at = excluded.updated_at`,
			o.OrderID, o.Code, o.Status, nullStr(o.Customer), nullStr(o.Phone), nullStr(o.Member), o.Paid, string(lines), c.At.UTC())
		return err
	case wire.ChangeStoreConfig:
		var sc wire.StoreConfigChange
		if err := strictJSON(c.Data, &sc); err != nil {
			return err
		}
		// The entry is HQ's whole store config: a setting it leaves out
		// (zero) falls back to the terminal's own configuration. It is read
		// where it is used, so it holds only once this transaction commits
		// and survives a restart.
		for k, v := range map[string]int64{settingPointsPerUnit: sc.PointsPerUnit, settingPointValue: sc.PointValue, settingCouponCap: sc.CouponOfflineCap} {
			var err error
			if v > 0 {
				_, err = tx.ExecContext(ctx, "INSERT INTO store_settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", k, strconv.FormatInt(v, 10))
			} else {
				_, err = tx.ExecContext(ctx, "DELETE FROM store_settings WHERE key = ?", k)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	l.log.Info("change-feed entry of a kind this agent does not know; skipped", "kind", c.Kind, "key", c.Key)
	return nil
}

// Store settings HQ owns (store_settings keys).
const (
	settingPointsPerUnit = "points_per_unit"
	settingPointValue    = "point_value"
	settingCouponCap     = "coupon_offline_cap"
)

// CouponOfflineCap is the offline coupon budget in force: HQ's store
// config if it set one, else LedgerConfig.CouponOfflineCap. 0 means none.
func (l *Ledger) CouponOfflineCap(ctx context.Context) (int64, error) {
	var v string
	err := l.db.Read.QueryRowContext(ctx, "SELECT value FROM store_settings WHERE key = ?", settingCouponCap).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return l.cfg.CouponOfflineCap, nil
	}
	if err != nil {
		return 0, fmt.Errorf("coupon offline cap: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("coupon offline cap: stored value %q: %w", v, err)
	}
	return n, nil
}

// applyDelete applies a delete entry; its Key names the row.
func (l *Ledger) applyDelete(ctx context.Context, tx *sql.Tx, c wire.Change) error {
	var err error
	switch c.Kind {
	case wire.ChangeProduct:
		_, err = tx.ExecContext(ctx, "UPDATE products SET active = 0 WHERE sku = ?", c.Key)
	case wire.ChangeTaxClass:
		l.log.Info("tax class delete kept: products may still use it", "class", c.Key)
	case wire.ChangeCouponKey:
		_, err = tx.ExecContext(ctx, "UPDATE coupon_keys SET revoked = 1 WHERE key_id = ?", c.Key)
	case wire.ChangeRevocation:
		_, err = tx.ExecContext(ctx, "DELETE FROM coupon_revocations WHERE coupon_id = ?", c.Key)
	case wire.ChangeCoupon:
		_, err = tx.ExecContext(ctx, "DELETE FROM coupons_issued WHERE coupon_id = ?", c.Key)
	case wire.ChangeMember:
		_, err = tx.ExecContext(ctx, "DELETE FROM members WHERE id = ?", c.Key)
	case wire.ChangePickupOrder:
		_, err = tx.ExecContext(ctx, "UPDATE pickup_orders SET status = 'cancelled', updated_at = ? WHERE id = ? AND status <> 'handed_over'", c.At.UTC(), c.Key)
	case wire.ChangeStoreConfig:
		_, err = tx.ExecContext(ctx, "DELETE FROM store_settings WHERE key IN (?, ?, ?)", settingPointsPerUnit, settingPointValue, settingCouponCap)
	default:
		l.log.Info("change-feed entry of a kind this agent does not know; skipped", "kind", c.Kind, "key", c.Key)
	}
	return err
}

func strictJSON(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("change has no data")
	}
	return wire.DecodePayload(data, v)
}

// Member is a loyalty member as the store knows them.
type Member struct {
	ID         string `json:"id"`
	Phone      string `json:"phone,omitempty"`
	Name       string `json:"name,omitempty"`
	Tier       string `json:"tier,omitempty"`
	Points     int64  `json:"points"`
	OfflineCap int64  `json:"offline_cap"`
}

// FindMember looks a member up by id, member QR text or phone.
func (l *Ledger) FindMember(ctx context.Context, q string) (Member, error) {
	q = strings.TrimSpace(q)
	var m Member
	var phone, name, tier sql.NullString
	err := l.db.Read.QueryRowContext(ctx, "SELECT id, phone, name, tier, points, offline_cap FROM members WHERE id = ? OR phone = ? LIMIT 1", q, q).
		Scan(&m.ID, &phone, &name, &tier, &m.Points, &m.OfflineCap)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("member %s: %w", q, ErrNotFound)
	}
	m.Phone, m.Name, m.Tier = phone.String, name.String, tier.String
	return m, err
}
