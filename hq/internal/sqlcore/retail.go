package sqlcore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

// retailOp is one event of a batch that moves points, hands a pickup order
// over or returns a purchase, kept in seq order: a void or a return must
// find the points its sale moved, even in the same batch.
type retailOp struct {
	e        *wire.Event
	sale     *wire.SaleCompleted
	void     *wire.SaleVoided
	handover *wire.PickupFulfilled
	refund   *wire.ReturnCompleted // an online purchase returned in a store
	ret      *wire.ReturnCompleted // a return against a store sale
}

// retailState collects what a batch's retail events touched, so each
// member and order gets one feed entry per batch.
type retailState struct {
	store, terminal string
	now             time.Time
	members         map[string]bool // attached member ids whose balance moved
	orders          []hq.ChangeInput
	rule            *int64 // the store's points per unit, read once
}

// projectRetail applies a batch's retail events in seq order and appends
// the feed entries they call for (each moved member's balance, each handed
// order's state). It runs inside the ingest transaction, before coupons
// are settled: locks are taken pickup and member first, then the feed,
// then coupons, the order every writer keeps.
func (c *Core) projectRetail(ctx context.Context, tx Tx, store, terminal string, ops []retailOp, now time.Time) ([]hq.FeedEntry, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	st := &retailState{store: store, terminal: terminal, now: now, members: map[string]bool{}}
	// Lock what is known up front, in a fixed order.
	var orderIDs, codes []string
	for _, op := range ops {
		switch {
		case op.handover != nil:
			orderIDs = append(orderIDs, op.handover.OrderID)
		case op.sale != nil:
			codes = append(codes, op.sale.Member)
		}
	}
	for _, id := range sortedUnique(orderIDs) {
		if err := c.lock(ctx, tx, "pickup:"+id); err != nil {
			return nil, fmt.Errorf("lock pickup order %s: %w", id, err)
		}
	}
	var ids []string
	for _, code := range codes {
		id, _, err := resolveMember(ctx, tx, code)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	for _, id := range sortedUnique(ids) {
		if err := c.lock(ctx, tx, "member:"+id); err != nil {
			return nil, fmt.Errorf("lock member %s: %w", id, err)
		}
	}
	for _, op := range ops {
		var err error
		switch {
		case op.sale != nil:
			err = c.salePoints(ctx, tx, st, op.e, op.sale)
		case op.void != nil:
			err = c.voidPoints(ctx, tx, st, op.e, op.void)
		case op.handover != nil:
			err = c.projectHandover(ctx, tx, st, op.e, op.handover)
		case op.refund != nil:
			err = projectOnlineRefund(ctx, tx, st, op.e, op.refund)
		case op.ret != nil:
			err = c.returnPoints(ctx, tx, st, op.e, op.ret)
		}
		if err != nil {
			return nil, fmt.Errorf("project seq %d: %w", op.e.Seq, err)
		}
	}
	changes := st.orders
	for _, id := range sortedKeys(st.members) {
		ch, err := memberChange(ctx, tx, id, now)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return c.appendChanges(ctx, tx, changes)
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// resolveMember finds the member a store's code names: its id, else the
// member with that phone. Unknown codes come back as themselves, not
// attached.
func resolveMember(ctx context.Context, q Querier, code string) (id string, known bool, err error) {
	err = q.QueryRow(ctx, "SELECT id FROM members WHERE id = ? OR (phone = ? AND phone <> '') ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1",
		code, code, code).Scan(&id)
	if isNoRows(err) {
		return code, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("resolve member %s: %w", code, err)
	}
	return id, true, nil
}

// pointsMove is one ledger entry to write.
type pointsMove struct {
	key, code, kind, saleID, receipt, reason string
	points                                   int64
	at                                       time.Time
	terminal                                 string // the batch's when empty
}

// salePoints records what a store sale spent and earned. A sale the store
// sold to a member it did not know (points_pending) earns by HQ's rule for
// the store.
func (c *Core) salePoints(ctx context.Context, tx Tx, st *retailState, e *wire.Event, p *wire.SaleCompleted) error {
	earned := p.PointsEarned
	if p.PointsPending {
		perUnit, err := st.pointsPerUnit(ctx, tx)
		if err != nil {
			return err
		}
		var byPoints int64
		for _, t := range p.Tenders {
			if t.Kind == "points" {
				byPoints += t.Amount
			}
		}
		earned = wire.PointsFor(p.Total-byPoints, wire.CurrencyDigits(p.Currency), perUnit)
	}
	at := p.CompletedAt
	if at.IsZero() {
		at = e.At
	}
	// Spending first: the balance must cover it before this sale's
	// earnings count.
	if p.PointsSpent > 0 {
		if err := c.applyMove(ctx, tx, st, pointsMove{key: e.ID + ":spend", code: p.Member, kind: hq.PointsSpend, saleID: p.SaleID,
			receipt: p.Receipt, points: -p.PointsSpent, at: at}); err != nil {
			return err
		}
	}
	if earned > 0 {
		reason := ""
		if p.PointsPending {
			reason = "member unknown at the store: earned by HQ's rule"
		}
		if err := c.applyMove(ctx, tx, st, pointsMove{key: e.ID + ":earn", code: p.Member, kind: hq.PointsEarn, saleID: p.SaleID,
			receipt: p.Receipt, points: earned, reason: reason, at: at}); err != nil {
			return err
		}
	}
	// Returns of this sale that arrived first (a later batch stored
	// before this one) move their points now.
	return c.settleReturnPoints(ctx, tx, st, p.SaleID)
}

// pointsPerUnit is the store's earning rule as HQ last set it (store
// config), 1 when it set none: the agent's default.
func (st *retailState) pointsPerUnit(ctx context.Context, tx Tx) (int64, error) {
	if st.rule != nil {
		return *st.rule, nil
	}
	var data []byte
	var op string
	rule := int64(1)
	err := tx.QueryRow(ctx, "SELECT op, data FROM change_feed WHERE kind = ? AND key = 'store' AND (store = ? OR store = '*') ORDER BY version DESC LIMIT 1",
		wire.ChangeStoreConfig, st.store).Scan(&op, &data)
	switch {
	case isNoRows(err):
	case err != nil:
		return 0, fmt.Errorf("read store config: %w", err)
	case op == wire.OpUpsert && len(data) > 0:
		var sc wire.StoreConfigChange
		if err := json.Unmarshal(data, &sc); err != nil {
			return 0, fmt.Errorf("read store config: %w", err)
		}
		if sc.PointsPerUnit > 0 {
			rule = sc.PointsPerUnit
		}
	}
	st.rule = &rule
	return rule, nil
}

// voidPoints gives back what a voided sale moved, per member, net of what
// its returns moved back (a store does not void a sale with returns; if
// the uploads say it did, the member still ends where it started).
func (c *Core) voidPoints(ctx context.Context, tx Tx, st *retailState, e *wire.Event, p *wire.SaleVoided) error {
	type sum struct {
		member string
		points int64
	}
	var sums []sum
	err := scanEach(ctx, tx, func(r Rows) error {
		var s sum
		if err := r.Scan(&s.member, &s.points); err != nil {
			return err
		}
		sums = append(sums, s)
		return nil
	}, "SELECT member, SUM(points) FROM points_ledger WHERE sale_id = ? AND kind IN (?, ?, ?, ?) AND store = ? GROUP BY member ORDER BY member",
		p.SaleID, hq.PointsEarn, hq.PointsSpend, hq.PointsReturnEarn, hq.PointsReturnSpend, st.store)
	if err != nil {
		return fmt.Errorf("read points of voided sale %s: %w", p.SaleID, err)
	}
	at := p.VoidedAt
	if at.IsZero() {
		at = e.At
	}
	for _, s := range sums {
		if s.points == 0 {
			continue
		}
		if err := c.lock(ctx, tx, "member:"+s.member); err != nil {
			return err
		}
		if err := c.applyMove(ctx, tx, st, pointsMove{key: e.ID + ":void:" + s.member, code: s.member, kind: hq.PointsVoid, saleID: p.SaleID,
			receipt: p.Receipt, points: -s.points, reason: "sale voided", at: at}); err != nil {
			return err
		}
	}
	return nil
}

// applyMove writes one ledger entry once (by key), moves the member's
// balance and records an overdraft or an unknown member as a conflict.
func (c *Core) applyMove(ctx context.Context, tx Tx, st *retailState, m pointsMove) error {
	var exists int
	if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM points_ledger WHERE key = ?", m.key).Scan(&exists); err != nil {
		return fmt.Errorf("points %s: %w", m.key, err)
	}
	if exists > 0 {
		return nil
	}
	id, known, err := resolveMember(ctx, tx, m.code)
	if err != nil {
		return err
	}
	terminal := cmp.Or(m.terminal, st.terminal)
	var balance int64
	if known {
		if err := tx.QueryRow(ctx, "UPDATE members SET balance = balance + ?, updated_at = ? WHERE id = ? RETURNING balance", m.points, st.now, id).Scan(&balance); err != nil {
			return fmt.Errorf("move points of %s: %w", id, err)
		}
		st.members[id] = true
	}
	if _, err := tx.Exec(ctx, `INSERT INTO points_ledger(key, member, attached, kind, points, balance, store, terminal, sale_id, receipt, reason, at, recorded_at)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.key, id, known, m.kind, m.points, balance, st.store, terminal, m.saleID, m.receipt, m.reason, m.at.UTC(), st.now); err != nil {
		return fmt.Errorf("points %s: %w", m.key, err)
	}
	reason := ""
	switch {
	case !known:
		reason = hq.ConflictUnknownMember
	case (m.kind == hq.PointsSpend || m.kind == hq.PointsReturnEarn) && balance < 0:
		// A return taking back earned points the member already spent
		// overdraws as a spend does.
		reason = hq.ConflictOverdraft
	default:
		return nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO points_conflicts(key, member, reason, points, balance, store, terminal, sale_id, receipt, at, detected_at)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		m.key, id, reason, m.points, balance, st.store, terminal, m.saleID, m.receipt, m.at.UTC(), st.now)
	if err != nil {
		return fmt.Errorf("points conflict %s: %w", m.key, err)
	}
	return nil
}

// memberChange is a member's feed entry: its profile and HQ's balance.
func memberChange(ctx context.Context, q Querier, id string, now time.Time) (hq.ChangeInput, error) {
	var m wire.MemberChange
	var target string
	err := q.QueryRow(ctx, "SELECT id, phone, name, tier, balance, offline_cap, target FROM members WHERE id = ?", id).
		Scan(&m.MemberID, &m.Phone, &m.Name, &m.Tier, &m.Points, &m.OfflineCap, &target)
	if err != nil {
		return hq.ChangeInput{}, fmt.Errorf("read member %s: %w", id, err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return hq.ChangeInput{}, err
	}
	return hq.ChangeInput{Store: target, Kind: wire.ChangeMember, Key: id, Op: wire.OpUpsert, Data: data, At: now}, nil
}

// PutMembers implements hq.Store.
func (c *Core) PutMembers(ctx context.Context, target string, ms []wire.MemberChange, at time.Time) ([]hq.FeedEntry, error) {
	if target == "" {
		target = hq.AllStores
	}
	at = at.UTC()
	var out []hq.FeedEntry
	err := c.inTx(ctx, "put members", func(tx Tx) error {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.MemberID
		}
		if len(sortedUnique(ids)) != len(ids) {
			return fmt.Errorf("%w: a member is listed twice", hq.ErrConflict)
		}
		for _, id := range sortedUnique(ids) {
			if err := c.lock(ctx, tx, "member:"+id); err != nil {
				return err
			}
		}
		changes := make([]hq.ChangeInput, 0, len(ms))
		for _, m := range ms {
			n, err := tx.Exec(ctx, "UPDATE members SET phone = ?, name = ?, tier = ?, offline_cap = ?, target = ?, updated_at = ? WHERE id = ?",
				m.Phone, m.Name, m.Tier, m.OfflineCap, target, at, m.MemberID)
			if err != nil {
				return fmt.Errorf("update member %s: %w", m.MemberID, err)
			}
			if n > 0 && m.Points != 0 {
				return fmt.Errorf("%w: member %s exists: its points move through POST /api/members/%s/points, not PUT", hq.ErrConflict, m.MemberID, m.MemberID)
			}
			if n == 0 {
				if err := c.createMember(ctx, tx, m, target, at); err != nil {
					return err
				}
			}
			ch, err := memberChange(ctx, tx, m.MemberID, at)
			if err != nil {
				return err
			}
			changes = append(changes, ch)
		}
		var err error
		out, err = c.appendChanges(ctx, tx, changes)
		return err
	})
	return out, err
}

// createMember inserts a member with its opening balance and attaches the
// entries stores recorded under its id or phone before HQ knew it.
func (c *Core) createMember(ctx context.Context, tx Tx, m wire.MemberChange, target string, at time.Time) error {
	if _, err := tx.Exec(ctx, "INSERT INTO members(id, phone, name, tier, offline_cap, target, balance, created_at, updated_at) VALUES(?, ?, ?, ?, ?, ?, 0, ?, ?)",
		m.MemberID, m.Phone, m.Name, m.Tier, m.OfflineCap, target, at, at); err != nil {
		return fmt.Errorf("create member %s: %w", m.MemberID, err)
	}
	if m.Points > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO points_ledger(key, member, attached, kind, points, balance, reason, at, recorded_at)
			VALUES(?, ?, TRUE, ?, ?, 0, 'opening balance', ?, ?)`, "opening:"+m.MemberID, m.MemberID, hq.PointsOpening, m.Points, at, at); err != nil {
			return fmt.Errorf("opening balance of %s: %w", m.MemberID, err)
		}
	}
	codes := []any{m.MemberID}
	q := "member = ?"
	if m.Phone != "" {
		q = "member IN (?, ?)"
		codes = []any{m.MemberID, m.Phone}
	}
	if _, err := tx.Exec(ctx, "UPDATE points_ledger SET member = ?, attached = TRUE WHERE attached = FALSE AND "+q, append([]any{m.MemberID}, codes...)...); err != nil {
		return fmt.Errorf("attach points to %s: %w", m.MemberID, err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM points_conflicts WHERE reason = ? AND "+q, append([]any{hq.ConflictUnknownMember}, codes...)...); err != nil {
		return fmt.Errorf("attach points to %s: %w", m.MemberID, err)
	}
	// Running balances, oldest first.
	type entry struct{ id, points int64 }
	var es []entry
	if err := scanEach(ctx, tx, func(r Rows) error {
		var e entry
		if err := r.Scan(&e.id, &e.points); err != nil {
			return err
		}
		es = append(es, e)
		return nil
	}, "SELECT id, points FROM points_ledger WHERE member = ? AND attached ORDER BY id", m.MemberID); err != nil {
		return fmt.Errorf("attach points to %s: %w", m.MemberID, err)
	}
	var bal int64
	for _, e := range es {
		bal += e.points
		if _, err := tx.Exec(ctx, "UPDATE points_ledger SET balance = ? WHERE id = ?", bal, e.id); err != nil {
			return fmt.Errorf("attach points to %s: %w", m.MemberID, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE members SET balance = ? WHERE id = ?", bal, m.MemberID); err != nil {
		return fmt.Errorf("attach points to %s: %w", m.MemberID, err)
	}
	return nil
}

const pointsCols = "id, key, member, attached, kind, points, balance, store, terminal, sale_id, receipt, reason, at"

func scanPoints(r Rows) (hq.PointsEntry, error) {
	var e hq.PointsEntry
	err := r.Scan(&e.ID, &e.Key, &e.Member, &e.Attached, &e.Kind, &e.Points, &e.Balance, &e.Store, &e.Terminal, &e.SaleID, &e.Receipt, &e.Reason, &e.At)
	e.At = e.At.UTC()
	return e, err
}

// Member implements hq.Store.
func (c *Core) Member(ctx context.Context, id string, ledgerLimit int) (hq.MemberInfo, error) {
	if ledgerLimit <= 0 {
		ledgerLimit = 100
	}
	var m hq.MemberInfo
	err := c.db.QueryRow(ctx, "SELECT id, phone, name, tier, offline_cap, target, balance, created_at, updated_at FROM members WHERE id = ?", id).
		Scan(&m.ID, &m.Phone, &m.Name, &m.Tier, &m.OfflineCap, &m.Target, &m.Balance, &m.CreatedAt, &m.UpdatedAt)
	if isNoRows(err) {
		return m, fmt.Errorf("member %s: %w", id, hq.ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("read member %s: %w", id, err)
	}
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	m.QR = wire.MemberQR(m.ID)
	m.Ledger = []hq.PointsEntry{}
	if err := scanEach(ctx, c.db, func(r Rows) error {
		e, err := scanPoints(r)
		m.Ledger = append(m.Ledger, e)
		return err
	}, "SELECT "+pointsCols+" FROM points_ledger WHERE member = ? AND attached ORDER BY id DESC LIMIT ?", id, ledgerLimit); err != nil {
		return m, fmt.Errorf("read points of %s: %w", id, err)
	}
	m.Conflicts, err = c.pointsConflicts(ctx, "WHERE member = ?", id)
	return m, err
}

// AdjustPoints implements hq.Store.
func (c *Core) AdjustPoints(ctx context.Context, id string, delta int64, ref, reason string, at time.Time) (hq.PointsEntry, []hq.FeedEntry, error) {
	var entry hq.PointsEntry
	var feed []hq.FeedEntry
	at = at.UTC()
	key := "api:" + id + ":" + ref
	err := c.inTx(ctx, "adjust points of "+id, func(tx Tx) error {
		feed = nil
		if err := c.lock(ctx, tx, "member:"+id); err != nil {
			return err
		}
		err := scanEach(ctx, tx, func(r Rows) error {
			var err error
			entry, err = scanPoints(r)
			return err
		}, "SELECT "+pointsCols+" FROM points_ledger WHERE key = ?", key)
		if err != nil {
			return err
		}
		if entry.Key != "" {
			if entry.Points != delta {
				return fmt.Errorf("%w: ref %q was used for %d points", hq.ErrConflict, ref, entry.Points)
			}
			return nil // the same request again
		}
		var balance int64
		err = tx.QueryRow(ctx, "SELECT balance FROM members WHERE id = ?", id).Scan(&balance)
		if isNoRows(err) {
			return fmt.Errorf("member %s: %w", id, hq.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if balance+delta < 0 {
			return fmt.Errorf("%w: member %s has %d points, cannot take %d", hq.ErrConflict, id, balance, -delta)
		}
		balance += delta
		if _, err := tx.Exec(ctx, "UPDATE members SET balance = ?, updated_at = ? WHERE id = ?", balance, at, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO points_ledger(key, member, attached, kind, points, balance, store, reason, at, recorded_at)
			VALUES(?, ?, TRUE, ?, ?, ?, 'online', ?, ?, ?)`, key, id, hq.PointsAdjust, delta, balance, reason, at, at); err != nil {
			return err
		}
		entry = hq.PointsEntry{Key: key, Member: id, Attached: true, Kind: hq.PointsAdjust, Points: delta, Balance: balance, Store: "online", Reason: reason, At: at}
		ch, err := memberChange(ctx, tx, id, at)
		if err != nil {
			return err
		}
		feed, err = c.appendChanges(ctx, tx, []hq.ChangeInput{ch})
		return err
	})
	return entry, feed, err
}

func (c *Core) pointsConflicts(ctx context.Context, where string, args ...any) ([]hq.PointsConflict, error) {
	out := []hq.PointsConflict{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var x hq.PointsConflict
		if err := r.Scan(&x.Key, &x.Member, &x.Reason, &x.Points, &x.Balance, &x.Store, &x.Terminal, &x.SaleID, &x.Receipt, &x.At, &x.DetectedAt); err != nil {
			return err
		}
		x.At, x.DetectedAt = x.At.UTC(), x.DetectedAt.UTC()
		out = append(out, x)
		return nil
	}, "SELECT key, member, reason, points, balance, store, terminal, sale_id, receipt, at, detected_at FROM points_conflicts "+where+" ORDER BY detected_at, key", args...)
	if err != nil {
		return nil, fmt.Errorf("read points conflicts: %w", err)
	}
	return out, nil
}

// PointsConflicts implements hq.Store.
func (c *Core) PointsConflicts(ctx context.Context) ([]hq.PointsConflict, error) {
	return c.pointsConflicts(ctx, "")
}

// CreatePickupOrder implements hq.Store.
func (c *Core) CreatePickupOrder(ctx context.Context, store string, o wire.PickupOrderChange, at time.Time) (hq.FeedEntry, error) {
	var out hq.FeedEntry
	at = at.UTC()
	err := c.inTx(ctx, "create pickup order "+o.OrderID, func(tx Tx) error {
		if err := c.lock(ctx, tx, "pickup:"+o.OrderID); err != nil {
			return err
		}
		data, err := json.Marshal(o)
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `INSERT INTO pickup_orders(id, store, code, status, order_data, paid, created_at, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, o.OrderID, store, o.Code, hq.PickupOpen, data, o.Paid, at, at)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: pickup order id %s or code %s is taken", hq.ErrConflict, o.OrderID, o.Code)
		}
		es, err := c.appendChanges(ctx, tx, []hq.ChangeInput{{Store: store, Kind: wire.ChangePickupOrder, Key: o.OrderID, Op: wire.OpUpsert, Data: data, At: at}})
		if err != nil {
			return err
		}
		out = es[0]
		return nil
	})
	return out, err
}

// CancelPickupOrder implements hq.Store.
func (c *Core) CancelPickupOrder(ctx context.Context, store, id string, at time.Time) (hq.FeedEntry, error) {
	var out hq.FeedEntry
	at = at.UTC()
	err := c.inTx(ctx, "cancel pickup order "+id, func(tx Tx) error {
		if err := c.lock(ctx, tx, "pickup:"+id); err != nil {
			return err
		}
		var status string
		var data []byte
		err := tx.QueryRow(ctx, "SELECT status, order_data FROM pickup_orders WHERE id = ? AND store = ?", id, store).Scan(&status, &data)
		if isNoRows(err) {
			return fmt.Errorf("pickup order %s of %s: %w", id, store, hq.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if status != hq.PickupOpen {
			return fmt.Errorf("%w: pickup order is %s", hq.ErrConflict, status)
		}
		var o wire.PickupOrderChange
		if err := json.Unmarshal(data, &o); err != nil {
			return err
		}
		o.Status = hq.PickupCancelled
		if data, err = json.Marshal(o); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE pickup_orders SET status = ?, order_data = ?, cancelled_at = ?, updated_at = ? WHERE id = ?",
			hq.PickupCancelled, data, at, at, id); err != nil {
			return err
		}
		es, err := c.appendChanges(ctx, tx, []hq.ChangeInput{{Store: store, Kind: wire.ChangePickupOrder, Key: id, Op: wire.OpUpsert, Data: data, At: at}})
		if err != nil {
			return err
		}
		out = es[0]
		return nil
	})
	return out, err
}

// projectHandover accepts a hand-over into the order's totals, or records
// it as a conflict: the order was cancelled at HQ, is unknown, belongs to
// another store, was already fulfilled, or the quantities pass what was
// ordered. Nothing is dropped: the store handed the goods over either way.
func (c *Core) projectHandover(ctx context.Context, tx Tx, st *retailState, e *wire.Event, p *wire.PickupFulfilled) error {
	var (
		ordStore, status string
		data             []byte
		cancelled        sql.NullTime
	)
	err := tx.QueryRow(ctx, "SELECT store, status, order_data, cancelled_at FROM pickup_orders WHERE id = ?", p.OrderID).Scan(&ordStore, &status, &data, &cancelled)
	found := err == nil
	if err != nil && !isNoRows(err) {
		return fmt.Errorf("read pickup order %s: %w", p.OrderID, err)
	}
	var o wire.PickupOrderChange
	if found {
		if err := json.Unmarshal(data, &o); err != nil {
			return fmt.Errorf("read pickup order %s: %w", p.OrderID, err)
		}
	}
	reason := ""
	switch {
	case !found:
		reason = hq.ConflictUnknownOrder
	case ordStore != st.store:
		reason = hq.ConflictOtherStore
	case status == hq.PickupCancelled:
		reason = hq.ConflictCancelled
	case status == hq.PickupFulfilled:
		reason = hq.ConflictAlreadyHanded
	default:
		reason = addHandover(&o, p.Lines)
	}
	handed := p.HandedAt.UTC()
	lines, err := json.Marshal(p.Lines)
	if err != nil {
		return err
	}
	hstatus := hq.HandoverOK
	if reason != "" {
		hstatus = hq.HandoverConflict
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pickup_handovers(event_id, order_id, store, terminal, code, handover_id, cashier, handed_at, final, complete, lines, status, reason)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		e.ID, p.OrderID, st.store, st.terminal, p.Code, p.HandoverID, p.Cashier, handed, p.Final, p.Complete, lines, hstatus, reason); err != nil {
		return fmt.Errorf("record hand-over of %s: %w", p.OrderID, err)
	}
	if reason != "" {
		return nil
	}
	// HQ's own view decides the order's state: every line handed in full
	// or recorded missing.
	o.Status = hq.PickupFulfilled
	for _, l := range o.Lines {
		if l.Handed < l.Qty && !l.Missing {
			o.Status = hq.PickupPartial
		}
	}
	if data, err = json.Marshal(o); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "UPDATE pickup_orders SET status = ?, order_data = ?, handed_at = COALESCE(handed_at, ?), updated_at = ? WHERE id = ?",
		o.Status, data, handed, st.now, p.OrderID); err != nil {
		return fmt.Errorf("update pickup order %s: %w", p.OrderID, err)
	}
	// The store's other terminals learn it through the feed.
	st.orders = append(st.orders, hq.ChangeInput{Store: st.store, Kind: wire.ChangePickupOrder, Key: p.OrderID, Op: wire.OpUpsert, Data: data, At: st.now})
	return nil
}

// addHandover adds a hand-over's quantities to the order's lines (matched
// by SKU) and returns a conflict reason if they do not fit.
func addHandover(o *wire.PickupOrderChange, lines []wire.PickupLine) string {
	next := slices.Clone(o.Lines)
	for _, hl := range lines {
		i := slices.IndexFunc(next, func(l wire.PickupLine) bool { return l.SKU == hl.SKU })
		if i < 0 {
			return hq.ConflictOverHanded
		}
		if next[i].Missing && hl.Handed > 0 {
			return hq.ConflictOverHanded
		}
		next[i].Handed += hl.Handed
		if next[i].Handed > next[i].Qty {
			return hq.ConflictOverHanded
		}
		if hl.Substitute != "" {
			next[i].Substitute = hl.Substitute
		}
		next[i].Missing = next[i].Missing || hl.Missing
	}
	o.Lines = next
	return ""
}

const orderCols = "store, status, order_data, created_at, cancelled_at, handed_at, updated_at"

func scanOrder(r interface{ Scan(...any) error }) (hq.PickupInfo, error) {
	var p hq.PickupInfo
	var data []byte
	var cancelled, handed sql.NullTime
	if err := r.Scan(&p.Store, &p.Status, &data, &p.CreatedAt, &cancelled, &handed, &p.UpdatedAt); err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p.Order); err != nil {
		return p, err
	}
	p.Order.Status = p.Status
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	p.CancelledAt, p.HandedAt = fromNull(cancelled), fromNull(handed)
	p.QR = wire.PickupQR(p.Store, p.Order.Code)
	return p, nil
}

const handoverCols = "h.event_id, h.order_id, h.store, h.terminal, h.code, h.handover_id, h.cashier, h.handed_at, h.final, h.complete, h.lines, h.status, h.reason, o.cancelled_at"

func (c *Core) handovers(ctx context.Context, where string, args ...any) ([]hq.PickupHandover, error) {
	out := []hq.PickupHandover{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var h hq.PickupHandover
		var lines []byte
		var cancelled sql.NullTime
		if err := r.Scan(&h.EventID, &h.OrderID, &h.Store, &h.Terminal, &h.Code, &h.HandoverID, &h.Cashier, &h.HandedAt, &h.Final, &h.Complete,
			&lines, &h.Status, &h.Reason, &cancelled); err != nil {
			return err
		}
		if err := json.Unmarshal(lines, &h.Lines); err != nil {
			return err
		}
		h.HandedAt = h.HandedAt.UTC()
		if h.Reason == hq.ConflictCancelled {
			h.CancelledAt = fromNull(cancelled)
		}
		out = append(out, h)
		return nil
	}, "SELECT "+handoverCols+" FROM pickup_handovers h LEFT JOIN pickup_orders o ON o.id = h.order_id "+where+" ORDER BY h.handed_at, h.event_id", args...)
	if err != nil {
		return nil, fmt.Errorf("read hand-overs: %w", err)
	}
	return out, nil
}

// PickupOrder implements hq.Store.
func (c *Core) PickupOrder(ctx context.Context, store, id string) (hq.PickupInfo, error) {
	p, err := scanOrder(c.db.QueryRow(ctx, "SELECT "+orderCols+" FROM pickup_orders WHERE id = ? AND store = ?", id, store))
	if isNoRows(err) {
		return p, fmt.Errorf("pickup order %s of %s: %w", id, store, hq.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read pickup order %s: %w", id, err)
	}
	p.Handovers, err = c.handovers(ctx, "WHERE h.order_id = ?", id)
	return p, err
}

// PickupOrders implements hq.Store.
func (c *Core) PickupOrders(ctx context.Context, store, status string, limit int) ([]hq.PickupInfo, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []hq.PickupInfo{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		p, err := scanOrder(r)
		if err != nil {
			return err
		}
		p.Handovers = []hq.PickupHandover{}
		out = append(out, p)
		return nil
	}, "SELECT "+orderCols+" FROM pickup_orders WHERE store = ? AND (? = '' OR status = ?) ORDER BY created_at DESC, id LIMIT ?", store, status, status, limit)
	if err != nil {
		return nil, fmt.Errorf("read pickup orders of %s: %w", store, err)
	}
	return out, nil
}

// PickupConflicts implements hq.Store.
func (c *Core) PickupConflicts(ctx context.Context) ([]hq.PickupHandover, error) {
	return c.handovers(ctx, "WHERE h.status = ?", hq.HandoverConflict)
}

// projectOnlineRefund records what the online channel owes for an online
// purchase returned in a store, checked against the order HQ knows.
func projectOnlineRefund(ctx context.Context, tx Tx, st *retailState, e *wire.Event, p *wire.ReturnCompleted) error {
	status, reason := hq.RefundOwed, ""
	var paid int64
	err := tx.QueryRow(ctx, "SELECT paid FROM pickup_orders WHERE id = ?", p.OrderID).Scan(&paid)
	switch {
	case isNoRows(err) || p.OrderID == "":
		status, reason = hq.RefundUnverified, "HQ has no such online order: check it with the online channel"
	case err != nil:
		return fmt.Errorf("read online order %s: %w", p.OrderID, err)
	default:
		var before int64
		if err := tx.QueryRow(ctx, "SELECT COALESCE(SUM(amount), 0) FROM online_refunds WHERE order_id = ? AND status = ?", p.OrderID, hq.RefundOwed).Scan(&before); err != nil {
			return fmt.Errorf("read refunds of %s: %w", p.OrderID, err)
		}
		if before+p.Total > paid {
			status, reason = hq.RefundExceeds, fmt.Sprintf("order paid %d, refunds would reach %d", paid, before+p.Total)
		}
	}
	lines, err := json.Marshal(p.Lines)
	if err != nil {
		return err
	}
	at := p.ReturnedAt
	if at.IsZero() {
		at = e.At
	}
	_, err = tx.Exec(ctx, `INSERT INTO online_refunds(event_id, store, terminal, return_id, receipt, order_id, business_day, amount, lines, returned_at, status, reason)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		e.ID, st.store, st.terminal, p.ReturnID, p.Receipt, p.OrderID, p.BusinessDay, p.Total, lines, at.UTC(), status, reason)
	if err != nil {
		return fmt.Errorf("record online refund %s: %w", p.ReturnID, err)
	}
	return nil
}

// OnlineRefunds implements hq.Store.
func (c *Core) OnlineRefunds(ctx context.Context, store, day string) ([]hq.OnlineRefund, error) {
	out := []hq.OnlineRefund{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var x hq.OnlineRefund
		var lines []byte
		if err := r.Scan(&x.EventID, &x.Store, &x.Terminal, &x.ReturnID, &x.Receipt, &x.OrderID, &x.BusinessDay, &x.Amount, &lines, &x.ReturnedAt, &x.Status, &x.Reason); err != nil {
			return err
		}
		x.ReturnedAt = x.ReturnedAt.UTC()
		if err := json.Unmarshal(lines, &x.Lines); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	}, `SELECT event_id, store, terminal, return_id, receipt, order_id, business_day, amount, lines, returned_at, status, reason FROM online_refunds
		WHERE (? = '' OR store = ?) AND (? = '' OR business_day = ?) ORDER BY store, returned_at, event_id`, store, store, day, day)
	if err != nil {
		return nil, fmt.Errorf("read online refunds: %w", err)
	}
	return out, nil
}

// couponState is a coupon's state in the ledger at now.
func couponState(issued bool, revoked, expires time.Time, winner bool, now time.Time) string {
	switch {
	case !issued:
		return hq.CouponUnknown
	case winner:
		return hq.CouponRedeemed
	case !revoked.IsZero():
		return hq.CouponRevoked
	case !now.Before(expires):
		return hq.CouponExpired
	}
	return hq.CouponIssued
}

// CouponReport implements hq.Store.
func (c *Core) CouponReport(ctx context.Context, store, day string, now time.Time) (hq.CouponReport, error) {
	rep := hq.CouponReport{Store: store, BusinessDay: day, Rows: []hq.CouponReportRow{}}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var x hq.CouponReportRow
		var member sql.NullString
		var issued, expires, revoked sql.NullTime
		if err := r.Scan(&x.BusinessDay, &x.Store, &x.Terminal, &x.CouponID, &x.Receipt, &x.SaleID, &x.RedeemedAt, &x.Amount, &x.Status, &x.Reason,
			&member, &issued, &expires, &revoked); err != nil {
			return err
		}
		x.RedeemedAt = x.RedeemedAt.UTC()
		x.Member, x.IssuedAt, x.Expires, x.RevokedAt = member.String, fromNull(issued), fromNull(expires), fromNull(revoked)
		rep.Rows = append(rep.Rows, x)
		return nil
	}, `SELECT r.business_day, r.store, r.terminal, r.coupon_id, r.receipt, r.sale_id, r.redeemed_at, r.amount, r.status, r.reason,
		c.member, c.issued_at, c.expires, c.revoked_at
		FROM coupon_redemptions r LEFT JOIN coupons c ON c.id = r.coupon_id WHERE r.store = ? AND r.business_day = ?`, store, day)
	if err != nil {
		return rep, fmt.Errorf("coupon report %s %s: %w", store, day, err)
	}
	winners := map[string]*hq.Redemption{}
	for i := range rep.Rows {
		x := &rep.Rows[i]
		w, ok := winners[x.CouponID]
		if !ok {
			reds, err := redemptions(ctx, c.db, x.CouponID)
			if err != nil {
				return rep, err
			}
			for j := range reds {
				if reds[j].Status == hq.RedemptionWinner {
					w = &reds[j]
				}
			}
			winners[x.CouponID] = w
		}
		x.CouponState = couponState(!x.IssuedAt.IsZero(), x.RevokedAt, x.Expires, w != nil, now)
		if x.Status == hq.RedemptionWinner {
			rep.Redeemed++
			rep.RedeemedAmount += x.Amount
			continue
		}
		rep.Conflicts++
		rep.ConflictAmount += x.Amount
		if w != nil {
			x.WinnerStore, x.WinnerTerminal, x.WinnerReceipt, x.WinnerAt = w.Store, w.Terminal, w.Receipt, w.RedeemedAt
		}
	}
	slices.SortFunc(rep.Rows, func(a, b hq.CouponReportRow) int {
		return cmp.Or(a.RedeemedAt.Compare(b.RedeemedAt), cmp.Compare(a.Terminal, b.Terminal), cmp.Compare(a.Receipt, b.Receipt), cmp.Compare(a.CouponID, b.CouponID))
	})
	return rep, nil
}

// CouponLedger implements hq.Store.
func (c *Core) CouponLedger(ctx context.Context, state string, now time.Time, limit int) ([]hq.CouponState, error) {
	if limit <= 0 {
		limit = 100
	}
	now = now.UTC()
	const winner = "EXISTS (SELECT 1 FROM coupon_redemptions r WHERE r.coupon_id = c.id AND r.status = 'redeemed')"
	var where string
	var args []any
	switch state {
	case "":
	case hq.CouponRedeemed:
		where = "WHERE " + winner
	case hq.CouponRevoked:
		where = "WHERE c.revoked_at IS NOT NULL AND NOT " + winner
	case hq.CouponExpired:
		where, args = "WHERE c.expires <= ? AND c.revoked_at IS NULL AND NOT "+winner, []any{now}
	case hq.CouponIssued:
		where, args = "WHERE c.expires > ? AND c.revoked_at IS NULL AND NOT "+winner, []any{now}
	case hq.CouponConflicted:
		where = "WHERE EXISTS (SELECT 1 FROM coupon_redemptions r WHERE r.coupon_id = c.id AND r.status = 'conflict')"
	default:
		return nil, fmt.Errorf("coupon state %q is not issued, redeemed, revoked, expired or conflict", state)
	}
	out := []hq.CouponState{}
	err := scanEach(ctx, c.db, func(r Rows) error {
		var x hq.CouponState
		var revoked sql.NullTime
		if err := r.Scan(&x.ID, &x.Member, &x.Kind, &x.Value, &x.Currency, &x.IssuedAt, &x.Expires, &revoked, &x.Conflicts); err != nil {
			return err
		}
		x.IssuedAt, x.Expires, x.RevokedAt = x.IssuedAt.UTC(), x.Expires.UTC(), fromNull(revoked)
		out = append(out, x)
		return nil
	}, `SELECT c.id, c.member, c.kind, c.value, c.currency, c.issued_at, c.expires, c.revoked_at,
		(SELECT COUNT(*) FROM coupon_redemptions r WHERE r.coupon_id = c.id AND r.status = 'conflict')
		FROM coupons c `+where+` ORDER BY c.issued_at DESC, c.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read coupon ledger: %w", err)
	}
	for i := range out {
		x := &out[i]
		reds, err := redemptions(ctx, c.db, x.ID)
		if err != nil {
			return nil, err
		}
		for j := range reds {
			if reds[j].Status == hq.RedemptionWinner {
				w := reds[j]
				x.Winner = &w
			}
		}
		x.State = couponState(true, x.RevokedAt, x.Expires, x.Winner != nil, now)
	}
	return out, nil
}
