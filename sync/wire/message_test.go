package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 23, 9, 30, 0, 123456789, time.UTC)

func newID(tb testing.TB) string {
	tb.Helper()
	return uuid.Must(uuid.NewV7()).String()
}

func sampleBatch(tb testing.TB, n int) Batch {
	tb.Helper()
	b := Batch{V: SchemaVersion, Store: "S1", Terminal: "T1", DBID: newID(tb), SentAt: t0}
	for i := 1; i <= n; i++ {
		p, err := json.Marshal(StockLevel{SKU: fmt.Sprintf("SKU-%d", i), OnHand: int64(i) * 1000, Delta: -1000, Reason: "sale", At: t0})
		require.NoError(tb, err)
		b.Events = append(b.Events, Event{Seq: int64(i), ID: newID(tb), Type: EventStockLevel, At: t0, Payload: p})
	}
	return b
}

func TestBatchRoundTrip(t *testing.T) {
	for _, n := range []int{1, 10, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := sampleBatch(t, n)
			data, err := Encode(in)
			require.NoError(t, err)
			if n == 500 {
				require.Equal(t, []byte{0x1f, 0x8b}, data[:2], "large batches are gzipped")
			}
			out, err := DecodeBatch(data)
			require.NoError(t, err)
			require.Equal(t, in.Store, out.Store)
			require.Equal(t, in.DBID, out.DBID)
			require.True(t, in.SentAt.Equal(out.SentAt))
			require.Len(t, out.Events, n)
			for i := range in.Events {
				require.Equal(t, in.Events[i].Seq, out.Events[i].Seq)
				require.Equal(t, in.Events[i].ID, out.Events[i].ID)
				require.JSONEq(t, string(in.Events[i].Payload), string(out.Events[i].Payload))
				require.True(t, in.Events[i].At.Equal(out.Events[i].At), "nanoseconds survive")
			}
		})
	}
}

func TestHelloAckChangesStatusRoundTrip(t *testing.T) {
	h := Hello{V: 1, Store: "S1", Terminal: "T1", AgentVersion: "1.2.3", DBID: newID(t), LastAckedSeq: 4, FirstSeq: 5, LastSeq: 9, FeedVersion: 7, Backlog: 5, OldestUnsync: t0, Clock: t0}
	data, err := Encode(h)
	require.NoError(t, err)
	gh, err := DecodeHello(data)
	require.NoError(t, err)
	require.Equal(t, h.LastSeq, gh.LastSeq)
	require.True(t, h.Clock.Equal(gh.Clock))

	a := Ack{V: 1, Store: "S1", Terminal: "T1", DBID: h.DBID, Through: 9, Rebase: 3, Rejected: []Rejection{{Seq: 2, ID: newID(t), Reason: "bad"}}, FeedVersion: 7, At: t0}
	data, err = Encode(a)
	require.NoError(t, err)
	ga, err := DecodeAck(data)
	require.NoError(t, err)
	require.Equal(t, a.Rejected, ga.Rejected)
	require.Equal(t, int64(3), ga.Rebase)

	c := Changes{V: 1, Store: "S1", After: 2, Latest: 9, At: t0, Changes: []Change{
		{Version: 3, Kind: ChangeProduct, Key: "A", Op: OpUpsert, Data: json.RawMessage(`{"sku":"A"}`), At: t0},
		{Version: 9, Kind: ChangeProduct, Key: "B", Op: OpDelete, At: t0},
	}}
	data, err = Encode(c)
	require.NoError(t, err)
	gc, err := DecodeChanges(data)
	require.NoError(t, err)
	require.Len(t, gc.Changes, 2)
	require.Equal(t, int64(2), gc.After)

	for _, raw := range []string{"online", "offline"} {
		s, err := DecodeStatus([]byte(raw))
		require.NoError(t, err)
		require.Equal(t, raw, s.State)
	}
	data, err = Encode(Status{V: 1, Store: "S1", Terminal: "T1", State: "offline"})
	require.NoError(t, err)
	s, err := DecodeStatus(data)
	require.NoError(t, err)
	require.Equal(t, "offline", s.State)
}

func gz(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

func TestDecodeBatchRejects(t *testing.T) {
	good, err := json.Marshal(sampleBatch(t, 3))
	require.NoError(t, err)
	mutate := func(f func(b *Batch)) []byte {
		b := sampleBatch(t, 3)
		f(&b)
		out, err := json.Marshal(b)
		require.NoError(t, err)
		return out
	}
	bomb := gz(t, bytes.Repeat([]byte(" "), MaxDecodedBytes+10))
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"non-JSON", []byte("hello there"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"truncated", good[:len(good)/2], ErrMalformed},
		{"oversized", append(good, bytes.Repeat([]byte(" "), MaxMessageBytes)...), ErrTooLarge},
		{"gzip bomb", bomb, ErrTooLarge},
		{"broken gzip", []byte{0x1f, 0x8b, 0, 1, 2}, ErrMalformed},
		{"wrong version", mutate(func(b *Batch) { b.V = 2 }), ErrVersion},
		{"unknown field", []byte(strings.Replace(string(good), `"v":1`, `"v":1,"x":1`, 1)), ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), []byte(`{}`)...), ErrMalformed},
		{"bad store id", mutate(func(b *Batch) { b.Store = "a/b" }), ErrInvalid},
		{"bad terminal id", mutate(func(b *Batch) { b.Terminal = "" }), ErrInvalid},
		{"bad db id", mutate(func(b *Batch) { b.DBID = "x" }), ErrInvalid},
		{"no events", mutate(func(b *Batch) { b.Events = nil }), ErrInvalid},
		{"seq not increasing", mutate(func(b *Batch) { b.Events[2].Seq = 1 }), ErrInvalid},
		{"zero seq", mutate(func(b *Batch) { b.Events[0].Seq = 0 }), ErrInvalid},
		{"bad event id", mutate(func(b *Batch) { b.Events[0].ID = "nope" }), ErrInvalid},
		{"bad event type", mutate(func(b *Batch) { b.Events[0].Type = "Sale" }), ErrInvalid},
		{"missing time", mutate(func(b *Batch) { b.Events[0].At = time.Time{} }), ErrInvalid},
		{"payload not object", mutate(func(b *Batch) { b.Events[0].Payload = json.RawMessage(`[1]`) }), ErrInvalid},
		// Stricter than encoding/json v1, which took all three.
		{"member name in another case", []byte(strings.Replace(string(good), `"store":`, `"Store":`, 1)), ErrMalformed},
		{"duplicate member", []byte(strings.Replace(string(good), `"v":1`, `"v":1,"v":1`, 1)), ErrMalformed},
		{"invalid UTF-8", []byte(strings.Replace(string(good), `"store":"S1"`, "\"store\":\"S\xff\"", 1)), ErrMalformed},
		{"duplicate member in a payload", mutate(func(b *Batch) { b.Events[0].Payload = json.RawMessage(`{"a":1,"a":2}`) }), ErrMalformed},
		{"trailing data in gzip", gz(t, append(append([]byte{}, good...), '1')), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeBatch(tc.data)
			require.Error(t, err)
			require.ErrorIs(t, err, tc.want)
		})
	}
	t.Run("too many events", func(t *testing.T) {
		b := sampleBatch(t, 1)
		for i := 2; i <= MaxBatchEvents+1; i++ {
			b.Events = append(b.Events, Event{Seq: int64(i), ID: b.Events[0].ID, Type: "x.y", At: t0, Payload: json.RawMessage(`{}`)})
		}
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		_, err = DecodeBatch(gz(t, raw))
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("validation error names the field", func(t *testing.T) {
		_, err := DecodeBatch(mutate(func(b *Batch) { b.Events[1].ID = "nope" }))
		var ve *ValidationError
		require.True(t, errors.As(err, &ve))
		require.Equal(t, "events[1].id", ve.Field)
	})
}

func TestDecodeHelloRejects(t *testing.T) {
	h := func(f func(h *Hello)) []byte {
		x := Hello{V: 1, Store: "S1", Terminal: "T1", DBID: newID(t), Clock: t0}
		f(&x)
		b, err := json.Marshal(x)
		require.NoError(t, err)
		return b
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"non-JSON", []byte("{"), ErrMalformed},
		{"wrong version", h(func(h *Hello) { h.V = 0 }), ErrVersion},
		{"negative cursor", h(func(h *Hello) { h.LastSeq = -1 }), ErrInvalid},
		{"bad db id", h(func(h *Hello) { h.DBID = "" }), ErrInvalid},
		{"long agent version", h(func(h *Hello) { h.AgentVersion = strings.Repeat("x", 65) }), ErrInvalid},
		{"bad store", h(func(h *Hello) { h.Store = "+" }), ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeHello(tc.data)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestDecodeChangesRejects(t *testing.T) {
	c := func(f func(c *Changes)) []byte {
		x := Changes{V: 1, Store: "S1", Changes: []Change{{Version: 1, Kind: "product", Key: "A", Op: OpUpsert}, {Version: 2, Kind: "product", Key: "B", Op: OpDelete}}}
		f(&x)
		b, err := json.Marshal(x)
		require.NoError(t, err)
		return b
	}
	for name, data := range map[string][]byte{
		"versions not increasing": c(func(c *Changes) { c.Changes[1].Version = 1 }),
		"bad op":                  c(func(c *Changes) { c.Changes[0].Op = "merge" }),
		"missing key":             c(func(c *Changes) { c.Changes[0].Key = "" }),
		"bad store":               c(func(c *Changes) { c.Store = "" }),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeChanges(data)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestValidatePayload(t *testing.T) {
	sale := SaleCompleted{SaleID: "s1", Receipt: "T1-000001", BusinessDay: "2026-11-23", CompletedAt: t0, Currency: "CNY", Total: 100,
		Lines: []SaleLine{{Line: 1, SKU: "A", Qty: 1000, UnitPrice: 100, Total: 100}}}
	ok, err := json.Marshal(sale)
	require.NoError(t, err)
	require.NoError(t, ValidatePayload(&Event{Type: EventSaleCompleted, Payload: ok}))
	require.NoError(t, ValidatePayload(&Event{Type: "future.thing", Payload: json.RawMessage(`{"anything":1}`)}), "unknown types pass")

	bad := map[string]Event{
		"sale unknown field":         {Type: EventSaleCompleted, Payload: json.RawMessage(`{"sale_id":"s","zzz":1}`)},
		"sale without lines":         {Type: EventSaleCompleted, Payload: json.RawMessage(`{"sale_id":"s","receipt":"r","business_day":"2026-11-23"}`)},
		"sale bad business day":      {Type: EventSaleCompleted, Payload: []byte(strings.Replace(string(ok), "2026-11-23", "23/11/2026", 1))},
		"redemption no coupon":       {Type: EventCouponRedeemed, Payload: json.RawMessage(`{"sale_id":"s"}`)},
		"stock without sku":          {Type: EventStockLevel, Payload: json.RawMessage(`{"on_hand":1}`)},
		"void wrong field type":      {Type: EventSaleVoided, Payload: json.RawMessage(`{"total":"ten"}`)},
		"return wrong type":          {Type: EventReturnCompleted, Payload: json.RawMessage(`{"lines":{}}`)},
		"pickup unknown field":       {Type: EventPickupFulfilled, Payload: json.RawMessage(`{"x":1}`)},
		"sale field in another case": {Type: EventSaleCompleted, Payload: []byte(strings.Replace(string(ok), `"sale_id"`, `"SALE_ID"`, 1))},
		"sale duplicate field":       {Type: EventSaleCompleted, Payload: []byte(strings.Replace(string(ok), `"total":100`, `"total":100,"total":1`, 1))},
	}
	for name, e := range bad {
		t.Run(name, func(t *testing.T) {
			e := e
			require.Error(t, ValidatePayload(&e))
		})
	}
}
