package agent

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

// TestAPIOnlineReturnScreen is the online return screen's calls: the
// order looked up by QR or code with what may come back and the refunds
// suggested, each refusal with its code (too many, refund too large, no
// manager or a wrong PIN, another store's QR, an unknown order, text that
// is no order id, a bad query), then the return, the printer woken, and
// its slip's state and preview by the return's id.
func TestAPIOnlineReturnScreen(t *testing.T) {
	f := newAPIFixture(t)
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Paid: 3470,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}})
	c := f.cashier(t)
	c.ok("POST", "/api/pickups/o1/handover", nil)
	_, wakes := f.hw.counts()
	require.Equal(t, 1, wakes, "the hand-over's slip woke the printer")

	var found struct{ Order OnlineReturnOrder }
	c.ok("GET", "/api/returns/online/lookup?q="+url.QueryEscape(wire.PickupQR("S001", "P-1001")), nil).decode(t, &found)
	require.Equal(t, "o1", found.Order.OrderID)
	require.EqualValues(t, 3470, found.Order.Left)
	require.Len(t, found.Order.Items, 2)
	// 34.70 over milk 25.80 and bread 8.90.
	require.Equal(t, OnlineReturnItem{SKU: "MILK1L", Name: "Fresh milk 1L", Unit: "each", Handed: 2000, Returnable: 2000, Refundable: 2580, Suggested: true}, found.Order.Items[0])
	require.EqualValues(t, 890, found.Order.Items[1].Refundable)

	for name, tc := range map[string]struct {
		q      string
		status int
		code   string
	}{
		"another store": {wire.PickupQR("S009", "P-1001"), http.StatusUnprocessableEntity, "pickup_other_store"},
		"unknown order": {"web-77", http.StatusNotFound, "pickup_unknown"},
		"not an id":     {"not an id!", http.StatusUnprocessableEntity, "invalid"},
		"empty":         {"", http.StatusBadRequest, "bad_request"},
	} {
		t.Run("lookup "+name, func(t *testing.T) {
			r := c.do("GET", "/api/returns/online/lookup?q="+url.QueryEscape(tc.q), nil)
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Equal(t, tc.code, r.code())
			require.NotEmpty(t, r.message())
		})
	}

	milk := OnlineReturnLine{SKU: "MILK1L", Qty: 1000, Amount: 1290}
	for name, tc := range map[string]struct {
		req    onlineReturnReq
		status int
		code   string
	}{
		"no manager":          {onlineReturnReq{Order: "P-1001", Lines: []OnlineReturnLine{milk}}, http.StatusForbidden, "needs_manager"},
		"wrong manager PIN":   {onlineReturnReq{Order: "P-1001", ManagerPIN: "0000", Lines: []OnlineReturnLine{milk}}, http.StatusForbidden, "bad_pin"},
		"too many":            {onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 3000, Amount: 100}}}, http.StatusUnprocessableEntity, "return_too_many"},
		"refund too large":    {onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 2000, Amount: 3471}}}, http.StatusUnprocessableEntity, "refund_too_large"},
		"another store":       {onlineReturnReq{Order: wire.PickupQR("S009", "P-1001"), ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{milk}}, http.StatusUnprocessableEntity, "pickup_other_store"},
		"half a bottle":       {onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 500, Amount: 100}}}, http.StatusUnprocessableEntity, "bad_quantity"},
		"negative refund":     {onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: -1}}}, http.StatusUnprocessableEntity, "bad_amount"},
		"no lines":            {onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN}, http.StatusUnprocessableEntity, "invalid"},
		"unknown, no manager": {onlineReturnReq{Order: "web-77", Lines: []OnlineReturnLine{milk}}, http.StatusForbidden, "needs_manager"},
	} {
		t.Run("return "+name, func(t *testing.T) {
			r := c.do("POST", "/api/returns/online", tc.req)
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Equal(t, tc.code, r.code())
		})
	}
	var n int
	require.NoError(t, f.db.Read.QueryRow("SELECT COUNT(*) FROM returns").Scan(&n))
	require.Zero(t, n, "nothing refused was recorded")

	var ret struct{ Return Return }
	c.ok("POST", "/api/returns/online", onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN, Lines: []OnlineReturnLine{milk}}).decode(t, &ret)
	require.Equal(t, "queued", ret.Return.PrintState)
	_, wakes = f.hw.counts()
	require.Equal(t, 2, wakes, "the return's slip woke the printer")
	var job struct{ Job PrintJob }
	c.ok("GET", "/api/print-jobs/"+ret.Return.ID, nil).decode(t, &job)
	require.Equal(t, PrintJob{ID: ret.Return.ID, Receipt: ret.Return.Receipt, Kind: PrintReturn, State: "queued", CreatedAt: f.now}, job.Job)
	var text map[string]string
	c.ok("GET", "/api/print-jobs/"+ret.Return.ID+"/text", nil).decode(t, &text)
	require.Equal(t, map[string]string{"text": "RETURN SLIP " + ret.Return.Receipt, "kind": "return", "receipt": ret.Return.Receipt, "print_state": "queued"}, text)
	r := c.do("GET", "/api/print-jobs/nope", nil)
	require.Equal(t, http.StatusNotFound, r.status)

	// What is left: the second bottle, and the rest of what was paid.
	c.ok("GET", "/api/returns/online/lookup?q=P-1001", nil).decode(t, &found)
	require.EqualValues(t, 1290, found.Order.Refunded)
	require.Equal(t, int64(1000), found.Order.Items[0].Returnable)
	require.EqualValues(t, 2580-1290, found.Order.Items[0].Refundable)
}

// TestAPIReturnSlipWithoutHardware: with no device set the API still
// previews a slip, as plain text from the ledger; a receipt job is not a
// slip.
func TestAPIReturnSlipWithoutHardware(t *testing.T) {
	f := newAPIFixture(t, func(c *APIConfig) { c.Hardware = nil })
	c := f.cashier(t)
	s := c.openSale("6907992500133")
	c.ok("POST", "/api/sales/"+s.ID+"/tenders", Tender{Kind: TenderCash, Amount: s.Total})
	done := c.ok("POST", "/api/sales/"+s.ID+"/complete", nil, "Idempotency-Key", "k1").sale(t)
	var ret struct{ Return Return }
	c.ok("POST", "/api/returns", returnReq{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}, ManagerPIN: DemoManagerPIN,
		Refunds: []Tender{{Kind: TenderCash, Amount: 1290}}}).decode(t, &ret)
	var text map[string]string
	c.ok("GET", "/api/print-jobs/"+ret.Return.ID+"/text", nil).decode(t, &text)
	require.Contains(t, text["text"], "RETURN T1-R00001")
	require.Contains(t, text["text"], "receipt "+done.Receipt)
	require.Contains(t, text["text"], "REFUND CNY 12.90")
	r := c.do("GET", "/api/print-jobs/"+done.ID+"/text", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
}
