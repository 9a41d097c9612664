package agent

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// TestBrowserStockDeliveryAndWriteOff has a cashier receive a delivery
// through the menu (the barcode scanned into the dialog) and then write
// off damaged goods, which asks for a manager's PIN; both are booked and
// audited.
func TestBrowserStockDeliveryAndWriteOff(t *testing.T) {
	f := newAPIFixture(t, browserAPI)
	f.healthyDevices()
	start := f.stockOf(t, "BREAD")
	b := newBrowser(t, f)
	b.loginCashier()

	openStock := func() {
		b.Keys(kb.F1)
		b.WaitJS(`document.querySelector("#menu-dialog")`)
		b.Click(`#menu-dialog [data-menu="stock"]`)
		b.WaitJS(`document.activeElement?.id === "stock-code"`)
	}
	openStock()
	b.Scan("4006381333931") // the bread's EAN-13 on a wedge scanner
	b.WaitJS(`document.querySelector("#stock-code").value === "4006381333931" && document.activeElement?.id === "stock-qty"`)
	b.TypeSlowly("12\r")
	b.WaitText("#toasts", "Whole wheat bread: +12, on hand")
	require.Equal(t, start+12000, f.stockOf(t, "BREAD"))

	openStock()
	b.TypeSlowly("BREAD")
	b.Click(`#stock-reason [data-reason="damage"]`)
	b.WaitJS(`document.activeElement?.id === "stock-qty"`)
	b.TypeSlowly("2\r")
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	for _, d := range DemoManagerPIN {
		b.Click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.Keys("\r")
	b.WaitText("#toasts", "Whole wheat bread: −2, on hand")
	require.Equal(t, start+10000, f.stockOf(t, "BREAD"))
	require.Subset(t, f.auditActions(t), []string{"stock_delivery:", "stock_damage:" + DemoManager})

	// A quantity that is not a number is refused on the screen; nothing moves.
	openStock()
	b.TypeSlowly("BREAD")
	b.Click("#stock-qty")
	b.TypeSlowly("two\r")
	b.WaitText("#toasts", "Wrong quantity: two")
	require.Equal(t, start+10000, f.stockOf(t, "BREAD"))
	b.NoErrors()
}
