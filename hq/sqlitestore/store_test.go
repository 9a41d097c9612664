package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/storetest"
	"github.com/edgepos/edgepos/sync/wire"
)

func TestSuite(t *testing.T) {
	storetest.RunSuite(t, func(t *testing.T) hq.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "hq.db"), Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	db := storetest.NewID(t)
	_, err = s.IngestBatch(ctx, storetest.Batch("S1", "T1", db, storetest.Stock(t, 1, "A", 1, 1, storetest.T0)), nil, storetest.T0)
	require.NoError(t, err)
	require.NoError(t, s.Close(ctx))
	s, err = Open(ctx, path, Options{})
	require.NoError(t, err)
	defer s.Close(ctx)
	f, err := s.Fleet(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), f[0].AckedSeq)
}

// BenchmarkIngest is HQ's store alone on SQLite: 20k sales in batches of 500.
func BenchmarkIngest(b *testing.B) {
	storetest.BenchIngest(b, func(b *testing.B) hq.Store {
		s, err := Open(context.Background(), filepath.Join(b.TempDir(), "hq.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 20_000, 500)
}

func TestCheckpointsInTheBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hq.db")
	s, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer s.Close(ctx)
	before, err := os.Stat(path)
	require.NoError(t, err)
	// About 1 MB of WAL: far below the writer's own backstop, so only the
	// checkpointer copies it into the database file.
	db := storetest.NewID(t)
	var evs []wire.Event
	for i := int64(1); i <= 2000; i++ {
		evs = append(evs, storetest.Stock(t, i, fmt.Sprintf("SKU-%d", i), i, 1, storetest.T0))
	}
	_, err = s.IngestBatch(ctx, storetest.Batch("S1", "T1", db, evs...), nil, storetest.T0)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := os.Stat(path)
		return err == nil && st.Size() > before.Size()+512<<10
	}, 10*time.Second, 20*time.Millisecond, "the WAL is copied back without another commit")
}
