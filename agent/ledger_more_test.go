package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent/barcode"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// weighCode is an EAN-13 scale label for PLU 1 (the demo's apples) of
// grams weight.
func weighCode(tb testing.TB, grams int) string {
	tb.Helper()
	code := "2000001" + strings.Repeat("0", 5-len(itoa(grams))) + itoa(grams)
	c, err := barcode.CheckDigit(code)
	require.NoError(tb, err)
	return code + string(c)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestCompleteSaleManyLinesAndRepeatedSKU(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "NOODLE", "MILK1L", "BREAD", "WATER", "RICE5", "CHOCO")
	var err error
	for _, g := range []int{500, 1250, 730, 2000, 999} { // each weighing is its own line
		s, err = f.l.ScanToSale(ctx, s.ID, weighCode(t, g))
		require.NoError(t, err)
	}
	require.Len(t, s.Lines, 12, "more lines than one multi-row statement takes")
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)

	got, err := f.l.GetSale(ctx, done.ID)
	require.NoError(t, err)
	require.Len(t, got.Lines, 12)
	var sum int64
	for i, ln := range got.Lines {
		require.Equal(t, i+1, ln.Line)
		require.Equal(t, s.Lines[i].Total, ln.Total)
		require.Equal(t, s.Lines[i].TaxBP, ln.TaxBP, "the rate is recorded with the line")
		sum += ln.Total
	}
	require.Equal(t, done.Total, sum)

	var onHand int64
	require.NoError(t, f.db.Read.QueryRow("SELECT on_hand FROM inventory WHERE sku = 'APPLE'").Scan(&onHand))
	require.EqualValues(t, 1_000_000-(500+1250+730+2000+999), onHand)

	var payload string
	require.NoError(t, f.db.Read.QueryRow("SELECT payload FROM outbox WHERE type = ?", wire.EventSaleCompleted).Scan(&payload))
	var ev wire.SaleCompleted
	require.NoError(t, json.Unmarshal([]byte(payload), &ev))
	require.Len(t, ev.Lines, 12)
	// Stock after each apple line: it falls line by line to the final level.
	want := int64(1_000_000)
	for _, ln := range ev.Lines {
		if ln.SKU != "APPLE" {
			require.EqualValues(t, 1_000_000-1000, *ln.OnHand, ln.SKU)
			continue
		}
		want -= ln.Qty
		require.Equal(t, want, *ln.OnHand)
	}
	require.Equal(t, onHand, want)
}

func TestReceiptAndDiscountsRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := f.sale(t, "TEA500", "MILK1L", "CHOCO")
	s, err := f.l.SetItemDiscount(s.ID, 1, Discount{Kind: DiscountPercent, Value: 1000})
	require.NoError(t, err)
	s, err = f.l.SetSaleDiscount(s.ID, Discount{Kind: DiscountAmount, Value: 100})
	require.NoError(t, err)
	s, err = f.l.ApplyCoupon(ctx, s.ID, f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 200, SKUs: []string{"CHOCO"}}), "")
	require.NoError(t, err)
	require.EqualValues(t, 100, s.SaleDiscountAmount)
	require.EqualValues(t, 45+100+200, s.Discount)
	done, err := f.l.CompleteSale(ctx, f.pay(t, s).ID, "")
	require.NoError(t, err)

	rows, err := f.db.Read.Query("SELECT COALESCE(line, 0), kind, basis, value, amount, ref FROM sale_discounts WHERE sale_id = ? ORDER BY seq", done.ID)
	require.NoError(t, err)
	defer rows.Close()
	type disc struct {
		line          int
		kind, basis   string
		value, amount int64
		ref           string
	}
	var got []disc
	for rows.Next() {
		var d disc
		require.NoError(t, rows.Scan(&d.line, &d.kind, &d.basis, &d.value, &d.amount, &d.ref))
		got = append(got, d)
	}
	require.NoError(t, rows.Err())
	require.Len(t, got, 3)
	require.Equal(t, disc{1, "item", "percent", 1000, 45, ""}, got[0])
	require.Equal(t, disc{0, "sale", "amount", 100, 100, ""}, got[1])
	require.Equal(t, "coupon", got[2].kind)
	require.EqualValues(t, 200, got[2].amount)
	require.Equal(t, s.Coupons[0].CouponID, got[2].ref)

	r, err := f.l.Receipt(ctx, done.ID)
	require.NoError(t, err)
	require.Equal(t, "T1-000001", r.Receipt)
	require.Equal(t, "2026-11-23 10:00:00", r.LocalTime, "receipt time in the store's zone")
	require.Equal(t, done.Total, r.Total)
	require.Len(t, r.Taxes, 2, "two rates")
	var tax, base int64
	for _, tx := range r.Taxes {
		tax += tx.Tax
		base += tx.Base
	}
	require.Equal(t, r.Tax, tax, "the tax summary adds up")
	require.Equal(t, r.Total, base, "tax-inclusive: bases add up to the total")
	require.Len(t, r.Coupons, 1)

	_, err = f.l.Receipt(ctx, f.sale(t, "TEA500").ID)
	require.ErrorIs(t, err, ErrNotFound, "an open cart has no receipt")
}

func TestCloseDay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.l.OpenShift(ctx, DemoCashier, 0)
	require.NoError(t, err)
	first, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "RICE5")).ID, "")
	require.NoError(t, err)
	require.Equal(t, "2026-11-23", first.BusinessDay)
	_, err = f.l.CloseDay(ctx, DemoManager)
	require.ErrorIs(t, err, ErrShiftOpen, "shifts close before the day")
	_, err = f.l.CloseShift(ctx, 4990)
	require.NoError(t, err)
	_, err = f.l.CloseDay(ctx, "")
	require.ErrorIs(t, err, ErrNeedsManager)
	z, err := f.l.CloseDay(ctx, DemoManager)
	require.NoError(t, err)
	require.Equal(t, "2026-11-23", z.BusinessDay)
	require.EqualValues(t, 1, z.Sales)

	// Same calendar day, after the Z: the sale belongs to the next day.
	f.now = f.now.Add(time.Hour)
	late, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "TEA500")).ID, "")
	require.NoError(t, err)
	require.Equal(t, "2026-11-24", late.BusinessDay)

	// The recorded Z does not change, and survives a restart.
	l2, err := NewLedger(f.db, f.l.Config())
	require.NoError(t, err)
	defer l2.Close()
	again, err := l2.ZReport(ctx, "2026-11-23")
	require.NoError(t, err)
	require.Equal(t, "Z", again.Kind)
	require.EqualValues(t, 1, again.Sales)
	require.EqualValues(t, 4990, again.Net)
	x, err := l2.XReport(ctx)
	require.NoError(t, err)
	require.Equal(t, "2026-11-24", x.BusinessDay)
	require.EqualValues(t, 1, x.Sales)

	job, err := l2.NextQueued(ctx)
	require.NoError(t, err)
	require.Equal(t, "receipt", job.Kind, "receipts first, in order")
	var kinds []string
	jobs, err := l2.QueuedPrintJobs(ctx, 10)
	require.NoError(t, err)
	for _, j := range jobs {
		kinds = append(kinds, j.Kind)
	}
	require.Equal(t, []string{"receipt", "report", "receipt"}, kinds)
	log, err := l2.AuditLog(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, "z_report", log[0].Action)
}

func TestPrintQueueContract(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.l.NextQueued(ctx)
	require.ErrorIs(t, err, ErrNotFound, "empty queue")
	done, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "TEA500")).ID, "")
	require.NoError(t, err)
	j, err := f.l.NextQueued(ctx)
	require.NoError(t, err)
	require.Equal(t, done.ID, j.SaleID)
	require.NoError(t, f.l.MarkAttempt(ctx, j.ID, os.ErrDeadlineExceeded, true))
	_, err = f.l.NextQueued(ctx)
	require.ErrorIs(t, err, ErrNotFound, "a failed job leaves the queue")
	got, err := f.l.PrintJob(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "failed", got.State)
	require.Contains(t, got.LastError, "timeout")
	require.ErrorIs(t, f.l.MarkPrinted(ctx, "no-such-job"), ErrNotFound)
	require.ErrorIs(t, f.l.MarkAttempt(ctx, "no-such-job", nil, false), ErrNotFound)
	cp, err := f.l.Reprint(ctx, done.ID)
	require.NoError(t, err)
	next, err := f.l.NextQueued(ctx)
	require.NoError(t, err)
	require.Equal(t, cp.ID, next.ID)
	require.Equal(t, "copy", next.Kind, "a reprint is marked as a copy")
	_, err = f.l.Reprint(ctx, f.sale(t, "TEA500").ID)
	require.Error(t, err, "an open cart has nothing to reprint")
}

func TestApplyChangeKeepsPLUAndHandlesDeletes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	apply := func(cs ...wire.Change) error {
		return f.db.WriteTx(ctx, func(tx *sql.Tx) error {
			for _, c := range cs {
				if err := f.l.ApplyChange(ctx, tx, c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// HQ reprices the apples; its product has no PLU, the scale's stays.
	require.NoError(t, apply(wire.Change{Version: 1, Kind: wire.ChangeProduct, Key: "APPLE", Op: wire.OpUpsert,
		Data: data(wire.ProductChange{SKU: "APPLE", Name: "Fuji apples", Unit: "kg", TaxClass: "VAT9", Price: 1500, Active: true})}))
	s, err := f.l.ScanToSale(ctx, f.sale(t).ID, weighCode(t, 1000))
	require.NoError(t, err)
	require.EqualValues(t, 1500, s.Total)

	require.NoError(t, apply(
		wire.Change{Version: 2, Kind: wire.ChangePickupOrder, Key: "O1", Op: wire.OpUpsert, At: f.now,
			Data: data(wire.PickupOrderChange{OrderID: "O1", Code: "PK-7731", Status: "open", Phone: "13900000000", Paid: 2580, Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}})},
		wire.Change{Version: 3, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert, Data: data(wire.StoreConfigChange{CouponOfflineCap: 700})},
	))
	orders, err := f.l.PickupOrders(ctx, "open", 10)
	require.NoError(t, err)
	require.Len(t, orders, 1)
	require.Equal(t, []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}, orders[0].Lines)
	o, err := f.l.FindPickupOrder(ctx, "PK-7731")
	require.NoError(t, err)
	require.Equal(t, "O1", o.ID)
	_, err = f.l.FindPickupOrder(ctx, "PK-0000")
	require.ErrorIs(t, err, ErrNotFound)

	// A failed feed transaction leaves the cap as it was.
	bad := wire.Change{Version: 4, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert, Data: json.RawMessage(`{"coupon_offline_cap": "lots"}`)}
	require.Error(t, apply(wire.Change{Version: 4, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpUpsert, Data: data(wire.StoreConfigChange{CouponOfflineCap: 1})}, bad))
	capV, err := f.l.CouponOfflineCap(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 700, capV)

	require.NoError(t, apply(
		wire.Change{Version: 5, Kind: wire.ChangeProduct, Key: "CHOCO", Op: wire.OpDelete},
		wire.Change{Version: 6, Kind: wire.ChangePickupOrder, Key: "O1", Op: wire.OpDelete, At: f.now},
		wire.Change{Version: 7, Kind: wire.ChangeStoreConfig, Key: "store", Op: wire.OpDelete},
		wire.Change{Version: 8, Kind: "future_kind", Key: "x", Op: wire.OpDelete},
	))
	_, err = f.l.AddItem(ctx, f.sale(t).ID, "CHOCO", 1000)
	require.ErrorIs(t, err, ErrInactive)
	o, err = f.l.FindPickupOrder(ctx, "O1")
	require.NoError(t, err)
	require.Equal(t, "cancelled", o.Status)
	capV, err = f.l.CouponOfflineCap(ctx)
	require.NoError(t, err)
	require.Zero(t, capV, "back to the terminal's own (none)")

	require.Error(t, apply(wire.Change{Version: 9, Kind: wire.ChangeMember, Key: "M", Op: "merge"}), "an unknown op is malformed")
	require.Error(t, apply(wire.Change{Version: 10, Kind: wire.ChangeMember, Key: "M", Op: wire.OpUpsert}), "an upsert without data is malformed")
}

func TestRefundTenderMustBeKnown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	done, err := f.l.CompleteSale(ctx, f.pay(t, f.sale(t, "TEA500")).ID, "")
	require.NoError(t, err)
	for _, bad := range []Tender{{Kind: "bitcoin", Amount: 450}, {Kind: TenderCash, Amount: 0}, {Kind: TenderCash, Amount: -450}} {
		_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, Refunds: []Tender{bad}, Cashier: DemoCashier})
		require.Error(t, err, "%+v", bad)
	}
	_, err = f.l.ReturnItems(ctx, ReturnRequest{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 0}}, Refunds: []Tender{{Kind: TenderCash, Amount: 450}}, Cashier: DemoCashier})
	require.ErrorIs(t, err, ErrBadQuantity)
	got, err := f.l.GetSale(ctx, done.ID)
	require.NoError(t, err)
	require.Zero(t, got.Refunded, "nothing refunded by a refused return")
}

// TestAgentSurfacesBadDatabase opens the agent (database, then ledger) on
// a corrupt file and on one written by a newer edgepos: both refuse to
// start with the error that says which, and leave the file as it was.
func TestAgentSurfacesBadDatabase(t *testing.T) {
	ctx := context.Background()
	open := func(path string) error {
		a := New(Options{Database: path, Ledger: LedgerConfig{Store: "S001", Terminal: "T1"}})
		err := a.Open(ctx)
		if err == nil {
			a.Close(ctx)
		}
		return err
	}
	t.Run("corrupt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pos.db")
		junk := []byte(strings.Repeat("not a sqlite file ", 1000))
		require.NoError(t, os.WriteFile(path, junk, 0o600))
		require.ErrorIs(t, open(path), localdb.ErrCorrupt)
		after, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, junk, after, "the evidence is not overwritten")
	})
	t.Run("newer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pos.db")
		db, err := localdb.Open(ctx, path, localdb.Options{})
		require.NoError(t, err)
		_, err = db.Write.Exec("INSERT INTO schema_migrations(version, name, applied_at) VALUES(99, 'future', ?)", time.Now().UTC())
		require.NoError(t, err)
		require.NoError(t, db.Close(ctx))
		require.ErrorIs(t, open(path), localdb.ErrTooNew)
	})
}
