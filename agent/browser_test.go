package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/browsertest"
	"github.com/edgepos/edgepos/sync/wire"
)

// browser is the POS screen in headless Chromium (internal/browsertest)
// over the API fixture's server.
type browser struct {
	*browsertest.Browser
	t *testing.T
	f *apiFixture
}

func newBrowser(t *testing.T, f *apiFixture) *browser {
	t.Helper()
	return &browser{Browser: browsertest.New(t, f.srv.URL), t: t, f: f}
}

func browserAPI(c *APIConfig) { c.WedgeGap = browsertest.WedgeGap }

func (b *browser) loginCashier() {
	b.t.Helper()
	b.Login(DemoCashier, DemoCashierPIN)
	b.WaitSaleView()
	require.Eventually(b.t, func() bool { return b.f.hub.Subscribers() == 1 }, browsertest.Wait, 10*time.Millisecond, "event stream connected")
}

func (f *apiFixture) addMember(tb testing.TB, m wire.MemberChange) {
	tb.Helper()
	data, err := json.Marshal(m)
	require.NoError(tb, err)
	ctx := context.Background()
	require.NoError(tb, f.db.WriteTx(ctx, func(tx *sql.Tx) error {
		return f.l.ApplyChange(ctx, tx, wire.Change{Version: 1, Kind: wire.ChangeMember, Key: m.MemberID, Op: wire.OpUpsert, Data: data, At: f.now})
	}))
}

func (f *apiFixture) healthyDevices() {
	at := f.now
	f.stat.setDevices(
		DeviceState{Name: "scanner0", Kind: "scanner", State: "idle", At: at},
		DeviceState{Name: "printer0", Kind: "printer", State: "idle", At: at},
		DeviceState{Name: "shelf-A", Kind: "shelf", State: "idle", At: at})
}

func (f *apiFixture) ackAll(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	os, err := f.db.OutboxState(ctx)
	require.NoError(tb, err)
	_, err = f.db.AckThrough(ctx, os.LastSeq)
	require.NoError(tb, err)
}

// TestBrowserSellWithWedgeSerialCouponAndCash logs in with the PIN pad,
// scans by keyboard wedge and by the serial scanner (over SSE), weighs
// apples, attaches a member, applies a coupon QR, pays cash with change
// and sees the receipt reach the print queue, survive paper out and print.
func TestBrowserSellWithWedgeSerialCouponAndCash(t *testing.T) {
	f := newAPIFixture(t, browserAPI)
	f.healthyDevices()
	f.addMember(t, wire.MemberChange{MemberID: "M-8801", Phone: "13800138000", Name: "Wang Fang", Points: 1280})
	_, err := f.l.OpenShift(context.Background(), DemoCashier, 20000)
	require.NoError(t, err)
	b := newBrowser(t, f)

	// A wrong PIN is refused with a message the cashier can read.
	b.Login(DemoCashier, "0000")
	b.WaitText("#toasts", "Wrong user or PIN.")
	b.loginCashier()
	b.WaitText("#st-sync", "Online")
	b.WaitJS(`document.querySelector("#st-devices").innerText.includes("Printer")`)

	// Keyboard wedge: a fast burst ending in Enter is a scan.
	b.Scan("6901234567892")
	b.WaitLine("TEA500", "1")
	b.WaitText("#last-scan", "Scanned 6901234567892")
	b.Scan("6901234567892")
	b.WaitLine("TEA500", "2")

	// An unknown code: a clear message, the sale untouched.
	b.Scan("6901234567809")
	b.WaitText("#toasts", "Barcode 6901234567809 is not in the catalog")
	require.Equal(t, 1, b.LineCount())

	// The serial scanner's scan arrives over Server-Sent Events.
	f.hub.Publish("scan", map[string]string{"code": "6907992500133", "symbology": "EAN-13", "device": "scanner0"})
	b.WaitLine("MILK1L", "1")
	b.WaitText("#last-scan", "Scanner 6907992500133")

	// A burst into another field (the milk's quantity dialog) is still a
	// scan and leaves the field as it was; slow typing there is the
	// quantity.
	b.Keys(kb.F2)
	b.WaitJS(`document.querySelector("#qty-dialog-input") === document.activeElement`)
	b.Scan("6920152400777")
	b.WaitLine("NOODLE", "1")
	b.WaitJS(`document.querySelector("#qty-dialog-input").value === "1"`)
	b.SetValue("#qty-dialog-input", "")
	b.TypeSlowly("3\r")
	b.WaitLine("MILK1L", "3")

	// Keyed by hand, slowly: a name finds the product; apples are weighed.
	b.TypeSlowly("apple\r")
	b.WaitJS(`document.querySelector("#pick-dialog")`)
	b.Keys("1")
	b.WaitJS(`document.activeElement?.id === "prompt-dialog-input"`)
	b.TypeSlowly("0.532\r")
	b.WaitLine("APPLE", "0.532 kg")

	// Member by phone.
	b.Keys(kb.F6)
	b.WaitJS(`document.activeElement?.id === "member-dialog-input"`)
	b.TypeSlowly("13800138000\r")
	b.WaitText("#sale-meta", "Member M-8801")

	// A coupon QR scanned with the wedge goes to coupon entry.
	tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300})
	b.Scan(tok)
	b.WaitText("#sale-meta", "Coupon −¥3.00")
	s := f.l.OpenCarts()[0]
	require.EqualValues(t, 450*2+1290*3+650+mulDivHalfUp(1398, 532, 1000)-300, s.Total)
	b.WaitText("#tot-total", "¥"+f.api.money(s.Total)[4:])

	b.WaitJS(`document.querySelector("#toasts").children.length === 0`) // a clean shot for the README
	img := b.Shot("sale")
	b.Readme(img, "pos-sale.png")

	// Pay cash with the quick amount above the total; change is due.
	b.Keys(kb.F10)
	b.WaitJS(`document.querySelector("#pay-dialog .btn-quick:nth-child(2)")`)
	quick := b.Text("#pay-dialog .btn-quick:nth-child(2)")
	b.Click("#pay-dialog .btn-quick:nth-child(2)")
	b.WaitText("#done-receipt", "T1-000001")
	b.WaitJS(`document.querySelector("#done-change")`)
	sale, err := f.l.FindSaleByReceipt(context.Background(), "T1-000001")
	require.NoError(t, err)
	require.Equal(t, StateCompleted, sale.State)
	kicks, _ := f.hw.counts()
	require.Equal(t, 1, kicks, "cash sale opened the drawer")
	require.Equal(t, "M-8801", sale.Member)
	require.Len(t, sale.Coupons, 1)
	require.Equal(t, "¥"+f.api.money(sale.ChangeDue)[4:], b.Text("#done-change"))
	require.Equal(t, quick, "¥"+f.api.money(sale.Paid)[4:])
	b.WaitText("#receipt-preview", "RECEIPT T1-000001")

	// The receipt is in the print queue and the printer was woken.
	jobs, err := f.l.PrintJobs(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, "T1-000001", jobs[0].Receipt)
	require.Equal(t, "queued", jobs[0].State)
	_, wakes := f.hw.counts()
	require.Equal(t, 1, wakes)
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "queued"`)

	// Paper out: the screen says so and offers a reprint.
	f.stat.setDevices(DeviceState{Name: "printer0", Kind: "printer", State: "error", Reason: "paper out", At: f.now})
	f.hub.Publish("status", map[string]string{"device": "printer0", "state": "error"})
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "paper"`)
	b.WaitText("#st-devices", "paper out")
	shot := b.Shot("paper-out")
	require.NotEmpty(t, shot)
	b.Click("#reprint")
	b.WaitText("#toasts", "Reprint queued")
	jobs, err = f.l.PrintJobs(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 2)

	// Paper loaded: the queue prints and the screen says printed.
	f.healthyDevices()
	for _, j := range jobs {
		require.NoError(t, f.l.MarkPrinted(context.Background(), j.ID))
	}
	f.hub.Publish("print", map[string]string{"receipt": "T1-000001", "state": "printed"})
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "printed"`)
	b.Shot("receipt")

	// The next scan closes the receipt and starts the next sale.
	b.Scan("6921168509256")
	b.WaitLine("WATER", "1")
	b.WaitJS(`!document.querySelector("#receipt-dialog")`)
	b.NoErrors()
}

// TestBrowserOfflineKeepsSelling takes HQ away: the status bar says
// offline and events pile up while sales go on (one split between card and
// cash); back online the backlog drains to zero.
func TestBrowserOfflineKeepsSelling(t *testing.T) {
	f := newAPIFixture(t, browserAPI)
	f.healthyDevices()
	f.ackAll(t)
	b := newBrowser(t, f)
	b.loginCashier()
	b.WaitJS(`document.querySelector("#st-backlog").dataset.backlog === "0"`)
	b.WaitText("#st-backlog", "All sent to HQ")

	f.stat.set(false)
	f.hub.Publish("sync", SyncState{Online: false})
	b.WaitJS(`document.querySelector("#st-sync").dataset.online === "false"`)
	require.Contains(t, b.Text("#st-sync"), "Offline")

	// Sale 1: wedge scan, exact cash.
	b.Scan("6901234567892")
	b.WaitLine("TEA500", "1")
	b.Keys(kb.F10)
	b.WaitJS(`document.querySelector("#pay-dialog .btn-quick")`)
	b.Click("#pay-dialog .btn-quick")
	b.WaitText("#done-receipt", "T1-000001")
	b.Keys("\r") // new sale
	b.WaitJS(`!document.querySelector("#receipt-dialog")`)

	// Sale 2: serial scan, split between card and cash.
	f.hub.Publish("scan", map[string]string{"code": "6937962100018", "device": "scanner0"})
	b.WaitLine("RICE5", "1")
	b.Keys(kb.F10)
	b.WaitJS(`document.activeElement?.id === "pay-amount"`)
	b.Keys(kb.F3)
	b.WaitJS(`document.activeElement?.id === "pay-ref"`)
	b.TypeSlowly("AUTH-77")
	b.SetValue("#pay-amount", "20.00")
	b.Keys("\r")
	b.WaitText("#pay-tenders", "AUTH-77")
	b.WaitText("#pay-due", "¥29.90")
	b.Keys(kb.F2)
	b.WaitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "29.90"`)
	b.Keys("\r")
	b.WaitText("#done-receipt", "T1-000002")
	b.WaitJS(`document.querySelector("#st-backlog").dataset.backlog !== "0"`)
	b.WaitText("#st-backlog", "to sync")
	require.Contains(t, b.Text("#st-sync"), "Offline")
	b.Shot("offline")
	sale, err := f.l.FindSaleByReceipt(context.Background(), "T1-000002")
	require.NoError(t, err)
	require.Equal(t, []Tender{{Kind: TenderCard, Amount: 2000, Ref: "AUTH-77"}, {Kind: TenderCash, Amount: 2990}}, sale.Tenders)

	// HQ is back and acknowledges everything.
	f.stat.set(true)
	f.ackAll(t)
	f.hub.Publish("sync", SyncState{Online: true})
	b.WaitJS(`document.querySelector("#st-sync").dataset.online === "true"`)
	b.WaitJS(`document.querySelector("#st-backlog").dataset.backlog === "0"`)
	b.WaitText("#st-backlog", "All sent to HQ")
	b.Shot("online")
	b.NoErrors()
}

// TestBrowserVoidNeedsManagerPIN has a cashier void a sale through the
// menu: the manager PIN prompt refuses a wrong PIN and the right one
// approves; the void is audited.
func TestBrowserVoidNeedsManagerPIN(t *testing.T) {
	f := newAPIFixture(t, browserAPI, func(c *APIConfig) { c.Locale = "zh-CN" })
	f.healthyDevices()
	cashier := f.cashier(t)
	done := cashier.completedSale()
	b := newBrowser(t, f)
	b.loginCashier()
	b.WaitText("#st-sync", "在线")

	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Keys("3") // void a sale
	b.WaitJS(`document.activeElement?.id === "receipt-number-dialog-input"`)
	b.TypeSlowly(done.Receipt + "\r")
	b.WaitJS(`document.activeElement?.id === "void-reason-dialog-input"`)
	b.TypeSlowly("wrong item\r")
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	b.TypeSlowly("1111\r")
	b.WaitText("#pin-error", "工号或 PIN 错误。")
	b.WaitJS(`document.activeElement?.id === "mgr-pin" && document.activeElement.value === ""`)
	for _, d := range DemoManagerPIN {
		b.Click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.Shot("manager-pin")
	b.Keys("\r")
	b.WaitText("#toasts", "已作废")
	s, err := f.l.GetSale(context.Background(), done.ID)
	require.NoError(t, err)
	require.Equal(t, StateVoided, s.State)
	require.Contains(t, f.auditActions(t), "void_sale:"+DemoManager)
	b.NoErrors()
}
