package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// PickupOrder is an online order to hand over at this store, as HQ's change
// feed delivered it (the hand-over flow records HandedAt and HandedBy).
type PickupOrder struct {
	ID        string            `json:"id"`
	Code      string            `json:"code"`
	Status    string            `json:"status"` // open, cancelled, fulfilled, handed_over
	Customer  string            `json:"customer,omitempty"`
	Phone     string            `json:"phone,omitempty"`
	Member    string            `json:"member,omitempty"`
	Paid      int64             `json:"paid"`
	Lines     []wire.PickupLine `json:"lines"`
	HandedAt  time.Time         `json:"handed_at,omitzero"`
	HandedBy  string            `json:"handed_by,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

const pickupCols = "id, code, status, COALESCE(customer, ''), COALESCE(phone, ''), COALESCE(member, ''), paid, lines, handed_at, COALESCE(handed_by, ''), updated_at"

// PickupOrders lists pickup orders, newest first; status "" lists all.
func (l *Ledger) PickupOrders(ctx context.Context, status string, limit int) ([]PickupOrder, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE ? = '' OR status = ? ORDER BY updated_at DESC LIMIT ?", status, status, limit)
	if err != nil {
		return nil, fmt.Errorf("pickup orders: %w", err)
	}
	defer rows.Close()
	out := []PickupOrder{}
	for rows.Next() {
		o, err := scanPickup(rows)
		if err != nil {
			return nil, fmt.Errorf("pickup orders: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// FindPickupOrder looks an order up by its pickup code, its id or the
// customer's phone (the most recent order of that phone).
func (l *Ledger) FindPickupOrder(ctx context.Context, q string) (PickupOrder, error) {
	q = strings.TrimSpace(q)
	rows, err := l.db.Read.QueryContext(ctx, "SELECT "+pickupCols+" FROM pickup_orders WHERE code = ? OR id = ? OR phone = ? ORDER BY code = ? DESC, updated_at DESC LIMIT 1", q, q, q, q)
	if err != nil {
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
		}
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, ErrNotFound)
	}
	o, err := scanPickup(rows)
	if err != nil {
		return PickupOrder{}, fmt.Errorf("pickup order %s: %w", q, err)
	}
	return o, nil
}

func scanPickup(rows *sql.Rows) (PickupOrder, error) {
	var o PickupOrder
	var lines string
	var handed sql.NullTime
	if err := rows.Scan(&o.ID, &o.Code, &o.Status, &o.Customer, &o.Phone, &o.Member, &o.Paid, &lines, &handed, &o.HandedBy, &o.UpdatedAt); err != nil {
		return o, err
	}
	if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
		return o, errors.Join(errors.New("stored lines are not valid"), err)
	}
	if handed.Valid {
		o.HandedAt = handed.Time.UTC()
	}
	o.UpdatedAt = o.UpdatedAt.UTC()
	return o, nil
}
