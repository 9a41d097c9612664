package pgstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/pgstore"
	"github.com/edgepos/edgepos/hq/pgstore/pgtest"
	"github.com/edgepos/edgepos/hq/storetest"
)

func openTest(t *testing.T) *pgstore.Store { return pgtest.Open(t) }

func TestSuite(t *testing.T) {
	storetest.RunSuite(t, func(t *testing.T) hq.Store { return openTest(t) })
}

func TestConcurrentDuplicateBatches(t *testing.T) {
	// Two ingest processes handed the same batch at once (a redelivery
	// racing the original) store it once and agree on the cursor.
	s := openTest(t)
	ctx := context.Background()
	db := storetest.NewID(t)
	b := storetest.Batch("S1", "T1", db)
	for i := int64(1); i <= 200; i++ {
		b.Events = append(b.Events, storetest.Sale(t, i, "2026-11-23", 100, 10))
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := s.IngestBatch(ctx, b, nil, storetest.T0)
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	sales, err := s.Sales(ctx, "S1", "")
	require.NoError(t, err)
	require.Equal(t, int64(200), sales[0].Count)
	f, err := s.Fleet(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(200), f[0].AckedSeq)
}
