package agent

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/testenv"
	"github.com/edgepos/edgepos/sync/wire"
)

// browser drives the POS screen in headless Chromium at 1024x768.
type browser struct {
	t   *testing.T
	f   *apiFixture
	ctx context.Context

	mu   sync.Mutex
	logs []string // console errors and uncaught exceptions
}

const browserWait = 20 * time.Second

func newBrowser(t *testing.T, f *apiFixture) *browser {
	t.Helper()
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1024, 768))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, f: f}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			b.log(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.log(fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " ")))
			}
		}
	}))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	// The terminal's screen is 1024x768 with the browser in kiosk mode:
	// the page gets all of it.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1024, 768), chromedp.Navigate(f.srv.URL+"/")), "navigate")
	b.waitJS(`document.body.dataset.ready === "true"`)
	return b
}

func browserAPI(c *APIConfig) { c.WedgeGap = wedgeGap }

func (b *browser) log(s string) {
	b.mu.Lock()
	b.logs = append(b.logs, s)
	b.mu.Unlock()
}

// noErrors fails the test if the page threw or logged an error.
func (b *browser) noErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var bad []string
	for _, l := range b.logs {
		// A 4xx answer the test provoked shows as a failed resource load.
		if strings.Contains(l, "Failed to load resource") {
			continue
		}
		bad = append(bad, l)
	}
	require.Empty(b.t, bad, "the page logged errors")
}

func (b *browser) fail(err error, what string) {
	b.t.Helper()
	if err == nil {
		return
	}
	b.shot("failure")
	b.mu.Lock()
	logs := strings.Join(b.logs, "\n")
	b.mu.Unlock()
	html, _ := b.evalErr(`(window.__toastLog || []).join(" / ") + " | dialogs: " + [...document.querySelectorAll("dialog")].map(d => d.id).join(",")`)
	b.t.Fatalf("%s: %v\npage: %s\nlogs:\n%s", what, err, html, logs)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	b.fail(chromedp.Do(ctx, steps...), what)
}

func (b *browser) evalErr(js string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](js))
}

// text returns the trimmed text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := b.evalErr(fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").trim()`, sel))
	b.fail(err, "read "+sel)
	return s
}

// waitJS waits until the expression is truthy.
func (b *browser) waitJS(js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+js+")", chromedp.WithPollingInterval(25*time.Millisecond)))
	b.fail(err, "wait for "+js)
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").includes(%q)`, sel, want))
}

// keys presses keys (F-keys, Enter, a digit) in the focused element, as
// fast as the browser takes them. Each key is a keyDown carrying its text
// (keydown, keypress, input, like a real key: a handled keydown suppresses
// the text) and a keyUp.
func (b *browser) keys(s string) {
	b.t.Helper()
	b.do("keys "+s, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range s {
			evs := kb.Encode(r)
			down, up := *evs[0], *evs[len(evs)-1]
			if len(evs) == 3 {
				down.Text, down.UnmodifiedText = evs[1].Text, evs[1].UnmodifiedText
			}
			for _, ev := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// wedgeGap is the UI's wedge gap in the browser tests. A real scanner
// sends a key every few ms; here every key is two DevTools round trips,
// which on a busy 2-core CI machine take up to ~40 ms, so the tests widen
// the gap (the default stays 40 ms) and type by hand at three times it.
const wedgeGap = 120 * time.Millisecond

// scan types s and Enter as one burst, the way a keyboard-wedge scanner
// does.
func (b *browser) scan(s string) {
	b.t.Helper()
	b.keys(s + "\r")
}

// typeSlowly types like a person: three wedge gaps between keys. The
// pause is the input itself, not a wait for the page.
func (b *browser) typeSlowly(s string) {
	b.t.Helper()
	for _, r := range s {
		b.keys(string(r))
		time.Sleep(3 * wedgeGap)
	}
}

// setValue sets an input's value as a paste would.
func (b *browser) setValue(sel, v string) {
	b.t.Helper()
	_, err := b.evalErr(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; return "" })()`, sel, v))
	b.fail(err, "set "+sel)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(sel, chromedp.NodeVisible))
}

func (b *browser) shot(name string) []byte {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	dir := b.t.TempDir()
	if d := os.Getenv("EDGEPOS_DEBUG_SHOTS"); d != "" { // keep every shot, for a failing run
		dir = d
		name = b.t.Name() + "-" + name
	}
	p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".png")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot %s", p)
	return img
}

// readme also writes the screenshot where the README takes it from.
func (b *browser) readme(img []byte, name string) {
	dir := os.Getenv("EDGEPOS_SCREENSHOT_DIR")
	if dir == "" || img == nil {
		return
	}
	require.NoError(b.t, os.WriteFile(filepath.Join(dir, name), img, 0o644))
}

func (b *browser) login(user, pin string) {
	b.t.Helper()
	b.waitJS(`!document.querySelector("#login-view").hidden`)
	b.setValue("#login-user", "")
	b.setValue("#login-pin", "")
	b.do("user", chromedp.SendKeys("#login-user", user+"\r"))
	b.waitJS(`document.activeElement.id === "login-pin"`)
	for _, d := range pin { // the touch PIN pad
		b.click(fmt.Sprintf(`#login-pad [data-key="%c"]`, d))
	}
	b.click("#login-submit")
}

func (b *browser) loginCashier() {
	b.t.Helper()
	b.login(DemoCashier, DemoCashierPIN)
	b.waitJS(`!document.querySelector("#sale-view").hidden && document.activeElement.id === "scan"`)
	require.Eventually(b.t, func() bool { return b.f.hub.Subscribers() == 1 }, browserWait, 10*time.Millisecond, "event stream connected")
}

// lineCount is the number of live lines on screen.
func (b *browser) lineCount() int {
	n, err := b.evalErr(`String(document.querySelectorAll("#lines tbody tr:not(.voided)").length)`)
	b.fail(err, "count lines")
	var v int
	fmt.Sscan(n, &v)
	return v
}

func (b *browser) waitLine(sku, qty string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf(`[...document.querySelectorAll('#lines tbody tr[data-sku=%q]:not(.voided) .c-qty')].some(e => e.innerText.trim() === %q)`, sku, qty))
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
	b.login(DemoCashier, "0000")
	b.waitText("#toasts", "Wrong user or PIN.")
	b.loginCashier()
	b.waitText("#st-sync", "Online")
	b.waitJS(`document.querySelector("#st-devices").innerText.includes("Printer")`)

	// Keyboard wedge: a fast burst ending in Enter is a scan.
	b.scan("6901234567892")
	b.waitLine("TEA500", "1")
	b.waitText("#last-scan", "Scanned 6901234567892")
	b.scan("6901234567892")
	b.waitLine("TEA500", "2")

	// An unknown code: a clear message, the sale untouched.
	b.scan("6901234567809")
	b.waitText("#toasts", "Barcode 6901234567809 is not in the catalog")
	require.Equal(t, 1, b.lineCount())

	// The serial scanner's scan arrives over Server-Sent Events.
	f.hub.Publish("scan", map[string]string{"code": "6907992500133", "symbology": "EAN-13", "device": "scanner0"})
	b.waitLine("MILK1L", "1")
	b.waitText("#last-scan", "Scanner 6907992500133")

	// A burst into another field (the milk's quantity dialog) is still a
	// scan and leaves the field as it was; slow typing there is the
	// quantity.
	b.keys(kb.F2)
	b.waitJS(`document.querySelector("#qty-dialog-input") === document.activeElement`)
	b.scan("6920152400777")
	b.waitLine("NOODLE", "1")
	b.waitJS(`document.querySelector("#qty-dialog-input").value === "1"`)
	b.setValue("#qty-dialog-input", "")
	b.typeSlowly("3\r")
	b.waitLine("MILK1L", "3")

	// Keyed by hand, slowly: a name finds the product; apples are weighed.
	b.typeSlowly("apple\r")
	b.waitJS(`document.querySelector("#pick-dialog")`)
	b.keys("1")
	b.waitJS(`document.activeElement?.id === "prompt-dialog-input"`)
	b.typeSlowly("0.532\r")
	b.waitLine("APPLE", "0.532 kg")

	// Member by phone.
	b.keys(kb.F6)
	b.waitJS(`document.activeElement?.id === "member-dialog-input"`)
	b.typeSlowly("13800138000\r")
	b.waitText("#sale-meta", "Member M-8801")

	// A coupon QR scanned with the wedge goes to coupon entry.
	tok := f.coupon(t, wire.Coupon{Kind: wire.CouponAmountOff, Value: 300})
	b.scan(tok)
	b.waitText("#sale-meta", "Coupon −¥3.00")
	s := f.l.OpenCarts()[0]
	require.EqualValues(t, 450*2+1290*3+650+mulDivHalfUp(1398, 532, 1000)-300, s.Total)
	b.waitText("#tot-total", "¥"+f.api.money(s.Total)[4:])

	b.waitJS(`document.querySelector("#toasts").children.length === 0`) // a clean shot for the README
	img := b.shot("sale")
	b.readme(img, "pos-sale.png")

	// Pay cash with the quick amount above the total; change is due.
	b.keys(kb.F10)
	b.waitJS(`document.querySelector("#pay-dialog .btn-quick:nth-child(2)")`)
	quick := b.text("#pay-dialog .btn-quick:nth-child(2)")
	b.click("#pay-dialog .btn-quick:nth-child(2)")
	b.waitText("#done-receipt", "T1-000001")
	b.waitJS(`document.querySelector("#done-change")`)
	sale, err := f.l.FindSaleByReceipt(context.Background(), "T1-000001")
	require.NoError(t, err)
	require.Equal(t, StateCompleted, sale.State)
	kicks, _ := f.hw.counts()
	require.Equal(t, 1, kicks, "cash sale opened the drawer")
	require.Equal(t, "M-8801", sale.Member)
	require.Len(t, sale.Coupons, 1)
	require.Equal(t, "¥"+f.api.money(sale.ChangeDue)[4:], b.text("#done-change"))
	require.Equal(t, quick, "¥"+f.api.money(sale.Paid)[4:])
	b.waitText("#receipt-preview", "RECEIPT T1-000001")

	// The receipt is in the print queue and the printer was woken.
	jobs, err := f.l.PrintJobs(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, "T1-000001", jobs[0].Receipt)
	require.Equal(t, "queued", jobs[0].State)
	_, wakes := f.hw.counts()
	require.Equal(t, 1, wakes)
	b.waitJS(`document.querySelector("#print-state").dataset.state === "queued"`)

	// Paper out: the screen says so and offers a reprint.
	f.stat.setDevices(DeviceState{Name: "printer0", Kind: "printer", State: "error", Reason: "paper out", At: f.now})
	f.hub.Publish("status", map[string]string{"device": "printer0", "state": "error"})
	b.waitJS(`document.querySelector("#print-state").dataset.state === "paper"`)
	b.waitText("#st-devices", "paper out")
	shot := b.shot("paper-out")
	require.NotEmpty(t, shot)
	b.click("#reprint")
	b.waitText("#toasts", "Reprint queued")
	jobs, err = f.l.PrintJobs(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 2)

	// Paper loaded: the queue prints and the screen says printed.
	f.healthyDevices()
	for _, j := range jobs {
		require.NoError(t, f.l.MarkPrinted(context.Background(), j.ID))
	}
	f.hub.Publish("print", map[string]string{"receipt": "T1-000001", "state": "printed"})
	b.waitJS(`document.querySelector("#print-state").dataset.state === "printed"`)
	b.shot("receipt")

	// The next scan closes the receipt and starts the next sale.
	b.scan("6921168509256")
	b.waitLine("WATER", "1")
	b.waitJS(`!document.querySelector("#receipt-dialog")`)
	b.noErrors()
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
	b.waitJS(`document.querySelector("#st-backlog").dataset.backlog === "0"`)
	b.waitText("#st-backlog", "All sent to HQ")

	f.stat.set(false)
	f.hub.Publish("sync", SyncState{Online: false})
	b.waitJS(`document.querySelector("#st-sync").dataset.online === "false"`)
	require.Contains(t, b.text("#st-sync"), "Offline")

	// Sale 1: wedge scan, exact cash.
	b.scan("6901234567892")
	b.waitLine("TEA500", "1")
	b.keys(kb.F10)
	b.waitJS(`document.querySelector("#pay-dialog .btn-quick")`)
	b.click("#pay-dialog .btn-quick")
	b.waitText("#done-receipt", "T1-000001")
	b.keys("\r") // new sale
	b.waitJS(`!document.querySelector("#receipt-dialog")`)

	// Sale 2: serial scan, split between card and cash.
	f.hub.Publish("scan", map[string]string{"code": "6937962100018", "device": "scanner0"})
	b.waitLine("RICE5", "1")
	b.keys(kb.F10)
	b.waitJS(`document.activeElement?.id === "pay-amount"`)
	b.keys(kb.F3)
	b.waitJS(`document.activeElement?.id === "pay-ref"`)
	b.typeSlowly("AUTH-77")
	b.setValue("#pay-amount", "20.00")
	b.keys("\r")
	b.waitText("#pay-tenders", "AUTH-77")
	b.waitText("#pay-due", "¥29.90")
	b.keys(kb.F2)
	b.waitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "29.90"`)
	b.keys("\r")
	b.waitText("#done-receipt", "T1-000002")
	b.waitJS(`document.querySelector("#st-backlog").dataset.backlog !== "0"`)
	b.waitText("#st-backlog", "to sync")
	require.Contains(t, b.text("#st-sync"), "Offline")
	b.shot("offline")
	sale, err := f.l.FindSaleByReceipt(context.Background(), "T1-000002")
	require.NoError(t, err)
	require.Equal(t, []Tender{{Kind: TenderCard, Amount: 2000, Ref: "AUTH-77"}, {Kind: TenderCash, Amount: 2990}}, sale.Tenders)

	// HQ is back and acknowledges everything.
	f.stat.set(true)
	f.ackAll(t)
	f.hub.Publish("sync", SyncState{Online: true})
	b.waitJS(`document.querySelector("#st-sync").dataset.online === "true"`)
	b.waitJS(`document.querySelector("#st-backlog").dataset.backlog === "0"`)
	b.waitText("#st-backlog", "All sent to HQ")
	b.shot("online")
	b.noErrors()
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
	b.waitText("#st-sync", "在线")

	b.keys(kb.F1)
	b.waitJS(`document.querySelector("#menu-dialog")`)
	b.keys("2") // void a sale
	b.waitJS(`document.activeElement?.id === "receipt-number-dialog-input"`)
	b.typeSlowly(done.Receipt + "\r")
	b.waitJS(`document.activeElement?.id === "void-reason-dialog-input"`)
	b.typeSlowly("wrong item\r")
	b.waitJS(`document.activeElement?.id === "mgr-pin"`)
	b.typeSlowly("1111\r")
	b.waitText("#pin-error", "工号或 PIN 错误。")
	b.waitJS(`document.activeElement?.id === "mgr-pin" && document.activeElement.value === ""`)
	for _, d := range DemoManagerPIN {
		b.click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.shot("manager-pin")
	b.keys("\r")
	b.waitText("#toasts", "已作废")
	s, err := f.l.GetSale(context.Background(), done.ID)
	require.NoError(t, err)
	require.Equal(t, StateVoided, s.State)
	require.Contains(t, f.auditActions(t), "void_sale:"+DemoManager)
	b.noErrors()
}
