package hq_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	st "github.com/edgepos/edgepos/hq/storetest"
	"github.com/edgepos/edgepos/sync/wire"
)

// TestDashboardInChromium logs in to the dashboard in Debian's headless
// Chromium and reads the fleet, today's sales and the conflicts it shows.
func TestDashboardInChromium(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("EDGEPOS_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("chromium not installed")
		}
		t.Skip("chromium not installed")
	}
	broker := startBroker(t)
	store := openStore(t)
	svc, _ := startHQ(t, broker, store, "hq-dash")
	today := time.Now().UTC().Format(time.DateOnly)
	coupon := st.NewID(t)
	term := newTerminal(t, broker, "S1", "T1")
	term.send(term.batch(st.Sale(t, 1, today, 12345, 1000), st.Redeem(t, 2, coupon, "S1-T1-000001", time.Now().UTC())))
	term.ack()
	t2 := newTerminal(t, broker, "S2", "T1")
	t2.send(t2.batch(st.Redeem(t, 1, coupon, "S2-T1-000007", time.Now().UTC().Add(time.Minute))))
	t2.ack()
	term.send(term.batch(st.Handover(t, 3, "web-404", "P-4040", true, true, wire.PickupLine{SKU: "A", Qty: 1000, Handed: 1000})))
	term.ack()
	term.publish(topics.Events("S1", "T1"), []byte("not json"))
	require.Eventually(t, func() bool {
		q, err := store.ListQuarantine(context.Background(), 1)
		return err == nil && len(q) == 1
	}, wait, 10*time.Millisecond)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+svc.Addr()+"/")), "navigate")
	login := func(tok string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
			`document.querySelector("#token").value = %q; document.querySelector("#login").requestSubmit(); true`, tok)))
		require.NoError(t, err, "log in")
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
		require.NoError(t, err)
		return s
	}
	login("wrong-token")
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#err").textContent.length > 0`))
	require.NoError(t, err)
	errText := text("#err")
	require.Contains(t, errText, "invalid token")

	login(token)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`!document.querySelector("#content").hidden`))
	require.NoError(t, err)
	fleet, sales, conflicts, quarantine := text("#fleet tbody"), text("#sales tbody"), text("#conflicts tbody"), text("#quarantine tbody")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Contains(t, fleet, "S1")
	require.Contains(t, fleet, "S2")
	require.Contains(t, sales, "123.45")
	require.Contains(t, conflicts, "S2-T1-000007")
	require.Contains(t, conflicts, "S1-T1-000001")
	require.True(t, strings.Contains(quarantine, "malformed"), quarantine)
	pickups := text("#pickups tbody")
	require.Contains(t, pickups, "web-404")
	require.Contains(t, pickups, "unknown order")
	if dir := os.Getenv("EDGEPOS_SCREENSHOTS"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "hq-dashboard.png"), shot, 0o644))
	}
}
