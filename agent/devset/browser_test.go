package devset

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/internal/browsertest"
	"github.com/edgepos/edgepos/sync/wire"
)

// TestBrowserReturnSlipOnScreenAndPaper runs the online return screen
// against the real agent, its API and this device set with the virtual
// printer: by touch (menu item, "All", the PIN pad, Return), the order
// found by its pickup QR, the refund the order suggests; the slip the
// screen previews is the one the printer printed, once, and the screen
// sees it printed. EDGEPOS_SCREENSHOT_DIR=docs writes
// docs/pos-online-return.png.
func TestBrowserReturnSlipOnScreenAndPaper(t *testing.T) {
	f := newFixture(t)
	f.apiMod = func(c *agent.APIConfig) { c.WedgeGap = browsertest.WedgeGap }
	term := f.open(f.options(), true)
	l := term.a.Ledger()
	change(t, l, wire.ChangePickupOrder, "o1", wire.PickupOrderChange{OrderID: "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012", Code: "48213377", Status: "open",
		Customer: "Li Lei", Phone: "13800000001", Paid: 3470, Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}})
	c := newClient(t, term.a.Addr())
	c.login(agent.DemoCashier, agent.DemoCashierPIN)
	var ho struct{ Handover agent.Handover }
	c.do("POST", "/api/pickups/48213377/handover", nil, &ho)
	term.waitJob(t, ho.Handover.ID, "printed")

	b := browsertest.New(t, "http://"+term.a.Addr())
	b.Login(agent.DemoCashier, agent.DemoCashierPIN)
	b.WaitSaleView()
	require.Eventually(t, func() bool { return term.a.Hub().Subscribers() >= 1 }, wait, 10*time.Millisecond, "the screen's event stream")
	b.Keys(kb.F1)
	b.WaitJS(`document.querySelector("#menu-dialog")`)
	b.Click(`#menu-dialog [data-menu="onlinereturn"]`)
	b.WaitJS(`document.activeElement?.id === "oret-q"`)
	b.Scan(wire.PickupQR("S001", "48213377"))
	b.WaitText("#oret-table", "Fresh milk 1L")
	b.Click(`#oret-table [data-all="BREAD"]`)
	b.WaitJS(`document.querySelector('[data-qty="BREAD"]').value === "1" && document.querySelector('[data-amount="BREAD"]').value === "8.90"`)
	b.WaitText("#oret-total", "¥8.90")
	b.Click(`#oret-lines-dialog button[type=submit]`)
	b.WaitJS(`document.activeElement?.id === "mgr-pin"`)
	for _, d := range agent.DemoManagerPIN {
		b.Click(fmt.Sprintf(`#pin-dialog [data-key="%c"]`, d))
	}
	b.Click(`#pin-dialog button[type=submit]`)

	b.WaitText("#slip-number", "Return T1-R00001")
	b.WaitText("#slip-preview", "Return: T1-R00001")
	b.WaitText("#slip-preview", "Online order: 48213377")
	b.WaitText("#slip-preview", "Refund owed by the online channel")
	b.WaitJS(`document.querySelector("#slip-print-state").dataset.state === "printed"`)
	b.WaitJS(`document.querySelector("#toasts").children.length === 0`)
	b.Readme(b.Shot("online-return-slip"), "pos-online-return.png")

	texts := f.printedTexts()
	require.Len(t, texts, 2, "the pickup slip, then the return slip, each once")
	assert.Regexp(t, `(?m)^Pickup code: 48213377$`, texts[0])
	slip := texts[1]
	for _, want := range []string{`(?m)^Return: T1-R00001$`, `(?m)^  0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012$`, `(?m)^Approved by: 9001$`,
		`(?m)^Whole wheat bread +¥8\.90$`, `(?m)^REFUND +¥8\.90$`, `(?m)^Refund owed by the online channel +¥8\.90$`} {
		assert.Regexp(t, want, slip)
	}
	preview, err := b.Eval(`document.querySelector("#slip-preview").textContent`)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimRight(strings.TrimSuffix(slip, strings.Repeat("=", 48)+"\n"), "\n")+"\n", preview, "the screen shows what the printer printed")
	assert.Zero(t, f.vp.DrawerKicks(), "no money left the drawer")
	b.NoErrors()
}
