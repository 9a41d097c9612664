package agent

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// TestBrowserOnlineReturnFromPickupQR takes back part of an online order
// from the menu (item 2, by keyboard): the pickup QR scanned with the
// wedge finds the order; a quantity typed prefills the refund the order
// suggests; too many is refused with the dialog left open; the manager's
// PIN (tapped on the pad) approves; the return slip's preview and print
// state follow. The return, its stock and its slip are in the ledger.
func TestBrowserOnlineReturnFromPickupQR(t *testing.T) {
	f := newAPIFixture(t, browserAPI)
	f.healthyDevices()
	ctx := context.Background()
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Phone: "13800000001", Paid: 3470,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}})
	_, err := f.l.HandOverPickup(ctx, HandoverRequest{Order: "P-1001", Cashier: DemoCashier})
	require.NoError(t, err)
	milk := onHand(t, f.l, "MILK1L")
	b := newBrowser(t, f)
	b.loginCashier()

	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.WaitText(`#menu-dialog [data-menu="onlinereturn"]`, "Online order return")
	b.Keys("2")
	b.WaitJS(`document.activeElement?.id === "oret-q"`)
	b.Scan(wire.PickupQR("S001", "P-1001"))
	b.WaitJS(`document.querySelector("#oret-lines-dialog")`)
	b.WaitText("#oret-order", "P-1001")
	b.WaitText("#oret-table", "Fresh milk 1L")
	b.WaitText("#oret-table", "Whole wheat bread")
	b.WaitJS(`document.activeElement?.dataset.qty === "MILK1L"`)

	// Too many: the ledger refuses, the dialog stays for a correction.
	b.TypeSlowly("3")
	b.WaitJS(`document.querySelector('[data-amount="MILK1L"]').value === "25.80"`) // capped at all that is left of it
	b.Keys("\r")
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	for _, d := range DemoManagerPIN {
		b.Click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.Keys("\r")
	b.WaitText("#toasts", "That is more than was sold and not yet returned.")
	b.WaitJS(`document.querySelector("#oret-lines-dialog") && !document.querySelector("#pin-dialog")`)

	// One bottle: the refund the order suggests (25.80 of 34.70 is the milk's).
	b.Click(`[data-qty="MILK1L"]`)
	b.SetValue(`[data-qty="MILK1L"]`, "")
	b.TypeSlowly("1")
	b.WaitJS(`document.querySelector('[data-amount="MILK1L"]').value === "12.90"`)
	b.WaitText("#oret-total", "¥12.90")
	b.Shot("online-return-lines")
	b.Keys("\r")
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	b.TypeSlowly("1111\r")
	b.WaitText("#pin-error", "Wrong user or PIN.")
	for _, d := range DemoManagerPIN {
		b.Click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.Keys("\r")

	// The slip: its number, what the online channel owes, its preview.
	b.WaitJS(`document.querySelector("#slip-dialog")`)
	b.WaitText("#slip-number", "Return T1-R00001")
	b.WaitText("#slip-refund", "Refund owed by the online channel")
	b.WaitText("#slip-refund", "¥12.90")
	b.WaitText("#slip-preview", "RETURN SLIP T1-R00001")
	b.WaitJS(`document.querySelector("#slip-print-state").dataset.state === "queued"`)
	b.Shot("online-return-slip")
	ret, err := f.l.ReturnReceipt(ctx, slipID(t, f))
	require.NoError(t, err)
	require.Equal(t, "online", ret.Channel)
	require.Equal(t, "o1", ret.OrderID)
	require.Equal(t, DemoManager, ret.Manager)
	require.Equal(t, []ReturnReceiptLine{{Line: 1, SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Qty: 1000, Amount: 1290}}, ret.Lines)
	require.Equal(t, milk+1000, onHand(t, f.l, "MILK1L"))
	kicks, wakes := f.hw.counts()
	require.Zero(t, kicks, "no drawer for an online refund")
	require.Equal(t, 1, wakes, "the printer was woken for the slip")

	// Printed: the screen says so.
	require.NoError(t, f.l.MarkPrinted(ctx, ret.ReturnID))
	f.hub.Publish("print", map[string]string{"job": ret.ReturnID, "state": "printed"})
	b.WaitJS(`document.querySelector("#slip-print-state").dataset.state === "printed"`)
	b.Keys("\r")
	b.WaitJS(`!document.querySelector("#slip-dialog")`)
	b.NoErrors()
}

// slipID is the id of the one return slip queued or printed.
func slipID(t *testing.T, f *apiFixture) string {
	t.Helper()
	js, err := f.l.PrintJobs(context.Background(), 20)
	require.NoError(t, err)
	for _, j := range js {
		if j.Kind == PrintReturn {
			return j.ID
		}
	}
	t.Fatal("no return slip queued")
	return ""
}

// TestBrowserOnlineReturnByHandZH, in Chinese: an order this store never
// saw (delivered home) is typed in by its order number; the cashier
// confirms taking it by hand, scans the item (the wedge), types the
// refund, and a manager approves; the slip follows. A receipt return
// shows its slip too.
func TestBrowserOnlineReturnByHandZH(t *testing.T) {
	f := newAPIFixture(t, browserAPI, func(c *APIConfig) { c.Locale = "zh-CN" })
	f.healthyDevices()
	ctx := context.Background()
	b := newBrowser(t, f)
	b.loginCashier()

	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Click(`#menu-dialog [data-menu="onlinereturn"]`)
	b.WaitJS(`document.activeElement?.id === "oret-q"`)
	b.TypeSlowly("web-77\r")
	b.WaitText("#confirm-dialog", "本店没有订单 web-77")
	b.Keys("\r")
	b.WaitJS(`document.querySelector("#oret-lines-dialog")`)
	b.WaitText("#oret-order", "订单 web-77")
	b.WaitJS(`document.activeElement?.id === "oret-add"`)
	b.Scan("6907992500133") // milk
	b.WaitJS(`document.querySelector('[data-qty="MILK1L"]')?.value === "1"`)
	b.WaitJS(`document.querySelector('[data-amount="MILK1L"]').value === ""`) // the order cannot tell
	b.Click(`[data-amount="MILK1L"]`)
	b.TypeSlowly("12.50")
	b.WaitText("#oret-total", "￥12.50")
	b.Click(`#oret-lines-dialog button[type=submit]`)
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	b.TypeSlowly(DemoManagerPIN + "\r")
	b.WaitText("#slip-number", "退货单 T1-R00001")
	b.WaitText("#slip-refund", "由线上渠道退款")
	b.WaitText("#slip-preview", "RETURN SLIP T1-R00001")
	ret, err := f.l.ReturnReceipt(ctx, slipID(t, f))
	require.NoError(t, err)
	require.Equal(t, "web-77", ret.OrderID)
	require.Empty(t, ret.OrderCode)
	require.EqualValues(t, 1250, ret.Total)
	b.Keys("\r")
	b.WaitJS(`!document.querySelector("#slip-dialog")`)

	// A return against a receipt shows its slip as well.
	done := f.cashier(t).completedSale()
	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Keys("1")
	b.WaitJS(`document.activeElement?.id === "receipt-number-dialog-input"`)
	b.TypeSlowly(done.Receipt + "\r")
	b.WaitJS(`document.querySelector("#return-dialog input[data-line='1']")`)
	b.Click(`#return-dialog input[data-line='1']`)
	b.TypeSlowly("1")
	b.Keys("\r")
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	b.TypeSlowly(DemoManagerPIN + "\r")
	b.WaitText("#slip-number", "退货单 T1-R00002")
	b.WaitText("#slip-refund", "退款合计")
	b.WaitText("#slip-preview", "RETURN SLIP T1-R00002")
	b.NoErrors()
}
