package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeadlessDemoLosesNothingAcrossAnOutage(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-headless", "-sales", "300", "-outage", "700ms", "-data", t.TempDir()}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	require.Equal(t, "sales=300 at_hq=300 duplicates=0 lost=0 conflicts=0", last)
	require.Contains(t, out.String(), "broker down after 100 sales")
}

func TestDemoRefusesBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"-sales", "-1"}, &out, &errOut))
	require.Equal(t, 2, run(context.Background(), []string{"-nope"}, &out, &errOut))
}
