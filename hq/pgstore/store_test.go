package pgstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/hq"
	"github.com/edgepos/edgepos/hq/storetest"
)

func pgURL() string {
	if u := os.Getenv("EDGEPOS_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// openTest opens a Store in a schema of its own, dropped after the test.
func openTest(t *testing.T) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, pgURL())
	if err != nil {
		if os.Getenv("EDGEPOS_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("postgres not reachable: %v", err)
		}
		t.Skipf("postgres not reachable: %v", err)
	}
	schema := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), rand.IntN(1_000_000))
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(ctx)
	})
	s, err := Open(ctx, pgURL(), Options{Schema: schema, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

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
