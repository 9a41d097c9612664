// Package pgtest opens a pgstore.Store for a test in a schema of its own,
// on the PostgreSQL at EDGEPOS_PG_URL (default the CI machine's
// postgres://postgres@127.0.0.1:5432/test). It skips the test when the
// server is unreachable, unless EDGEPOS_REQUIRE_INTEGRATION=1.
package pgtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgepos/edgepos/hq/pgstore"
)

// URL is the test server's connection string.
func URL() string {
	if u := os.Getenv("EDGEPOS_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Open creates schema t_<random>, opens a Store in it, and drops the schema
// when the test ends.
func Open(tb testing.TB) *pgstore.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		if os.Getenv("EDGEPOS_REQUIRE_INTEGRATION") == "1" {
			tb.Fatalf("postgres not reachable: %v", err)
		}
		tb.Skipf("postgres not reachable: %v", err)
	}
	schema := fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), rand.IntN(1_000_000))
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close(ctx)
	})
	s, err := pgstore.Open(ctx, URL(), pgstore.Options{Schema: schema, MaxConns: 4})
	if err != nil {
		tb.Fatalf("open pgstore: %v", err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}
