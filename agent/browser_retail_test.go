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
	b.keys(kb.F1)
	b.waitJS(`document.querySelector("#menu-dialog")`)
	b.click(`#menu-dialog [data-menu="pickups"]`)
	b.waitJS(`document.activeElement?.id === "pickup-q"`)
	b.waitText("#pickup-list", "P-1001")
	b.scan(wire.PickupQR("S001", "P-1001"))
	b.waitJS(`document.querySelector("#handover-dialog")`)
	b.waitText("#handover-table", "MILK1L")
	b.waitJS(`document.querySelector('#handover-table input[data-now="MILK1L"]').value === "2"`)
	b.click(`#handover-table input[data-missing="BREAD"]`)
	b.setValue(`#handover-table input[data-now="BREAD"]`, "0")
	b.readme(b.shot("pickup-handover"), "pos-pickup.png")
	b.click(`#handover-dialog button[type=submit]`)
	b.waitText("#toasts", "Order P-1001 handed over")
	b.waitJS(`!document.querySelector("#handover-dialog")`)
	require.Equal(t, milk-2000, onHand(t, f.l, "MILK1L"))
	ful := events[wire.PickupFulfilled](t, f.db, wire.EventPickupFulfilled)
	require.Len(t, ful, 1)
	require.True(t, ful[0].Final)
	require.False(t, ful[0].Complete)
	require.Equal(t, []wire.PickupLine{{SKU: "MILK1L", Qty: 2000, Handed: 2000}, {SKU: "BREAD", Qty: 1000, Missing: true}}, ful[0].Lines)

	// The same code again is refused with a message.
	b.keys(kb.F1)
	b.waitJS(`document.querySelector("#menu-dialog")`)
	b.click(`#menu-dialog [data-menu="pickups"]`)
	b.waitJS(`document.activeElement?.id === "pickup-q"`)
	b.scan("P-1001")
	b.waitText("#toasts", "This order was already handed over.")
	b.keys(kb.Escape)
	b.waitJS(`!document.querySelector("#pickups-dialog")`)

	// A member QR scanned in a sale attaches the member; points pay part.
	b.scan("6937962100018") // rice 49.90
	b.waitLine("RICE5", "1")
	b.scan(wire.MemberQR("M1"))
	b.waitText("#sale-meta", "M1")
	b.keys(kb.F10)
	b.waitJS(`document.activeElement?.id === "pay-amount"`)
	b.keys(kb.F5)
	b.waitText("#pay-points-note", "300 points usable")
	b.waitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "300"`)
	b.setValue("#pay-amount", "250")
	b.keys("\r")
	b.waitText("#pay-tenders", "Points")
	b.waitText("#pay-due", "¥47.40")
	b.keys(kb.F2)
	b.waitJS(`document.activeElement?.id === "pay-amount" && document.activeElement.value === "47.40"`)
	b.keys("\r")
	b.waitText("#done-receipt", "T1-000001")
	sale, err := f.l.FindSaleByReceipt(ctx, "T1-000001")
	require.NoError(t, err)
	require.EqualValues(t, 250, sale.PointsSpent)
	require.EqualValues(t, 47, sale.PointsEarned)
	require.Equal(t, []Tender{{Kind: TenderPoints, Amount: 250, Ref: "points:250"}, {Kind: TenderCash, Amount: 4740}}, sale.Tenders)
	b.noErrors()
}
