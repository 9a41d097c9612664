// Package testenv gives tests the real services of the machine they run on:
// Mosquitto, PostgreSQL and Chromium. A test that needs one skips when it
// is missing, unless EDGEPOS_REQUIRE_INTEGRATION=1 (set by .ci/run), when
// it fails instead.
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Required reports whether integration services must be present.
func Required() bool { return os.Getenv("EDGEPOS_REQUIRE_INTEGRATION") == "1" }

// Missing skips tb, or fails it when integration is required.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("EDGEPOS_REQUIRE_INTEGRATION=1 but %s", msg)
	}
	tb.Skip(msg)
}

// MosquittoURL returns the broker URL of the machine's Mosquitto
// (EDGEPOS_MOSQUITTO or 127.0.0.1:1883), or skips/fails.
func MosquittoURL(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("EDGEPOS_MOSQUITTO")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		Missing(tb, "Mosquitto not reachable at %s: %v", addr, err)
	}
	c.Close()
	return "tcp://" + addr
}

// PGURL is the PostgreSQL URL tests use (EDGEPOS_PG_URL or the CI machine's).
func PGURL() string {
	if u := os.Getenv("EDGEPOS_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// PGSchema creates a schema of its own for tb, dropped at cleanup, or
// skips/fails when PostgreSQL is unreachable.
func PGSchema(tb testing.TB) (url, schema string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PGURL())
	if err != nil {
		Missing(tb, "PostgreSQL not reachable: %v", err)
	}
	schema = fmt.Sprintf("t_%d_%d", time.Now().UnixNano(), rand.IntN(1_000_000))
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(ctx)
	})
	return PGURL(), schema
}

// Chromium returns the path of Debian's chromium, or skips/fails.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("EDGEPOS_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	Missing(tb, "chromium not installed (apt-get install chromium)")
	return ""
}

// TopicPrefix returns a prefix unique to this test run, so tests sharing a
// real broker never see each other's messages.
func TopicPrefix() string {
	return fmt.Sprintf("edgepos-test-%d-%d/v1", time.Now().UnixNano(), rand.IntN(1_000_000))
}
