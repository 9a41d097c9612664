package hq_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	st "github.com/edgepos/edgepos/hq/storetest"
	"github.com/edgepos/edgepos/sync/wire"
)

// nextChangeOf reads change-feed messages until one carries kind/key at a
// version newer than the last it returned, as a store applies the feed:
// a redelivered entry is skipped.
func nextChangeOf(tb testing.TB, t *terminal, kind, key string) wire.Change {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case c := <-t.changes:
			for _, ch := range c.Changes {
				if ch.Kind == kind && ch.Key == key && ch.Version > t.applied {
					t.applied = ch.Version
					return ch
				}
			}
		case <-deadline:
			tb.Fatalf("no %s %s change within %s", kind, key, wait)
			return wire.Change{}
		}
	}
}

func TestAPIMembersAndPoints(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	c := apiClient{t, svc.Addr(), token}
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	term.ack()

	status, body := c.do("PUT", "/api/members", []wire.MemberChange{{MemberID: "M1", Phone: "13800000001", Points: 100, OfflineCap: 50}})
	require.Equal(t, http.StatusOK, status, string(body))
	var m wire.MemberChange
	require.NoError(t, json.Unmarshal(nextChangeOf(t, term, wire.ChangeMember, "M1").Data, &m))
	require.Equal(t, wire.MemberChange{MemberID: "M1", Phone: "13800000001", Points: 100, OfflineCap: 50}, m)

	// A store's sale moves the balance; the new balance comes down the feed.
	term.send(term.batch(st.MemberSale(t, 1, "M1", 5000, 50, 30, false)))
	require.EqualValues(t, 1, term.ack().Through)
	require.NoError(t, json.Unmarshal(nextChangeOf(t, term, wire.ChangeMember, "M1").Data, &m))
	require.EqualValues(t, 120, m.Points)

	// The online channel spends through the API.
	status, body = c.do("POST", "/api/members/M1/points", hq.PointsRequest{Points: -20, Ref: "web-order-9", Reason: "online redemption"})
	require.Equal(t, http.StatusCreated, status, string(body))
	require.NoError(t, json.Unmarshal(nextChangeOf(t, term, wire.ChangeMember, "M1").Data, &m))
	require.EqualValues(t, 100, m.Points)
	status, body = c.do("GET", "/api/members/M1", nil)
	require.Equal(t, http.StatusOK, status)
	var info hq.MemberInfo
	require.NoError(t, json.Unmarshal(body, &info))
	require.EqualValues(t, 100, info.Balance)
	require.Equal(t, "EPM1:M1", info.QR)
	require.Len(t, info.Ledger, 4)

	bad := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"member id with a space", "PUT", "/api/members", []wire.MemberChange{{MemberID: "M 1"}}, 400, hq.CodeBadRequest},
		{"negative cap", "PUT", "/api/members", []wire.MemberChange{{MemberID: "M2", OfflineCap: -1}}, 400, hq.CodeBadRequest},
		{"phone too long", "PUT", "/api/members", []wire.MemberChange{{MemberID: "M2", Phone: strings.Repeat("1", 40)}}, 400, hq.CodeBadRequest},
		{"points of an existing member", "PUT", "/api/members", []wire.MemberChange{{MemberID: "M1", Points: 5}}, 409, hq.CodeConflict},
		{"zero points", "POST", "/api/members/M1/points", hq.PointsRequest{Ref: "x"}, 400, hq.CodeBadRequest},
		{"no ref", "POST", "/api/members/M1/points", hq.PointsRequest{Points: 1}, 400, hq.CodeBadRequest},
		{"overdraft online", "POST", "/api/members/M1/points", hq.PointsRequest{Points: -101, Ref: "y"}, 409, hq.CodeConflict},
		{"unknown member", "POST", "/api/members/nobody/points", hq.PointsRequest{Points: 1, Ref: "z"}, 404, hq.CodeNotFound},
		{"unknown field", "POST", "/api/members/M1/points", `{"points":1,"ref":"a","bonus":2}`, 400, hq.CodeBadRequest},
		{"get unknown member", "GET", "/api/members/nobody", nil, 404, hq.CodeNotFound},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			status, body := c.do(b.method, b.path, b.body)
			require.Equal(t, b.status, status, string(body))
			require.Equal(t, b.code, errorCode(t, body))
		})
	}
	status, body = c.do("GET", "/api/points/conflicts", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, "[]", string(body))
}

func TestAPIPickupOrders(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	c := apiClient{t, svc.Addr(), token}
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC())
	term.ack()

	status, body := c.do("POST", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Customer: "Li Lei", Phone: "13800000001", Paid: 2580,
		Lines: []wire.PickupLine{{SKU: "MILK1L", Qty: 2000}}})
	require.Equal(t, http.StatusCreated, status, string(body))
	var po struct {
		OrderID string `json:"order_id"`
		Code    string `json:"code"`
		QR      string `json:"qr"`
	}
	require.NoError(t, json.Unmarshal(body, &po))
	require.Len(t, po.Code, 8, "HQ makes a code when none is given")
	require.Equal(t, wire.PickupQR("S1", po.Code), po.QR)
	nextChangeOf(t, term, wire.ChangePickupOrder, po.OrderID)

	// The store hands it over; the state comes back down for its other
	// terminals, and a cancel is refused.
	term.send(term.batch(st.Handover(t, 1, po.OrderID, po.Code, true, true, wire.PickupLine{SKU: "MILK1L", Qty: 2000, Handed: 2000})))
	term.ack()
	var o wire.PickupOrderChange
	require.NoError(t, json.Unmarshal(nextChangeOf(t, term, wire.ChangePickupOrder, po.OrderID).Data, &o))
	require.Equal(t, hq.PickupFulfilled, o.Status)
	status, body = c.do("POST", "/api/stores/S1/pickup-orders/"+po.OrderID+"/cancel", nil)
	require.Equal(t, http.StatusConflict, status, string(body))
	status, body = c.do("GET", "/api/stores/S1/pickup-orders/"+po.OrderID, nil)
	require.Equal(t, http.StatusOK, status)
	var info hq.PickupInfo
	require.NoError(t, json.Unmarshal(body, &info))
	require.Equal(t, hq.PickupFulfilled, info.Status)
	require.Len(t, info.Handovers, 1)

	// Cancelled at HQ, handed over by a store that had not heard.
	status, body = c.do("POST", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{OrderID: "web-2", Code: "P-2002", Paid: 100, Lines: []wire.PickupLine{{SKU: "TEA500", Qty: 1000}}})
	require.Equal(t, http.StatusCreated, status, string(body))
	status, _ = c.do("POST", "/api/stores/S1/pickup-orders/web-2/cancel", nil)
	require.Equal(t, http.StatusCreated, status)
	term.send(term.batch(st.Handover(t, 2, "web-2", "P-2002", true, true, wire.PickupLine{SKU: "TEA500", Qty: 1000, Handed: 1000})))
	term.ack()
	status, body = c.do("GET", "/api/pickup-orders/conflicts", nil)
	require.Equal(t, http.StatusOK, status)
	var conf []hq.PickupHandover
	require.NoError(t, json.Unmarshal(body, &conf))
	require.Len(t, conf, 1)
	require.Equal(t, hq.ConflictCancelled, conf[0].Reason)
	require.False(t, conf[0].CancelledAt.IsZero())
	status, body = c.do("GET", "/api/stores/S1/pickup-orders?status=cancelled", nil)
	require.Equal(t, http.StatusOK, status)
	var list []hq.PickupInfo
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list, 1)

	bad := []struct {
		name, path string
		body       any
		status     int
		code       string
	}{
		{"code in use", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Code: "P-2002", Lines: []wire.PickupLine{{SKU: "A", Qty: 1}}}, 409, hq.CodeConflict},
		{"code too short", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Code: "12", Lines: []wire.PickupLine{{SKU: "A", Qty: 1}}}, 400, hq.CodeBadRequest},
		{"bad order id", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{OrderID: "a/b", Lines: []wire.PickupLine{{SKU: "A", Qty: 1}}}, 400, hq.CodeBadRequest},
		{"sku twice", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Lines: []wire.PickupLine{{SKU: "A", Qty: 1}, {SKU: "A", Qty: 1}}}, 400, hq.CodeBadRequest},
		{"handed already", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Lines: []wire.PickupLine{{SKU: "A", Qty: 1, Handed: 1}}}, 400, hq.CodeBadRequest},
		{"zero qty", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Lines: []wire.PickupLine{{SKU: "A"}}}, 400, hq.CodeBadRequest},
		{"not open", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Status: "fulfilled", Lines: []wire.PickupLine{{SKU: "A", Qty: 1}}}, 400, hq.CodeBadRequest},
		{"bad store", "/api/stores/a%2Fb/pickup-orders", wire.PickupOrderChange{Lines: []wire.PickupLine{{SKU: "A", Qty: 1}}}, 400, hq.CodeBadRequest},
		{"cancel unknown", "/api/stores/S1/pickup-orders/nope/cancel", nil, 404, hq.CodeNotFound},
		{"cancel of another store", "/api/stores/S2/pickup-orders/web-2/cancel", nil, 404, hq.CodeNotFound},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			status, body := c.do("POST", b.path, b.body)
			require.Equal(t, b.status, status, string(body))
			require.Equal(t, b.code, errorCode(t, body))
		})
	}
	status, body = c.do("GET", "/api/stores/S1/pickup-orders?status=bogus", nil)
	require.Equal(t, http.StatusBadRequest, status, string(body))
}

func TestAPICouponReportJSONAndCSV(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	c := apiClient{t, svc.Addr(), token}
	now := time.Now().UTC()
	status, body := c.do("POST", "/api/coupons", hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 500, Currency: "CNY", Member: "M1", Expires: now.Add(24 * time.Hour)})
	require.Equal(t, http.StatusCreated, status, string(body))
	var rep hq.IssueReply
	require.NoError(t, json.Unmarshal(body, &rep))
	id := rep.Coupons[0].ID
	a := newTerminal(t, broker, "S1", "T1")
	a.send(a.batch(st.Redeem(t, 1, id, "T1-000001", now.Add(-time.Minute))))
	a.ack()
	b := newTerminal(t, broker, "S2", "T1")
	b.send(b.batch(st.Redeem(t, 1, id, "T1-000042", now)))
	b.ack()
	day := now.Format(time.DateOnly)

	status, body = c.do("GET", "/api/stores/S2/coupon-report?day="+day, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var r hq.CouponReport
	require.NoError(t, json.Unmarshal(body, &r))
	require.Equal(t, 1, r.Conflicts)
	require.Equal(t, "T1-000001", r.Rows[0].WinnerReceipt)

	req, err := http.NewRequest("GET", "http://"+svc.Addr()+"/api/stores/S2/coupon-report?day="+day, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/csv")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	recs, err := csv.NewReader(res.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, hq.CouponReportColumns, recs[0])
	require.Len(t, recs, 2)
	col := func(name string) string {
		for i, c := range hq.CouponReportColumns {
			if c == name {
				return recs[1][i]
			}
		}
		return ""
	}
	require.Equal(t, "T1-000042", col("receipt"))
	require.Equal(t, hq.RedemptionConflict, col("status"))
	require.Equal(t, "S1", col("winner_store"))
	require.Equal(t, "T1-000001", col("winner_receipt"))
	require.Equal(t, "500", col("amount"))

	status, body = c.do("GET", "/api/stores/S1/coupon-report?day="+day+"&format=csv", nil)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(string(body), strings.Join(hq.CouponReportColumns, ",")+"\n"), string(body))

	status, body = c.do("GET", "/api/coupons?state=redeemed", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var ledger []hq.CouponState
	require.NoError(t, json.Unmarshal(body, &ledger))
	require.Len(t, ledger, 1)
	require.Equal(t, "S1", ledger[0].Winner.Store)
	require.Equal(t, 1, ledger[0].Conflicts)

	for _, path := range []string{"/api/stores/S1/coupon-report", "/api/stores/S1/coupon-report?day=23.11.2026", "/api/stores/S1/coupon-report?day=" + day + "&format=xml",
		"/api/coupons?state=lost", "/api/online-refunds?day=x", "/api/online-refunds?store=a%20b"} {
		status, body := c.do("GET", path, nil)
		require.Equal(t, http.StatusBadRequest, status, path+": "+string(body))
		require.Equal(t, hq.CodeBadRequest, errorCode(t, body))
	}
	status, body = c.do("GET", "/api/online-refunds?store=S1", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, "[]", string(body))
}
