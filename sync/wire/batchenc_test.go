package wire

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestEncodeBatchMatchesEncode(t *testing.T) {
	at := time.Date(2026, 11, 23, 4, 5, 6, 123456789, time.UTC)
	for _, n := range []int{1, 3, 400} { // 400 events crosses the gzip threshold
		b := &Batch{V: SchemaVersion, Store: "S001", Terminal: "T1", DBID: uuid.NewString(), SentAt: at}
		for i := 1; i <= n; i++ {
			b.Events = append(b.Events, Event{Seq: int64(i), ID: uuid.NewString(), Type: EventSaleCompleted, At: at,
				Payload: json.RawMessage(fmt.Sprintf(`{"sale_id":"s%d","note":"caf\u00e9 \"q\" <b>"}`, i))})
		}
		fast, err := EncodeBatch(b)
		require.NoError(t, err)
		slow, err := Encode(b)
		require.NoError(t, err)
		gotFast, err := DecodeBatch(fast)
		require.NoError(t, err)
		gotSlow, err := DecodeBatch(slow)
		require.NoError(t, err)
		require.Len(t, gotFast.Events, n)
		for i := range gotSlow.Events {
			require.JSONEq(t, string(gotSlow.Events[i].Payload), string(gotFast.Events[i].Payload))
			gotSlow.Events[i].Payload, gotFast.Events[i].Payload = nil, nil
		}
		require.Equal(t, gotSlow, gotFast, "n=%d", n)
	}
}

func TestEncodeBatchEscapesOddStrings(t *testing.T) {
	b := &Batch{V: SchemaVersion, Store: "S\"1", Terminal: "T1\n", DBID: "x", SentAt: time.Unix(0, 0).UTC(),
		Events: []Event{{Seq: 1, ID: "id", Type: "a.b", At: time.Unix(0, 0).UTC(), Payload: json.RawMessage(`{}`)}}}
	fast, err := EncodeBatch(b)
	require.NoError(t, err)
	var back Batch
	require.NoError(t, json.Unmarshal(fast, &back))
	require.Equal(t, "S\"1", back.Store)
	require.Equal(t, "T1\n", back.Terminal)
}

func TestEncodeBatchByteIdenticalForPlainPayloads(t *testing.T) {
	at := time.Date(2026, 11, 23, 4, 5, 6, 0, time.UTC)
	b := &Batch{V: SchemaVersion, Store: "S001", Terminal: "T1", DBID: uuid.NewString(), SentAt: at,
		Events: []Event{{Seq: 7, ID: uuid.NewString(), Type: "sale.completed", At: at, Payload: json.RawMessage(`{"a":1,"b":"x"}`)}}}
	fast, err := EncodeBatch(b)
	require.NoError(t, err)
	slow, err := Encode(b)
	require.NoError(t, err)
	require.Equal(t, string(slow), string(fast))
}
