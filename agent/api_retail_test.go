package agent

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/sync/wire"
)

func TestAPIPickupHandover(t *testing.T) {
	f := newAPIFixture(t)
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Customer: "Li Lei", Phone: "13800000001", Paid: 3470,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}, {SKU: "BREAD", Qty: 1000}}})
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o2", Code: "P-1002", Status: "open", Paid: 200, Lines: []wire.PickupLine{{SKU: "WATER", Qty: 1000}}})
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o3", Code: "P-1003", Status: "cancelled", Paid: 200, Lines: []wire.PickupLine{{SKU: "WATER", Qty: 1000}}})
	c := f.cashier(t)

	var found struct{ Orders []PickupOrder }
	c.ok("GET", "/api/pickups/lookup?q="+url.QueryEscape(wire.PickupQR("S001", "P-1001")), nil).decode(t, &found)
	require.Len(t, found.Orders, 1)
	require.Equal(t, "Li Lei", found.Orders[0].Customer)
	c.ok("GET", "/api/pickups/lookup?q=13800000001", nil).decode(t, &found)
	require.Equal(t, "o1", found.Orders[0].ID, "search by phone")

	for name, tc := range map[string]struct {
		q      string
		status int
		code   string
	}{
		"unknown code":  {"P-0000", http.StatusNotFound, "pickup_unknown"},
		"another store": {wire.PickupQR("S009", "P-1001"), http.StatusUnprocessableEntity, "pickup_other_store"},
		"cancelled":     {"P-1003", http.StatusConflict, "pickup_cancelled"},
		"empty":         {"", http.StatusBadRequest, "bad_request"},
	} {
		t.Run("lookup "+name, func(t *testing.T) {
			r := c.do("GET", "/api/pickups/lookup?q="+url.QueryEscape(tc.q), nil)
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Equal(t, tc.code, r.code())
			require.NotEmpty(t, r.message())
		})
	}

	// Part of it, with a substitution and a missing item.
	var ho struct{ Handover Handover }
	c.ok("POST", "/api/pickups/o1/handover", handoverReq{Lines: []HandoverLine{{SKU: "MILK1L", Handed: 2000}, {SKU: "BREAD", Missing: true}}}).decode(t, &ho)
	require.True(t, ho.Handover.Final)
	require.False(t, ho.Handover.Complete)
	require.Equal(t, PickupHandedOver, ho.Handover.Order.Status)
	c.ok("POST", "/api/pickups/P-1002/handover", nil).decode(t, &ho)
	require.True(t, ho.Handover.Complete, "everything, no lines given")

	for name, tc := range map[string]struct {
		path   string
		body   any
		status int
		code   string
	}{
		"handed already": {"/api/pickups/o1/handover", nil, http.StatusConflict, "pickup_handed"},
		"cancelled":      {"/api/pickups/P-1003/handover", nil, http.StatusConflict, "pickup_cancelled"},
		"unknown":        {"/api/pickups/P-4040/handover", nil, http.StatusNotFound, "pickup_unknown"},
		"another store":  {"/api/pickups/" + url.PathEscape(wire.PickupQR("S009", "P-1001")) + "/handover", nil, http.StatusUnprocessableEntity, "pickup_other_store"},
		"unknown field":  {"/api/pickups/o1/handover", `{"lines":[],"tip":1}`, http.StatusBadRequest, "bad_json"},
	} {
		t.Run("hand over "+name, func(t *testing.T) {
			r := c.do("POST", tc.path, tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			require.Equal(t, tc.code, r.code())
		})
	}
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o4", Code: "P-1004", Status: "open", Lines: []wire.PickupLine{{SKU: "WATER", Qty: 1000}}})
	r := c.do("POST", "/api/pickups/o4/handover", handoverReq{Lines: []HandoverLine{{SKU: "WATER", Handed: 5000}}})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "pickup_lines", r.code())
	require.Contains(t, string(r.body), "1000 left", "the detail says what is left")
}

func TestAPIPointsAndMemberQR(t *testing.T) {
	f := newAPIFixture(t)
	putMember(t, f.l, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Name: "Han Meimei", Points: 500, OfflineCap: 300})
	c := f.cashier(t)

	s := c.openSale("6907992500133") // milk 12.90
	a := c.ok("POST", "/api/sales/"+s.ID+"/scan", scanReq{Code: wire.MemberQR("M1")})
	var ans saleAnswer
	a.decode(t, &ans)
	require.Equal(t, "member", ans.Kind)
	require.Equal(t, "M1", ans.Sale.Member)

	var mem struct{ Member MemberPoints }
	c.ok("GET", "/api/members/"+url.PathEscape(wire.MemberQR("M1")), nil).decode(t, &mem)
	require.EqualValues(t, 500, mem.Member.Balance)
	require.EqualValues(t, 300, mem.Member.Spendable, "the offline cap bounds it")
	require.Equal(t, "Han Meimei", mem.Member.Name)

	s = c.ok("POST", "/api/sales/"+s.ID+"/points", pointsReq{Points: 290}).sale(t)
	require.EqualValues(t, 1000, s.Due)
	r := c.do("POST", "/api/sales/"+s.ID+"/points", pointsReq{Points: 11})
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "the cap: 290 + 11 > 300")
	require.Equal(t, "points_cap", r.code())
	c.ok("POST", "/api/sales/"+s.ID+"/tenders", Tender{Kind: TenderCash, Amount: s.Due})
	done := c.ok("POST", "/api/sales/"+s.ID+"/complete", nil, "Idempotency-Key", "k1").sale(t)
	require.EqualValues(t, 290, done.PointsSpent)
	require.EqualValues(t, 10, done.PointsEarned)

	c.ok("GET", "/api/members/13800000001", nil).decode(t, &mem)
	require.EqualValues(t, 10, mem.Member.Spendable, "290 of the cap of 300 unconfirmed")
	require.EqualValues(t, 220, mem.Member.Provisional)

	// Returned in full: the 290 points come back as points, the rest in cash.
	var q ReturnQuote
	back := returnReq{Receipt: done.Receipt, Lines: []ReturnLine{{Line: 1, Qty: 1000}}}
	c.ok("POST", "/api/returns/quote", back).decode(t, &q)
	require.Equal(t, ReturnQuote{Total: 1290, Refund: 1000, ReturnPoints: ReturnPoints{TakenBack: 10, GivenBack: 290, PointsValue: 290}}, q)
	back.ManagerPIN, back.Refunds = DemoManagerPIN, []Tender{{Kind: TenderCash, Amount: 1290}}
	r = c.do("POST", "/api/returns", back)
	require.Equal(t, "refund_too_large", r.code())
	back.Refunds = []Tender{{Kind: TenderCash, Amount: q.Refund}}
	var ret struct{ Return Return }
	c.ok("POST", "/api/returns", back).decode(t, &ret)
	require.EqualValues(t, 290, ret.Return.GivenBack)
	c.ok("GET", "/api/members/13800000001", nil).decode(t, &mem)
	require.EqualValues(t, 500, mem.Member.Provisional, "where the member was before the sale")

	s = c.openSale("6921168509256")
	r = c.do("POST", "/api/sales/"+s.ID+"/points", pointsReq{Points: 1})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "points_member", r.code())
	r = c.do("PUT", "/api/sales/"+s.ID+"/member", memberReq{Member: "a member code far too long for HQ to take 0123456789012345678901234567890"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "member_code", r.code())
	c.ok("PUT", "/api/sales/"+s.ID+"/member", memberReq{Member: "13800000001"})
	r = c.do("POST", "/api/sales/"+s.ID+"/points", pointsReq{Points: 0})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "bad_amount", r.code())
	r = c.do("POST", "/api/sales/"+s.ID+"/tenders", Tender{Kind: TenderPoints, Amount: 100, Ref: "points:100"})
	require.Equal(t, "tender_kind", r.code(), "points only through /points")
	r = c.do("GET", "/api/members/13900000000", nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestAPIOnlineReturn(t *testing.T) {
	f := newAPIFixture(t)
	putOrder(t, f.l, wire.PickupOrderChange{OrderID: "o1", Code: "P-1001", Status: "open", Paid: 2580, Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}})
	c := f.cashier(t)
	c.ok("POST", "/api/pickups/o1/handover", nil)
	r := c.do("POST", "/api/returns/online", onlineReturnReq{Order: "P-1001", Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}})
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, "needs_manager", r.code())
	var ret struct{ Return Return }
	c.ok("POST", "/api/returns/online", onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 1290}}}).decode(t, &ret)
	require.Equal(t, "o1", ret.Return.OrderID)
	require.Equal(t, TenderOnline, ret.Return.Refunds[0].Kind)
	kicks, _ := f.hw.counts()
	require.Zero(t, kicks, "no money leaves the drawer")
	r = c.do("POST", "/api/returns/online", onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 2000, Amount: 1290}}})
	require.Equal(t, "return_too_many", r.code())
	r = c.do("POST", "/api/returns/online", onlineReturnReq{Order: "P-1001", ManagerPIN: DemoManagerPIN,
		Lines: []OnlineReturnLine{{SKU: "MILK1L", Qty: 1000, Amount: 9999}}})
	require.Equal(t, "refund_too_large", r.code())
}
