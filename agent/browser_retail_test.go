package agent

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// TestBrowserPickupHandoverAndPoints hands an online order over from the
// menu (its QR scanned with the wedge, a line recorded missing), sees a
// second scan of the same code refused, then sells to a member whose QR is
// scanned and pays part with points (F5), the rest in cash.
func TestBrowserPickupHandoverAndPoints(t *testing.T) {
	f := newAPIFixture(t, browserAPI)
	f.healthyDevices()
	ctx := context.Background()
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Phone: "13800000001", Paid: 3470,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}})
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Name: "Han Meimei", Points: 500, OfflineCap: 300})
	_, err := f.l.OpenShift(ctx, DemoCashier, 20000)
	require.NoError(t, err)
	milk := onHand(t, f.l, "MILK1L")
	b := newBrowser(t, f)
	b.loginCashier()

	// Pickup: menu → pickup orders; the order waits there; its QR is scanned.
	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Click(`#menu-dialog [data-menu="pickups"]`)
	b.WaitJS(`document.activeElement?.id === "pickup-q"`)
	b.WaitText("#pickup-list", "P-1001")
	b.Scan(wire.PickupQR("S001", "P-1001"))
	b.WaitJS(`document.querySelector("#handover-dialog")`)
	b.WaitText("#handover-table", "MILK1L")
	b.WaitJS(`document.querySelector('#handover-table input[data-now="MILK1L"]').value === "2"`)
	b.Click(`#handover-table input[data-missing="BREAD"]`)
	b.SetValue(`#handover-table input[data-now="BREAD"]`, "0")
	b.Readme(b.Shot("pickup-handover"), "pos-pickup.png")
	b.Click(`#handover-dialog button[type=submit]`)
	b.WaitText("#toasts", "Order P-1001 handed over")
	b.WaitJS(`!document.querySelector("#handover-dialog")`)
	require.Equal(t, milk-2000, onHand(t, f.l, "MILK1L"))
	ful := events[wire.PickupFulfilled](t, f.db, wire.EventPickupFulfilled)
	require.Len(t, ful, 1)
	require.True(t, ful[0].Final)
	require.False(t, ful[0].Complete)
	require.Equal(t, []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 2000}, {SKU: "BREAD", Qty: 1000, Missing: true}}, ful[0].Lines)

	// The same code again is refused with a message.
	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Click(`#menu-dialog [data-menu="pickups"]`)
	b.WaitJS(`document.activeElement?.id === "pickup-q"`)
	b.Scan("P-1001")
	b.WaitText("#toasts", "This order was already handed over.")
	b.Keys(kb.Escape)
	b.WaitJS(`!document.querySelector("#pickups-dialog")`)

	// A member QR scanned in a sale attaches the member; points pay part.
	b.Scan("6937962100018") // rice 49.90
	b.WaitLine("RICE5", "1")
	b.Scan(wire.MemberQR("M1"))
	b.WaitText("#sale-meta", "M1")
	b.Keys(kb.F10)
	b.WaitJS(`document.activeElement?.id === "pay-amount"`)
	b.Keys(kb.F5)
	b.WaitText("#pay-points-note", "300 points usable")
	b.WaitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "300"`)
	b.SetValue("#pay-amount", "250")
	b.Keys("\r")
	b.WaitText("#pay-tenders", "Points")
	b.WaitText("#pay-due", "¥47.40")
	b.Keys(kb.F2)
	b.WaitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "47.40"`)
	b.Keys("\r")
	b.WaitText("#done-receipt", "T1-000001")
	sale, err := f.l.FindSaleByReceipt(ctx, "T1-000001")
	require.NoError(t, err)
	require.EqualValues(t, 250, sale.PointsSpent)
	require.EqualValues(t, 47, sale.PointsEarned)
	require.Equal(t, []Tender{{Kind: TenderPoints, Amount: 250, Ref: "points:250"}, {Kind: TenderCash, Amount: 4740}}, sale.Tenders)
	b.NoErrors()
}
