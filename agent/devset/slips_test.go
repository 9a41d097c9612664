package devset

import (
	"context"
	"database/sql"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/agent"
	"github.com/edgepos/edgepos/devices/printer/virtualprinter"
	"github.com/edgepos/edgepos/sync/wire"
)

// change applies one change-feed entry as the sync link would.
func change(tb testing.TB, l *agent.Ledger, kind, key string, v any) {
	tb.Helper()
	raw, err := json.Marshal(v)
	require.NoError(tb, err)
	ctx := context.Background()
	require.NoError(tb, l.DB().WriteTx(ctx, func(tx *sql.Tx) error {
		return l.ApplyChange(ctx, tx, wire.Change{Version: time.Now().UnixNano(), Kind: kind, Key: key, Op: wire.OpUpsert, Data: raw, At: time.Now().UTC()})
	}))
}

// printedTexts returns the virtual printer's jobs as text, in print order.
func (f *fixture) printedTexts() []string {
	var out []string
	for _, j := range f.vp.Jobs() {
		out = append(out, j.Text(48))
	}
	return out
}

// countMatching counts printed jobs whose text matches re.
func (f *fixture) countMatching(re string) int {
	n := 0
	for _, t := range f.printedTexts() {
		if regexp.MustCompile(re).MatchString(t) {
			n++
		}
	}
	return n
}

// TestReturnSlipsPrintOnce: a return against a receipt, a blind return
// and an online return each print their own slip once, on the virtual
// printer, after the sale's receipt: the return's number, the receipt
// returned against (or none), the online order, the approving manager,
// the lines with their quantities, the refund and how it is paid (for the
// online return, owed by the online channel). The screen's preview is
// the printed text.
func TestReturnSlipsPrintOnce(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), true)
	l := term.a.Ledger()
	c := newClient(t, term.a.Addr())
	c.login(agent.DemoCashier, agent.DemoCashierPIN)
	sale := c.sale(agent.Tender{Kind: agent.TenderCash, Amount: 5000}) // tea ×2, milk
	term.waitJob(t, sale.Sale.ID, "printed")

	var ans struct{ Return agent.Return }
	c.do("POST", "/api/returns", map[string]any{"receipt": sale.Sale.Receipt, "lines": []agent.ReturnLine{{Line: 1, Qty: 2000}},
		"refunds": []agent.Tender{{Kind: agent.TenderCash, Amount: 900}}, "manager_pin": agent.DemoManagerPIN}, &ans)
	r1 := ans.Return
	term.waitJob(t, r1.ID, "printed")
	c.do("POST", "/api/returns", map[string]any{"blind": []agent.BlindLine{{SKU: "APPLE", Qty: 532, Amount: 744}},
		"refunds": []agent.Tender{{Kind: agent.TenderCard, Amount: 744, Ref: "AUTH-3"}}, "manager_pin": agent.DemoManagerPIN}, &ans)
	r2 := ans.Return
	term.waitJob(t, r2.ID, "printed")
	change(t, l, wire.ChangePickupOrder, "o1", wire.PickupOrderChange{OrderID: "0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012", Code: "48213377", Status: "open",
		Customer: "Li Lei", Phone: "13800000001", Paid: 2580, Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}})
	var ho struct{ Handover agent.Handover }
	c.do("POST", "/api/pickups/48213377/handover", nil, &ho)
	term.waitJob(t, ho.Handover.ID, "printed")
	c.do("POST", "/api/returns/online", map[string]any{"order": wire.PickupQR("S001", "48213377"), "manager_pin": agent.DemoManagerPIN,
		"lines": []agent.OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}}, &ans)
	r3 := ans.Return
	term.waitJob(t, r3.ID, "printed")

	texts := f.printedTexts()
	require.Len(t, texts, 5, "receipt, three return slips, the pickup slip: each once")
	slip1, slip2, slip3 := texts[1], texts[2], texts[4]
	for _, want := range []string{`(?m)^ +RETURN$`, `(?m)^Return: T1-R00001$`, `(?m)^Original receipt: ` + sale.Sale.Receipt + `$`, `(?m)^Approved by: 9001$`,
		`(?m)^Terminal: T1 +Cashier: 1001$`, `(?m)^Oolong tea 500ml +¥9\.00$`, `(?m)^  2 x ¥4\.50$`, `(?m)^REFUND +¥9\.00$`, `(?m)^Cash +¥9\.00$`} {
		assert.Regexp(t, want, slip1)
	}
	assert.NotContains(t, slip1, "Fresh milk", "only what came back")
	for _, want := range []string{`(?m)^Return: T1-R00002$`, `(?m)^No receipt$`, `(?m)^Fuji apples +¥7\.44$`, `(?m)^  Qty 0\.532 kg$`, `(?m)^Card +¥7\.44$`} {
		assert.Regexp(t, want, slip2)
	}
	for _, want := range []string{`(?m)^Return: T1-R00003$`, `(?m)^Online order: 48213377$`, `(?m)^  0190f3a2-7c4e-7d21-9a3b-5c6d7e8f9012$`,
		`(?m)^Fresh milk 1L +¥12\.90$`, `(?m)^Refund owed by the online channel +¥12\.90$`} {
		assert.Regexp(t, want, slip3)
	}
	assert.NotRegexp(t, `(?m)^Cash `, slip3, "no money left the drawer")
	require.Eventually(t, func() bool { return f.vp.DrawerKicks() >= 2 }, wait, 5*time.Millisecond)
	assert.Equal(t, 2, f.vp.DrawerKicks(), "the cash sale and the cash refund; not the card or the online refund")

	// The preview the screen shows is what the printer printed.
	var pv map[string]string
	c.do("GET", "/api/print-jobs/"+r3.ID+"/text", nil, &pv)
	assert.Equal(t, strings.TrimRight(strings.TrimSuffix(slip3, strings.Repeat("=", 48)+"\n"), "\n")+"\n", pv["text"])
	assert.Equal(t, "printed", pv["print_state"])
}

// TestReturnSlipResumesAfterRestart: a return recorded while the paper is
// out keeps its slip queued (no byte sent), survives the agent's restart,
// and prints once when the paper is back; the slips printed before are
// not printed again.
func TestReturnSlipResumesAfterRestart(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	ctx := context.Background()
	sale := term.sell(t)
	term.waitJob(t, sale.ID, "printed")
	l := term.a.Ledger()
	first, err := l.ReturnItems(ctx, agent.ReturnRequest{Receipt: sale.Receipt, Lines: []agent.ReturnLine{{Line: 1, Qty: 1000}},
		Refunds: []agent.Tender{{Kind: agent.TenderCash, Amount: 450}}, Cashier: agent.DemoCashier, Manager: agent.DemoManager})
	require.NoError(t, err)
	term.ds.PrintNow()
	term.waitJob(t, first.ID, "printed")

	f.vp.SetPaperOut(true)
	require.Eventually(t, func() bool { return term.printerState(t).Reason == "paper end" }, wait, 5*time.Millisecond)
	ret, err := l.ReturnItems(ctx, agent.ReturnRequest{Receipt: sale.Receipt, Lines: []agent.ReturnLine{{Line: 2, Qty: 1000}},
		Refunds: []agent.Tender{{Kind: agent.TenderCash, Amount: 1290}}, Cashier: agent.DemoCashier, Manager: agent.DemoManager})
	require.NoError(t, err)
	term.ds.PrintNow()
	require.Eventually(t, func() bool { return term.job(t, ret.ID).Attempts > 0 }, wait, 5*time.Millisecond)
	assert.Equal(t, "queued", term.job(t, ret.ID).State)
	term.close(t)
	require.Len(t, f.vp.Jobs(), 2, "the receipt and the first slip")

	term2 := f.open(f.options(), false)
	attempts := 0
	require.Eventually(t, func() bool {
		j := term2.job(t, ret.ID)
		if attempts == 0 {
			attempts = j.Attempts
		}
		return j.State == "queued" && j.Attempts > attempts
	}, wait, 5*time.Millisecond, "the restarted agent tries it")
	assert.Equal(t, "queued", term2.job(t, ret.ID).State)
	f.vp.SetPaperOut(false)
	term2.waitJob(t, ret.ID, "printed")
	later := term2.sell(t)
	term2.waitJob(t, later.ID, "printed")
	texts := f.printedTexts()
	require.Len(t, texts, 4)
	assert.Regexp(t, `(?m)^Return: T1-R00001$`, texts[1])
	assert.Regexp(t, `(?m)^Return: T1-R00002$`, texts[2])
	assert.Regexp(t, `(?m)^Fresh milk 1L +¥12\.90$`, texts[2])
	assert.Equal(t, 1, f.countMatching(`(?m)^Return: T1-R00002$`), "printed once")
	assert.Equal(t, []string{sale.Receipt, later.Receipt}, f.receiptsPrinted())
	assert.Empty(t, f.vp.Partials())
}

// TestPickupSlipPrints: a hand-over prints its slip once: the code, the
// customer with the phone masked, what was handed, the substitute, what is
// missing, and how the order stands.
func TestPickupSlipPrints(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	ctx := context.Background()
	l := term.a.Ledger()
	change(t, l, wire.ChangePickupOrder, "o1", wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Phone: "13800000001",
		Paid: 4480, Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}, {SKU: "TEA500", Qty: 1000}}})
	h, err := l.HandOverPickup(ctx, agent.HandoverRequest{Order: "P-1001", Cashier: agent.DemoCashier, Lines: []agent.HandoverLine{
		{SKU: "MILK1L", Handed: 1000}, {SKU: "TEA500", Handed: 1000, Substitute: "WATER"}, {SKU: "BREAD", Missing: true}}})
	require.NoError(t, err)
	term.ds.PrintNow()
	term.waitJob(t, h.ID, "printed")
	ev := term.waitEvent(t, "print", func(m map[string]any) bool { return m["job"] == h.ID && m["state"] == "printed" })
	assert.Equal(t, "pickup", ev["kind"])
	assert.Equal(t, "P-1001", ev["receipt"])
	jobs := f.vp.Jobs()
	require.Len(t, jobs, 1)
	text := jobs[0].Text(48)
	for _, want := range []string{`(?m)^ +PICKUP$`, `(?m)^Pickup code: P-1001$`, `(?m)^Online order: o1$`, `(?m)^Customer: Li Lei +138\*\*\*\*0001$`,
		`(?m)^Fresh milk 1L +1$`, `(?m)^  ordered 2$`, `(?m)^Mineral water 550ml +1$`, `(?m)^  instead of Oolong tea 500ml$`,
		`(?m)^Whole wheat bread +Missing$`, `(?m)^ +The rest of the order follows$`, `(?m)^ +Thank you!$`} {
		assert.Regexp(t, want, text)
	}
	assert.NotContains(t, text, "13800000001", "the phone is masked on paper")
	for _, it := range jobs[0].Items {
		assert.NotEqual(t, virtualprinter.ItemQR, it.Kind, "a pickup slip has no QR")
	}
}

// TestReceiptPrintsMemberPoints: a member's receipt prints the points
// earned and used and the balance as the terminal sees it when printing;
// a member the store does not know gets the pending line.
func TestReceiptPrintsMemberPoints(t *testing.T) {
	f := newFixture(t)
	term := f.open(f.options(), false)
	ctx := context.Background()
	l := term.a.Ledger()
	change(t, l, wire.ChangeMember, "M1", wire.MemberChange{MemberID: "M1", Name: "Han Meimei", Points: 500, OfflineCap: 300})
	s, err := l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(t, err)
	_, err = l.AddItem(ctx, s.ID, "RICE5", 1000)
	require.NoError(t, err)
	_, err = l.AttachMember(ctx, s.ID, wire.MemberQR("M1"))
	require.NoError(t, err)
	_, err = l.PayWithPoints(ctx, s.ID, 250)
	require.NoError(t, err)
	_, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: 4740})
	require.NoError(t, err)
	done, err := l.CompleteSale(ctx, s.ID, "k1")
	require.NoError(t, err)
	term.ds.PrintNow()
	term.waitJob(t, done.ID, "printed")

	s, err = l.OpenSale(ctx, agent.DemoCashier)
	require.NoError(t, err)
	_, err = l.AddItem(ctx, s.ID, "WATER", 1000)
	require.NoError(t, err)
	_, err = l.AttachMember(ctx, s.ID, "13900000009")
	require.NoError(t, err)
	_, err = l.AddTender(s.ID, agent.Tender{Kind: agent.TenderCash, Amount: 200})
	require.NoError(t, err)
	pending, err := l.CompleteSale(ctx, s.ID, "k2")
	require.NoError(t, err)
	term.ds.PrintNow()
	term.waitJob(t, pending.ID, "printed")

	texts := f.printedTexts()
	require.Len(t, texts, 2)
	for _, want := range []string{`(?m)^Member: M1$`, `(?m)^Points +¥2\.50$`, `(?m)^Points earned +47$`, `(?m)^Points used +250 \(-¥2\.50\)$`, `(?m)^Points balance +297$`} {
		assert.Regexp(t, want, texts[0])
	}
	assert.Regexp(t, `(?m)^Points: HQ adds them$`, texts[1])
	assert.NotContains(t, texts[1], "Points balance")
}
