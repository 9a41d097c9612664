package link

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// tbWriter hands each slog line to tb.Log until the test ends; lines after
// that (a goroutine that outlived the test would panic in tb.Log) are
// dropped.
type tbWriter struct {
	tb     testing.TB
	mu     sync.Mutex
	closed bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.tb.Log(strings.TrimSuffix(string(bytes.Clone(p)), "\n"))
	}
	return len(p), nil
}

// testLogger is a debug-level slog logger writing to tb.Log, so a failing
// run shows what the link did.
func testLogger(tb testing.TB) *slog.Logger {
	w := &tbWriter{tb: tb}
	tb.Cleanup(func() { w.mu.Lock(); w.closed = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
