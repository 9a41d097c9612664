package reconcile

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq/sqlitestore"
	"github.com/edgepos/edgepos/internal/bench"
	"github.com/edgepos/edgepos/localdb"
	"github.com/edgepos/edgepos/sync/wire"
)

// TestCompareEventsCountsLostAndDeadLetters stores part of a terminal's
// outbox at HQ and checks that the rest is counted lost, and a rejected
// event a dead letter rather than lost.
func TestCompareEventsCountsLostAndDeadLetters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := localdb.Open(ctx, filepath.Join(dir, "pos.db"), localdb.Options{})
	require.NoError(t, err)
	defer db.Close(ctx)
	require.NoError(t, bench.FillOutbox(ctx, db, "S1", "T1", 10))
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "hq.db"), sqlitestore.Options{})
	require.NoError(t, err)
	defer st.Close(ctx)

	evs, err := db.NextEvents(ctx, 0, 10, 0)
	require.NoError(t, err)
	require.Len(t, evs, 10)
	b := &wire.Batch{V: wire.SchemaVersion, Store: "S1", Terminal: "T1", DBID: db.ID(), SentAt: time.Now().UTC()}
	for _, e := range evs[:7] {
		b.Events = append(b.Events, wire.Event{Seq: e.Seq, ID: e.ID, Type: e.Type, At: e.CreatedAt, Payload: e.Payload})
	}
	_, err = st.IngestBatch(ctx, b, nil, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, db.Reject(ctx, evs[9].Seq, "test"))

	terms := []Terminal{{Store: "S1", DB: db.Read}}
	r, err := CompareEvents(ctx, terms, st)
	require.NoError(t, err)
	require.Equal(t, EventResult{Outbox: 9, AtHQ: 7, Lost: 2, DeadLetters: 1, ByType: map[string]int{wire.EventSaleCompleted: 9}}, r)
	require.False(t, r.OK())
	require.Equal(t, "events=9 at_hq=7 duplicates=0 lost=2 dead_letters=1", r.Line())

	// Sale by sale, the terminal's ledger has no completed sales here (the
	// outbox was filled directly), so every sale HQ holds is unknown.
	s, err := Compare(ctx, terms, st)
	require.NoError(t, err)
	require.Equal(t, 0, s.Sales)
	require.Equal(t, 7, s.Unknown)
	require.False(t, s.OK())
	require.Equal(t, "sales=0 at_hq=0 duplicates=0 lost=0 quarantined=0", s.Line(false))
	require.Equal(t, "sales=0 at_hq=0 duplicates=0 lost=0 conflicts=0", s.Line(true), "pos-demo's line keeps its shape")
}
