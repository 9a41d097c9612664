package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/internal/browsertest"
	"github.com/edgepos/edgepos/internal/embedbroker"
	"github.com/edgepos/edgepos/internal/reconcile"
	"github.com/edgepos/edgepos/internal/testenv"
	"github.com/edgepos/edgepos/sync/wire"
)

const wait = 20 * time.Second

// startDemo starts the whole demo stack in a temp dir with devices fast
// enough for a test; the screen is in English.
func startDemo(t *testing.T, dev devOptions) *demo {
	t.Helper()
	d := &demo{dir: t.TempDir(), out: io.Discard, log: slog.New(slog.DiscardHandler)}
	if os.Getenv("EDGEPOS_DEMO_TEST_LOG") == "1" {
		d.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	err := d.start(context.Background(), demoConfig{Listen: "127.0.0.1:0", HQListen: "127.0.0.1:0", Locale: "en",
		WedgeGap: browsertest.WedgeGap, Devices: dev})
	t.Cleanup(d.stop)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return d.agent.Status(context.Background()).Sync.Online }, wait, 20*time.Millisecond, "the store reconciled with HQ")
	return d
}

// typeOnScanner writes to <data>/scan what `printf 'code\r' > <data>/scan`
// writes: the demo relays it to the serial scanner's pseudo-terminal.
func typeOnScanner(t *testing.T, d *demo, s string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(d.dir, "scan"), os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(s)
	require.NoError(t, errors.Join(err, f.Close()))
}

func backlog(t *testing.T, b *browsertest.Browser) int {
	t.Helper()
	s, err := b.Eval(`document.querySelector("#st-backlog").dataset.backlog`)
	require.NoError(t, err)
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "backlog %q", s)
	return n
}

// payCash pays the sale on screen with the quick amount (1: exact, 2: the
// next note) and waits for its receipt number.
func payCash(b *browsertest.Browser, quick int, receipt string) {
	b.Keys(kb.F10)
	sel := fmt.Sprintf("#pay-dialog .btn-quick:nth-child(%d)", quick)
	b.WaitJS(fmt.Sprintf("document.querySelector(%q)", sel))
	b.Click(sel)
	b.WaitText("#done-receipt", receipt)
}

// nextSale closes the receipt dialog for the next customer.
func nextSale(b *browsertest.Browser) {
	b.Keys("\r")
	b.WaitJS(`!document.querySelector("#receipt-dialog")`)
}

// TestBrowserFullStackDemo drives the POS screen in Chromium against the
// real demo stack: the agent runtime syncing through the embedded broker
// to HQ on SQLite, devset with the scanner simulator on a pty and the
// virtual printer on TCP. It logs in, scans by keyboard wedge and by
// writing to the scanner's pty (the line arrives over SSE), applies a
// coupon HQ issued, pays cash (the receipt prints, the drawer kicks),
// runs out of paper (the status bar says so, the job stays queued, then
// prints exactly once), loses the broker and keeps selling while the
// status bar says offline and the backlog grows, gets it back and sees the
// backlog drain with HQ holding every sale.
func TestBrowserFullStackDemo(t *testing.T) {
	testenv.Chromium(t) // before starting the stack
	ctx := context.Background()
	d := startDemo(t, devOptions{PrinterPoll: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond, SaveReceipts: true})
	l := d.agent.Ledger()
	b := browsertest.New(t, "http://"+d.agent.Addr())

	b.Login(agent.DemoCashier, agent.DemoCashierPIN)
	b.WaitSaleView()
	require.Eventually(t, func() bool { return d.agent.Hub().Subscribers() == 1 }, wait, 10*time.Millisecond, "the screen's event stream")
	b.WaitText("#st-sync", "Online")
	b.WaitJS(`[...document.querySelectorAll("#st-devices [data-kind]")].map(e => e.dataset.kind + ":" + e.dataset.state).join() === "printer:idle,scanner:idle,shelf:idle"`)

	// Sale 1: tea by keyboard wedge, milk from the serial scanner's pty,
	// a coupon HQ signed.
	b.Scan("6901234567892")
	b.WaitLine("TEA500", "1")
	typeOnScanner(t, d, "6907992500133\r")
	b.WaitLine("MILK1L", "1")
	b.WaitText("#last-scan", "Scanner 6907992500133")
	reply, err := d.hq.IssueCoupons(ctx, hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 300, MinSpend: 500, Currency: "CNY", Expires: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	b.Scan(reply.Coupons[0].Token)
	b.WaitText("#sale-meta", "Coupon −¥3.00")
	b.WaitText("#tot-total", "¥14.40") // 4.50 + 12.90 − 3.00
	b.WaitJS(`document.querySelector("#toasts").children.length === 0`)
	b.Readme(b.Shot("sale"), "pos-demo-sale.png")

	payCash(b, 2, "T1-000001")
	require.Eventually(t, func() bool { return d.dev.printed() == 1 }, wait, 10*time.Millisecond, "the receipt reached the virtual printer")
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "printed"`)
	assert.Equal(t, 1, d.dev.printer.DrawerKicks(), "the cash sale kicked the drawer")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(d.dir, "receipts", "T1-000001.png"))
		return err == nil
	}, wait, 10*time.Millisecond, "the demo saved the printed receipt")
	b.Shot("receipt")
	nextSale(b)

	// Sale 2 with the paper out: the status bar says so, the receipt waits.
	d.dev.printer.SetPaperOut(true)
	b.WaitText("#st-devices", "paper end")
	b.Scan("6921168509256")
	b.WaitLine("WATER", "1")
	payCash(b, 1, "T1-000002")
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "paper"`)
	s2, err := l.FindSaleByReceipt(ctx, "T1-000002")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := l.PrintJob(ctx, s2.ID)
		return err == nil && j.State == "queued" && j.Attempts > 0
	}, wait, 10*time.Millisecond, "the job tried and stayed queued")
	assert.Equal(t, 1, d.dev.printed(), "nothing printed without paper")
	b.Shot("paper-out")
	d.dev.printer.SetPaperOut(false)
	b.WaitJS(`document.querySelector("#print-state").dataset.state === "printed"`)
	b.WaitJS(`!document.querySelector("#st-devices").innerText.includes("paper")`)
	require.Equal(t, 2, d.dev.printed())
	nextSale(b)

	// The broker goes: the status bar says offline, selling goes on, the
	// backlog grows.
	require.NoError(t, d.broker.Close())
	b.WaitJS(`document.querySelector("#st-sync").dataset.online === "false"`)
	assert.Contains(t, b.Text("#st-sync"), "Offline")
	b.Scan("4006381333931")
	b.WaitLine("BREAD", "1")
	payCash(b, 1, "T1-000003")
	nextSale(b)
	b.WaitJS(`document.querySelector("#st-backlog").dataset.backlog !== "0"`)
	before := backlog(t, b)
	typeOnScanner(t, d, "6921168509256\n") // echo's line end works too
	b.WaitLine("WATER", "1")
	payCash(b, 1, "T1-000004")
	b.WaitJS(fmt.Sprintf(`Number(document.querySelector("#st-backlog").dataset.backlog) > %d`, before))
	b.WaitText("#st-backlog", "to sync")
	assert.Contains(t, b.Text("#st-sync"), "Offline")
	b.Shot("offline")
	nextSale(b)

	// The broker is back: the backlog drains to zero, HQ holds every sale.
	nb, err := embedbroker.Restart(d.broker)
	require.NoError(t, err)
	d.broker = nb
	b.WaitJS(`document.querySelector("#st-sync").dataset.online === "true"`)
	b.WaitJS(`document.querySelector("#st-backlog").dataset.backlog === "0"`)
	b.Shot("online")
	res, err := reconcile.Compare(ctx, []reconcile.Terminal{{Store: store, DB: l.DB().Read}}, d.hqDB)
	require.NoError(t, err)
	assert.Equal(t, "sales=4 at_hq=4 duplicates=0 lost=0 conflicts=0", res.Line(true))
	assert.True(t, res.OK())

	// Every receipt printed exactly once, in order.
	require.Eventually(t, func() bool { return d.dev.printed() == 4 }, wait, 10*time.Millisecond)
	var printed []string
	for _, j := range d.dev.printer.Jobs() {
		if m := receiptLine.FindStringSubmatch(j.Text(48)); m != nil {
			printed = append(printed, m[1])
		}
	}
	assert.Equal(t, []string{"T1-000001", "T1-000002", "T1-000003", "T1-000004"}, printed)
	assert.Empty(t, d.dev.printer.Partials())
	b.NoErrors()
}
