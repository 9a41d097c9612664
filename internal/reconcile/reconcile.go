// Package reconcile compares store terminals' ledgers with what HQ stored,
// sale by sale: the proof behind "never lose a sale, never count one twice"
// that the demo and the chaos run print.
package reconcile

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// Result is the comparison for a set of stores.
type Result struct {
	Sales       int // sales completed (or voided later) in the terminals' ledgers
	AtHQ        int // distinct of those sales HQ holds
	Duplicates  int // sale events HQ holds more than once
	Lost        int // sales in a ledger that HQ does not hold
	Unknown     int // sales HQ holds that no ledger has
	Quarantined int // messages or events HQ refused
	Conflicts   int // coupon redemptions that lost (redeemed twice)
}

// Line is the one-line summary the demo prints last.
func (r Result) Line(withConflicts bool) string {
	if withConflicts {
		return fmt.Sprintf("sales=%d at_hq=%d duplicates=%d lost=%d conflicts=%d", r.Sales, r.AtHQ, r.Duplicates, r.Lost, r.Conflicts)
	}
	return fmt.Sprintf("sales=%d at_hq=%d duplicates=%d lost=%d quarantined=%d", r.Sales, r.AtHQ, r.Duplicates, r.Lost, r.Quarantined)
}

// OK reports whether nothing was lost, duplicated or invented.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Duplicates == 0 && r.Unknown == 0 && r.AtHQ == r.Sales
}

// Terminal is one terminal's ledger database (read side).
type Terminal struct {
	Store string
	DB    *sql.DB
}

// Compare reads every terminal's completed and voided sales and every sale
// event HQ stored for their stores, and matches them by sale id.
func Compare(ctx context.Context, terms []Terminal, s hq.Store) (Result, error) {
	var r Result
	local := map[string]bool{}
	stores := map[string]bool{}
	for _, t := range terms {
		stores[t.Store] = true
		rows, err := t.DB.QueryContext(ctx, "SELECT id FROM sales WHERE state IN ('completed', 'voided')")
		if err != nil {
			return r, fmt.Errorf("read ledger of %s: %w", t.Store, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return r, err
			}
			local[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, err
		}
	}
	r.Sales = len(local)
	seen := map[string]int{}
	for store := range stores {
		err := s.Events(ctx, store, wire.EventSaleCompleted, func(_ string, e wire.Event) error {
			p, err := wire.Payload[wire.SaleCompleted](&e)
			if err != nil {
				return fmt.Errorf("sale event %s: %w", e.ID, err)
			}
			seen[p.SaleID]++
			return nil
		})
		if err != nil {
			return r, err
		}
	}
	r.AtHQ, r.Duplicates, r.Unknown, r.Lost = tally(local, seen)
	q, err := s.ListQuarantine(ctx, 1_000_000)
	if err != nil {
		return r, err
	}
	r.Quarantined = len(q)
	conf, err := s.CouponConflicts(ctx)
	if err != nil {
		return r, err
	}
	r.Conflicts = len(conf)
	return r, nil
}

// EventResult compares terminals' outboxes with HQ event by event: every
// kind the terminals send (sales, voids, returns, coupon redemptions,
// stock, audit), not only sales.
type EventResult struct {
	Outbox      int            // events in the terminals' outboxes, dead letters excluded
	AtHQ        int            // of those, events HQ holds
	Duplicates  int            // events HQ holds more than once (by event id)
	Lost        int            // outbox events HQ does not hold
	Unknown     int            // events HQ holds that no outbox has
	DeadLetters int            // events HQ rejected for good (kept by the terminal)
	ByType      map[string]int // outbox events by type
}

// Line is the one-line summary of an event comparison.
func (r EventResult) Line() string {
	return fmt.Sprintf("events=%d at_hq=%d duplicates=%d lost=%d dead_letters=%d", r.Outbox, r.AtHQ, r.Duplicates, r.Lost, r.DeadLetters)
}

// OK reports whether every outbox event is at HQ exactly once and HQ holds
// nothing else and rejected nothing.
func (r EventResult) OK() bool {
	return r.Lost == 0 && r.Duplicates == 0 && r.Unknown == 0 && r.DeadLetters == 0 && r.AtHQ == r.Outbox
}

// CompareEvents reads every terminal's outbox (acked or not; acked rows
// stay until pruned after the link's retention, 7 days by default) and
// every event HQ stored for their stores, and matches them by event id.
func CompareEvents(ctx context.Context, terms []Terminal, s hq.Store) (EventResult, error) {
	r := EventResult{ByType: map[string]int{}}
	local := map[string]bool{}
	stores := map[string]bool{}
	for _, t := range terms {
		stores[t.Store] = true
		rows, err := t.DB.QueryContext(ctx, "SELECT id, type, rejected IS NOT NULL FROM outbox")
		if err != nil {
			return r, fmt.Errorf("read outbox of %s: %w", t.Store, err)
		}
		for rows.Next() {
			var id, typ string
			var rejected bool
			if err := rows.Scan(&id, &typ, &rejected); err != nil {
				rows.Close()
				return r, err
			}
			if rejected {
				r.DeadLetters++
				continue
			}
			local[id] = true
			r.ByType[typ]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return r, err
		}
	}
	r.Outbox = len(local)
	seen := map[string]int{}
	for store := range stores {
		if err := s.Events(ctx, store, "", func(_ string, e wire.Event) error {
			seen[e.ID]++
			return nil
		}); err != nil {
			return r, err
		}
	}
	r.AtHQ, r.Duplicates, r.Unknown, r.Lost = tally(local, seen)
	return r, nil
}

// tally compares what the stores hold (local) with how often HQ holds each
// (seen): how many HQ holds, its extra copies, those no store knows, and
// those HQ lacks.
func tally(local map[string]bool, seen map[string]int) (atHQ, duplicates, unknown, lost int) {
	for id, n := range seen {
		if n > 1 {
			duplicates += n - 1
		}
		if local[id] {
			atHQ++
		} else {
			unknown++
		}
	}
	for id := range local {
		if seen[id] == 0 {
			lost++
		}
	}
	return atHQ, duplicates, unknown, lost
}
