// Package browsertest drives the POS screen (agent/web) in Debian's
// headless Chromium through chromedp, for the browser tests of the agent
// (a fake status source) and of the whole demo stack (cmd/pos-demo).
//
// New skips the test when Chromium is not installed, or fails it when
// EDGEPOS_REQUIRE_INTEGRATION=1 (internal/testenv). Every wait has a
// deadline; a failure takes a screenshot and reports the page's errors
// and toasts.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/edgepos/edgepos/internal/testenv"
)

// Wait bounds every step and wait.
const Wait = 20 * time.Second

// WedgeGap is the UI's wedge gap in browser tests (APIConfig.WedgeGap).
// A real scanner sends a key every few ms; here every key is two DevTools
// round trips, which on a busy 2-core CI machine take up to ~40 ms, so the
// tests widen the gap (the default stays 40 ms) and type by hand at three
// times it.
const WedgeGap = 120 * time.Millisecond

// Browser is one headless Chromium showing the POS screen at 1024x768,
// the terminal's screen in kiosk mode.
type Browser struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots

	mu   sync.Mutex
	logs []string // console errors and uncaught exceptions
}

// New starts Chromium, opens url and waits until the page is ready.
// Chromium stops at the end of the test.
func New(t *testing.T, url string) *Browser {
	t.Helper()
	path := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1024, 768))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, dir: t.TempDir()}
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			b.log(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				b.log(fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " ")))
			}
		}
	}))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1024, 768), chromedp.Navigate(url+"/")), "navigate")
	b.WaitJS(`document.body.dataset.ready === "true"`)
	return b
}

func (b *Browser) log(s string) {
	b.mu.Lock()
	b.logs = append(b.logs, s)
	b.mu.Unlock()
}

// NoErrors fails the test if the page threw or logged an error.
func (b *Browser) NoErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var bad []string
	for _, l := range b.logs {
		// A 4xx answer the test provoked, or the event stream of an
		// agent going away, shows as a failed resource load.
		if strings.Contains(l, "Failed to load resource") {
			continue
		}
		bad = append(bad, l)
	}
	require.Empty(b.t, bad, "the page logged errors")
}

// Fail stops the test on err with a screenshot, the page's toasts and
// open dialogs, and its logs.
func (b *Browser) Fail(err error, what string) {
	b.t.Helper()
	if err == nil {
		return
	}
	b.Shot("failure")
	b.mu.Lock()
	logs := strings.Join(b.logs, "\n")
	b.mu.Unlock()
	html, _ := b.Eval(`(window.__toastLog || []).join(" / ") + " | dialogs: " + [...document.querySelectorAll("dialog")].map(d => d.id).join(",")`)
	b.t.Fatalf("%s: %v\npage: %s\nlogs:\n%s", what, err, html, logs)
}

// Do runs chromedp steps within Wait.
func (b *Browser) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Wait)
	defer cancel()
	b.Fail(chromedp.Do(ctx, steps...), what)
}

// Eval evaluates a JavaScript expression whose value is a string.
func (b *Browser) Eval(js string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](js))
}

// Text returns the trimmed text of the first element matching sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := b.Eval(fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").trim()`, sel))
	b.Fail(err, "read "+sel)
	return s
}

// WaitJS waits until the expression is truthy.
func (b *Browser) WaitJS(js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, Wait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+js+")", chromedp.WithPollingInterval(25*time.Millisecond)))
	b.Fail(err, "wait for "+js)
}

// WaitText waits until sel's text contains want.
func (b *Browser) WaitText(sel, want string) {
	b.t.Helper()
	b.WaitJS(fmt.Sprintf(`(document.querySelector(%q)?.innerText ?? "").includes(%q)`, sel, want))
}

// Keys presses keys (F-keys, Enter, a digit) in the focused element, as
// fast as the browser takes them. Each key is a keyDown carrying its text
// (keydown, keypress, input, like a real key: a handled keydown suppresses
// the text) and a keyUp.
func (b *Browser) Keys(s string) {
	b.t.Helper()
	b.Do("keys "+s, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range s {
			evs := kb.Encode(r)
			down, up := *evs[0], *evs[len(evs)-1]
			if len(evs) == 3 {
				down.Text, down.UnmodifiedText = evs[1].Text, evs[1].UnmodifiedText
			}
			for _, ev := range []input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// Scan types s and Enter as one burst, the way a keyboard-wedge scanner
// does.
func (b *Browser) Scan(s string) {
	b.t.Helper()
	b.Keys(s + "\r")
}

// TypeSlowly types like a person: three wedge gaps between keys. The
// pause is the input itself, not a wait for the page.
func (b *Browser) TypeSlowly(s string) {
	b.t.Helper()
	for _, r := range s {
		b.Keys(string(r))
		time.Sleep(3 * WedgeGap)
	}
}

// SetValue sets an input's value as a paste would.
func (b *Browser) SetValue(sel, v string) {
	b.t.Helper()
	_, err := b.Eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; return "" })()`, sel, v))
	b.Fail(err, "set "+sel)
}

// Click clicks the first visible element matching sel.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.Do("click "+sel, chromedp.Click(sel, chromedp.NodeVisible))
}

// Shot saves a screenshot named name in the test's temp dir (or, with
// EDGEPOS_DEBUG_SHOTS=dir, in dir, prefixed by the test's name) and
// returns the PNG.
func (b *Browser) Shot(name string) []byte {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	dir := b.dir
	if d := os.Getenv("EDGEPOS_DEBUG_SHOTS"); d != "" { // keep every shot, for a failing run
		dir = d
		name = b.t.Name() + "-" + name
	}
	p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".png")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
	b.t.Logf("screenshot %s", p)
	return img
}

// Readme also writes a screenshot where the README takes it from, when
// EDGEPOS_SCREENSHOT_DIR is set.
func (b *Browser) Readme(img []byte, name string) {
	dir := os.Getenv("EDGEPOS_SCREENSHOT_DIR")
	if dir == "" || img == nil {
		return
	}
	require.NoError(b.t, os.WriteFile(filepath.Join(dir, name), img, 0o644))
}

// Login types the user id and taps the PIN on the login screen's pad.
func (b *Browser) Login(user, pin string) {
	b.t.Helper()
	b.WaitJS(`!document.querySelector("#login-view").hidden`)
	b.SetValue("#login-user", "")
	b.SetValue("#login-pin", "")
	b.Do("user", chromedp.SendKeys("#login-user", user+"\r"))
	b.WaitJS(`document.activeElement.id === "login-pin"`)
	for _, d := range pin { // the touch PIN pad
		b.Click(fmt.Sprintf(`#login-pad [data-key="%c"]`, d))
	}
	b.Click("#login-submit")
}

// WaitSaleView waits for the sale screen with the scan field focused.
func (b *Browser) WaitSaleView() {
	b.t.Helper()
	b.WaitJS(`!document.querySelector("#sale-view").hidden && document.activeElement.id === "scan"`)
}

// LineCount is the number of live lines on screen.
func (b *Browser) LineCount() int {
	n, err := b.Eval(`String(document.querySelectorAll("#lines tbody tr:not(.voided)").length)`)
	b.Fail(err, "count lines")
	var v int
	fmt.Sscan(n, &v)
	return v
}

// WaitLine waits for a live line of sku showing qty.
func (b *Browser) WaitLine(sku, qty string) {
	b.t.Helper()
	b.WaitJS(fmt.Sprintf(`[...document.querySelectorAll('#lines tbody tr[data-sku=%q]:not(.voided) .c-qty')].some(e => e.innerText.trim() === %q)`, sku, qty))
}
