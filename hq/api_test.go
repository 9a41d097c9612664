package hq_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/sync/wire"
)

const token = "secret-token"

type apiClient struct {
	tb   testing.TB
	base string
	tok  string
}

func (c apiClient) do(method, path string, body any) (int, []byte) {
	c.tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.tb, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://"+c.base+path, r)
	require.NoError(c.tb, err)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.tb, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(c.tb, err)
	return res.StatusCode, out
}

func errorCode(tb testing.TB, body []byte) string {
	tb.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	require.NoError(tb, json.Unmarshal(body, &e), string(body))
	require.NotEmpty(tb, e.Error.Message)
	return e.Error.Code
}

// feedKeys collects the coupon public keys a store has been sent.
func feedKeys(tb testing.TB, s hq.Store, store string) map[string]ed25519.PublicKey {
	tb.Helper()
	chs, err := s.FeedSince(context.Background(), store, 0, 1000)
	require.NoError(tb, err)
	keys := map[string]ed25519.PublicKey{}
	for _, c := range chs {
		if c.Kind == wire.ChangeCouponKey {
			var k wire.CouponKeyChange
			require.NoError(tb, json.Unmarshal(c.Data, &k))
			keys[k.KeyID] = k.PublicKey
		}
	}
	return keys
}

func TestAPIAuth(t *testing.T) {
	broker := startBroker(t)
	svc, _ := startHQ(t, broker, openStore(t), "hq-test")
	for name, tok := range map[string]string{"no token": "", "wrong token": "nope", "prefix of token": token[:4]} {
		t.Run(name, func(t *testing.T) {
			for _, ep := range []struct{ method, path string }{
				{"GET", "/api/fleet"}, {"GET", "/api/quarantine"}, {"POST", "/api/coupons"}, {"POST", "/api/coupon-keys/rotate"},
				{"PUT", "/api/catalog/products"},
			} {
				status, body := apiClient{t, svc.Addr(), tok}.do(ep.method, ep.path, "{}")
				require.Equal(t, http.StatusUnauthorized, status, ep.path)
				require.Equal(t, hq.CodeUnauthorized, errorCode(t, body))
			}
		})
	}
	status, body := apiClient{t, svc.Addr(), token}.do("GET", "/api/fleet", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	require.JSONEq(t, "[]", string(body))

	status, body = apiClient{t, svc.Addr(), ""}.do("GET", "/healthz", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"mqtt":true`)
	status, body = apiClient{t, svc.Addr(), ""}.do("GET", "/", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "edgepos HQ")
}

func TestIssueCouponsVerifiableWithPublishedKey(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	c := apiClient{t, svc.Addr(), token}
	now := time.Now().UTC()
	status, body := c.do("POST", "/api/coupons", hq.IssueRequest{Kind: wire.CouponAmountOff, Value: 500, MinSpend: 2000, Currency: "CNY",
		Expires: now.Add(24 * time.Hour), Count: 3, Stores: []string{"S1"}})
	require.Equal(t, http.StatusCreated, status, string(body))
	var rep hq.IssueReply
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Len(t, rep.Coupons, 3)
	keys := feedKeys(t, store, "S1")
	require.Contains(t, keys, rep.KeyID, "the signing key was published first")
	for _, ic := range rep.Coupons {
		cp, err := wire.VerifyCoupon(ic.Token, keys, now.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, ic.ID, cp.ID)
		require.Equal(t, int64(500), cp.Value)
		require.Equal(t, []string{"S1"}, cp.Stores)
	}
	status, body = c.do("GET", "/api/coupons/"+rep.Coupons[0].ID, nil)
	require.Equal(t, http.StatusOK, status)
	var info hq.CouponInfo
	require.NoError(t, json.Unmarshal(body, &info))
	require.True(t, info.Issued)

	// Rotation: the new key is in the feed before anything is signed with it.
	status, body = c.do("POST", "/api/coupon-keys/rotate", nil)
	require.Equal(t, http.StatusCreated, status, string(body))
	var rot struct {
		KeyID string `json:"key_id"`
	}
	require.NoError(t, json.Unmarshal(body, &rot))
	require.NotEqual(t, rep.KeyID, rot.KeyID)
	status, body = c.do("POST", "/api/coupons", hq.IssueRequest{Kind: wire.CouponPercentOff, Value: 1000, Currency: "CNY", Expires: now.Add(time.Hour), Member: "M1"})
	require.Equal(t, http.StatusCreated, status, string(body))
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, rot.KeyID, rep.KeyID)
	keys = feedKeys(t, store, "S9")
	_, err := wire.VerifyCoupon(rep.Coupons[0].Token, keys, now.Add(time.Minute))
	require.NoError(t, err)
	lc, err := store.LatestChange(context.Background(), "S9", wire.ChangeCoupon, rep.Coupons[0].ID)
	require.NoError(t, err, "a member's coupon is in the feed")
	require.Equal(t, hq.AllStores, lc.Store)

	// Revoke.
	status, body = c.do("POST", "/api/coupons/"+rep.Coupons[0].ID+"/revoke", map[string]string{"reason": "fraud"})
	require.Equal(t, http.StatusCreated, status, string(body))
	lc, err = store.LatestChange(context.Background(), "S1", wire.ChangeRevocation, rep.Coupons[0].ID)
	require.NoError(t, err)
	require.Contains(t, string(lc.Data), "fraud")

	bad := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"revoke unknown coupon", "POST", "/api/coupons/0190f0a0-0000-7000-8000-000000000000/revoke", nil, 404, hq.CodeNotFound},
		{"revoke bad id", "POST", "/api/coupons/xyz/revoke", nil, 400, hq.CodeBadRequest},
		{"unknown coupon", "GET", "/api/coupons/0190f0a0-0000-7000-8000-000000000000", nil, 404, hq.CodeNotFound},
		{"issue bad kind", "POST", "/api/coupons", hq.IssueRequest{Kind: "free", Value: 1, Currency: "CNY", Expires: now.Add(time.Hour)}, 400, hq.CodeBadRequest},
		{"issue expired window", "POST", "/api/coupons", hq.IssueRequest{Kind: "amount", Value: 1, Currency: "CNY", Expires: now.Add(-time.Hour)}, 400, hq.CodeBadRequest},
		{"issue too many", "POST", "/api/coupons", hq.IssueRequest{Kind: "amount", Value: 1, Currency: "CNY", Expires: now.Add(time.Hour), Count: 100000}, 400, hq.CodeBadRequest},
		{"issue unknown field", "POST", "/api/coupons", `{"kind":"amount","bogus":1}`, 400, hq.CodeBadRequest},
		{"issue not JSON", "POST", "/api/coupons", `{{`, 400, hq.CodeBadRequest},
		{"issue empty body", "POST", "/api/coupons", "", 400, hq.CodeBadRequest},
		{"sales bad day", "GET", "/api/sales?day=yesterday", nil, 400, hq.CodeBadRequest},
		{"quarantine bad limit", "GET", "/api/quarantine?limit=-1", nil, 400, hq.CodeBadRequest},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			status, body := c.do(b.method, b.path, b.body)
			require.Equal(t, b.status, status, string(body))
			require.Equal(t, b.code, errorCode(t, body))
		})
	}
}

func TestCatalogChangesPublishedToStores(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-test")
	c := apiClient{t, svc.Addr(), token}
	term := newTerminal(t, broker, "S1", "T1")
	term.hello(0, 0, time.Now().UTC()) // HQ now knows S1
	a := term.ack()
	cur := drainChanges(t, term, a.FeedVersion)

	status, body := c.do("PUT", "/api/catalog/products?store=S1", []wire.ProductChange{{SKU: "A", Name: "Apple", Unit: "kg", TaxClass: "std", Price: 1299, Active: true}})
	require.Equal(t, http.StatusOK, status, string(body))
	ch := nextChanges(t, term)
	require.Equal(t, cur, ch.After, "After is the store's previous version: no gap")
	require.Equal(t, wire.ChangeProduct, ch.Changes[0].Kind)
	require.Equal(t, "A", ch.Changes[0].Key)
	cur = ch.Latest

	status, body = c.do("PUT", "/api/tax-classes", map[string]any{"items": []wire.TaxClassChange{{Code: "std", Name: "Standard", RateBP: 1300}}})
	require.Equal(t, http.StatusOK, status, string(body))
	ch = nextChanges(t, term)
	require.Equal(t, cur, ch.After)
	require.Equal(t, wire.ChangeTaxClass, ch.Changes[0].Kind)

	status, _ = c.do("PUT", "/api/members", []wire.MemberChange{{MemberID: "M1", Points: 10, OfflineCap: 5}})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, wire.ChangeMember, nextChanges(t, term).Changes[0].Kind)
	status, _ = c.do("PUT", "/api/stores/S1/config", wire.StoreConfigChange{PointsPerUnit: 1, PointValue: 1})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, wire.ChangeStoreConfig, nextChanges(t, term).Changes[0].Kind)

	status, body = c.do("POST", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Code: "1234", Paid: 500, Lines: []wire.PickupLine{{SKU: "A", Qty: 1000}}})
	require.Equal(t, http.StatusCreated, status, string(body))
	var po struct {
		OrderID string `json:"order_id"`
	}
	require.NoError(t, json.Unmarshal(body, &po))
	require.Equal(t, wire.ChangePickupOrder, nextChanges(t, term).Changes[0].Kind)
	status, _ = c.do("POST", "/api/stores/S1/pickup-orders/"+po.OrderID+"/cancel", nil)
	require.Equal(t, http.StatusCreated, status)
	require.Contains(t, string(nextChanges(t, term).Changes[0].Data), "cancelled")
	status, body = c.do("POST", "/api/stores/S1/pickup-orders/"+po.OrderID+"/cancel", nil)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, hq.CodeConflict, errorCode(t, body))

	bad := []struct {
		name, method, path string
		body               any
	}{
		{"product without sku", "PUT", "/api/catalog/products", []wire.ProductChange{{Unit: "each"}}},
		{"product bad unit", "PUT", "/api/catalog/products", []wire.ProductChange{{SKU: "A", Unit: "box"}}},
		{"product negative price", "PUT", "/api/catalog/products", []wire.ProductChange{{SKU: "A", Unit: "each", Price: -1}}},
		{"no products", "PUT", "/api/catalog/products", []wire.ProductChange{}},
		{"bad target store", "PUT", "/api/catalog/products?store=a/b", []wire.ProductChange{{SKU: "A", Unit: "each"}}},
		{"tax rate too high", "PUT", "/api/tax-classes", []wire.TaxClassChange{{Code: "x", RateBP: 10001}}},
		{"member without id", "PUT", "/api/members", []wire.MemberChange{{Points: 1}}},
		{"config unknown field", "PUT", "/api/stores/S1/config", `{"bogus":1}`},
		{"pickup without lines", "POST", "/api/stores/S1/pickup-orders", wire.PickupOrderChange{Code: "1"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			status, body := c.do(b.method, b.path, b.body)
			require.Equal(t, http.StatusBadRequest, status, string(body))
			require.Equal(t, hq.CodeBadRequest, errorCode(t, body))
		})
	}
	status, _ = c.do("POST", "/api/stores/S1/pickup-orders/nope/cancel", nil)
	require.Equal(t, http.StatusNotFound, status)
}

// drainChanges reads the hello's resend up to version v and returns v.
func drainChanges(tb testing.TB, t *terminal, v int64) int64 {
	tb.Helper()
	for v > 0 {
		c := nextChanges(tb, t)
		if c.Changes[len(c.Changes)-1].Version >= v {
			break
		}
	}
	return v
}

func nextChanges(tb testing.TB, t *terminal) *wire.Changes {
	tb.Helper()
	select {
	case c := <-t.changes:
		return c
	case <-time.After(wait):
		tb.Fatal("no change-feed message")
		return nil
	}
}

func TestCouponKeyKeptAcrossRestarts(t *testing.T) {
	broker := startBroker(t)
	store := openStore(t)
	dir := t.TempDir()
	svc, stop := startHQ(t, broker, store, "hq-test", func(o *hq.Options) { o.DataDir = dir })
	keys := svc.CouponKeys()
	require.Len(t, keys, 1)
	ents, err := os.ReadDir(filepath.Join(dir, "coupon-keys"))
	require.NoError(t, err)
	for _, e := range ents {
		fi, err := e.Info()
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), e.Name())
	}
	latest, err := store.FeedLatest(context.Background(), "S1")
	require.NoError(t, err)
	stop()

	svc, _ = startHQ(t, broker, store, "hq-test", func(o *hq.Options) { o.DataDir = dir })
	require.Equal(t, keys, svc.CouponKeys())
	again, err := store.FeedLatest(context.Background(), "S1")
	require.NoError(t, err)
	require.Equal(t, latest, again, "a known key is not published twice")
}
