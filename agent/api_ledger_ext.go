package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/edgepos/edgepos/sync/wire"
)

// apiPickup is a pickup order as the POS screen lists it (GET
// /api/pickups). Lines carry HQ's handed totals; the hand-over dialog reads
// the order again through LookupPickup, which adds this terminal's own.
type apiPickup struct {
	ID        string            `json:"id"`
	Code      string            `json:"code"`
	Status    string            `json:"status"`
	Customer  string            `json:"customer,omitempty"`
	Phone     string            `json:"phone,omitempty"`
	Member    string            `json:"member,omitempty"`
	Paid      int64             `json:"paid"`
	Lines     []wire.PickupLine `json:"lines"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// apiPickups lists the pickup orders still to hand over, oldest first.
func (l *Ledger) apiPickups(ctx context.Context, limit int) ([]apiPickup, error) {
	rows, err := l.db.Read.QueryContext(ctx, `SELECT id, code, status, COALESCE(customer, ''), COALESCE(phone, ''), COALESCE(member, ''), paid, lines, updated_at
		FROM pickup_orders WHERE status IN ('open', 'partially_handed_over') ORDER BY updated_at LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("pickup orders: %w", err)
	}
	defer rows.Close()
	out := []apiPickup{}
	for rows.Next() {
		var o apiPickup
		var lines string
		var at sql.NullTime
		if err := rows.Scan(&o.ID, &o.Code, &o.Status, &o.Customer, &o.Phone, &o.Member, &o.Paid, &lines, &at); err != nil {
			return nil, fmt.Errorf("pickup orders: %w", err)
		}
		if err := json.Unmarshal([]byte(lines), &o.Lines); err != nil {
			return nil, fmt.Errorf("pickup order %s: lines: %w", o.Code, err)
		}
		o.UpdatedAt = at.Time.UTC()
		out = append(out, o)
	}
	return out, rows.Err()
}
