package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// NoBrowserEnv, when set to anything, skips the browser tests on purpose;
// without it a missing browser fails them (CI installs one with
// scripts/browser-deps.sh).
const NoBrowserEnv = "COHORTSYNC_NO_BROWSER"

// chromium returns the browser to drive: $COHORTSYNC_CHROMIUM, else
// chromium or chromium-browser on PATH (Debian's package).
func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv(NoBrowserEnv) != "" {
		t.Skipf("%s is set: browser tests skipped on purpose", NoBrowserEnv)
	}
	if p := os.Getenv("COHORTSYNC_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("no browser: neither $COHORTSYNC_CHROMIUM nor chromium or chromium-browser on PATH; "+
		"install Debian's chromium with scripts/browser-deps.sh, or set %s=1 to skip the browser tests on purpose", NoBrowserEnv)
	return ""
}

// ShotsEnv names a directory where the browser tests save a PNG of each
// page they pass through, for a person to look at; unset, none is taken.
const ShotsEnv = "COHORTSYNC_CONSOLE_SHOTS"

// browserTimeout bounds each wait of a step; a whole test is bounded by
// its context.
const browserTimeout = 20 * time.Second

// tab is one browser tab of a headless Chromium that the test started;
// what the page reports as an error (an exception, console.error, a CSP
// violation) is collected and fails the test at its end, unless the test
// said it expects HTTP errors in the log (allowHTTPErrors).
type tab struct {
	t         *testing.T
	ctx       context.Context
	downloads string

	mu         sync.Mutex
	problems   []string
	httpErrors bool
}

// newBrowser starts Chromium (flags as the machine's notes give them: no
// background networking on this closed network, a new empty profile) and
// returns its first tab; the browser is stopped when the test ends.
func newBrowser(t *testing.T, ctx context.Context) *tab {
	t.Helper()
	path := chromium(t)
	// Chromium puts its singleton socket in TMPDIR and leaves it there; a
	// short directory of the test's own (the socket's path must stay under
	// 108 bytes) is removed when the test ends.
	tmp, err := os.MkdirTemp("", "chrome")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Env("TMPDIR="+tmp),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser with the test's context
		t.Fatalf("starting %s: %v", path, err)
	}
	downloads := t.TempDir()
	yes := true
	if _, err := chromedp.CallBrowser(bctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes,
	}); err != nil {
		t.Fatalf("allowing downloads: %v", err)
	}
	return newTab(t, bctx, downloads)
}

func newTab(t *testing.T, ctx context.Context, downloads string) *tab {
	t.Helper()
	b := &tab{t: t, ctx: ctx, downloads: downloads}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("listening to the page's console: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("the page reported: %s", p)
		}
	})
	return b
}

// another opens a second tab in the same browser: a new sessionStorage,
// so not logged in.
func (b *tab) another() *tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("opening a tab: %v", err)
	}
	return newTab(b.t, ctx, b.downloads)
}

// allowHTTPErrors accepts the browser's log entries of failed requests (a
// 400, 401 or 403 the test provokes): the page shows them, the test checks
// it.
func (b *tab) allowHTTPErrors() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.httpErrors = true
}

// record runs in the tab's event loop: it only appends.
func (b *tab) record(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		p = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			p += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeWarning {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
		}
		p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError && e.Level != log.EntryLevelWarning {
			return
		}
		b.mu.Lock()
		expected := b.httpErrors && e.Source == log.EntrySourceNetwork &&
			(strings.Contains(e.Text, "status of 400") || strings.Contains(e.Text, "status of 401") || strings.Contains(e.Text, "status of 403"))
		b.mu.Unlock()
		if expected {
			return
		}
		p = fmt.Sprintf("log (%s, %s): %s %s", e.Source, e.Level, e.Text, e.URL)
	default:
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, p)
}

// do runs steps within browserTimeout; a failure shows the page's text.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, b.pageText())
	}
}

// pageText is <body>'s text, for failure messages ("" if unreadable).
func (b *tab) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

func (b *tab) open(url string) {
	b.t.Helper()
	b.do("opening "+url, chromedp.Navigate(url))
}

// eval evaluates a JavaScript expression in the page.
func (b *tab) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// waitFor polls the JavaScript condition cond (an expression) until it
// is true; the failure names what was awaited and shows the page.
func (b *tab) waitFor(what, cond string) {
	b.t.Helper()
	b.waitWithin(browserTimeout, what, cond)
}

// waitWithin is waitFor with its own bound.
func (b *tab) waitWithin(d time.Duration, what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, cond, err, b.pageText())
	}
}

// waitText waits for the element of the CSS selector sel to exist and
// hold want in its text.
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%q in %s", want, sel),
		fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.innerText.includes(%q))`, sel, want))
}

// count is how many elements match sel.
func (b *tab) count(sel string) int {
	b.t.Helper()
	var n int
	if _, err := fmt.Sscan(b.eval(fmt.Sprintf(`String(document.querySelectorAll(%q).length)`, sel)), &n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

// login types token on the login page (into an emptied field) and
// submits it.
func (b *tab) login(token string) {
	b.t.Helper()
	b.do("waiting for the login page", chromedp.WaitVisible(chromedp.CSS("#token")))
	b.eval(`document.querySelector("#token").value = ""`)
	b.do("logging in",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("form button[type=submit]")))
}

// download clicks the button of sel and returns the content of the file
// it downloaded, once complete.
func (b *tab) download(sel string) (name string, content []byte) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	begins := chromedp.BrowserEvents(ctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	b.do("clicking "+sel, chromedp.Click(chromedp.CSS(sel)))
	var guid string
	for ev, err := range begins {
		if err != nil {
			b.t.Fatalf("no download began after clicking %s: %v\npage text:\n%s", sel, err, b.pageText())
		}
		guid, name = ev.GUID, ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			b.t.Fatalf("download %s did not complete: %v", name, err)
		}
		if ev.GUID != guid {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			b.t.Fatalf("download %s was cancelled", name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	content, err := os.ReadFile(filepath.Join(b.downloads, guid))
	if err != nil {
		b.t.Fatalf("reading the download %s: %v", name, err)
	}
	return name, content
}

// shot saves a screenshot of the whole page as NAME.png under $ShotsEnv,
// when set.
func (b *tab) shot(name string) {
	b.t.Helper()
	dir := os.Getenv(ShotsEnv)
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o600); err != nil {
		b.t.Fatal(err)
	}
}
