package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/storetest"
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
