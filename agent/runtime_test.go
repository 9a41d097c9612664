package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCloseEndsAnOpenEventStream (the shutdown fix): a screen connected
// to GET /api/events does not hold up Close, which returns well inside
// its deadline (http.Server.Shutdown would otherwise return the
// deadline's error), and the screen sees its stream end.
func TestCloseEndsAnOpenEventStream(t *testing.T) {
	a := openAgent(t, true)
	ctx := context.Background()
	require.NoError(t, SeedDemoUsers(ctx, a.Ledger()))
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	hc := &http.Client{Jar: jar}
	body, _ := json.Marshal(map[string]string{"user": DemoCashier, "pin": DemoCashierPIN})
	res, err := hc.Post("http://"+a.Addr()+"/api/login", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	res, err = hc.Get("http://" + a.Addr() + "/api/events")
	require.NoError(t, err)
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "retry:"), line)
	require.Eventually(t, func() bool { return a.Hub().Subscribers() == 1 }, 10*time.Second, 5*time.Millisecond)

	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, a.Close(cctx), "Close ended the stream instead of waiting for the deadline")
	require.NoError(t, cctx.Err())
	_, err = io.ReadAll(rd)
	require.NoError(t, err, "the stream ended cleanly")
	ch, unsub := a.Hub().Subscribe()
	defer unsub()
	_, open := <-ch
	require.False(t, open, "a closed hub hands out closed channels")
	a.Hub().Publish("scan", map[string]string{"code": "1"}) // and publishing does not panic
}
