package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/console"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// stack is `cohortsync serve` (scheduler, consumer, admin API and
// console on one HTTP address) on the test's Kafka and Redis, with one
// destination, no mapping, and a token of each role.
type stack struct {
	url    string               // the console's base, http://addr
	tokens map[auth.Role]string // secrets
	ids    map[auth.Role]string // their ids
	auth   *auth.Store
	cohort string          // a cohort CSV on the server's disk
	runs   *runstore.Store // serve's run history
}

// cohortCSV has three members and two rows the run excludes: an empty
// id (row 3) and a row with an extra field (row 4).
const cohortCSV = "user_id,plan\nalice,pro\nbob,free\n,free\ncarol,pro,extra\ndave,pro\n"

func startStack(t *testing.T, ctx context.Context) *stack {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	redisURL := testenv.RedisURL(t) // once: in-process, each call is a new server
	cohort := filepath.Join(t.TempDir(), "churn.csv")
	if err := os.WriteFile(cohort, []byte(cohortCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Decode("mappings.yaml", []byte(fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    prefix: %s-dst
`, redisURL, name)))
	if err != nil {
		t.Fatal(err)
	}
	rc := redisx.Config{URL: redisURL, PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout}
	sc := catalogstore.Config{Prefix: name + ":"}
	if err := app.MappingsApply(ctx, rc, sc, cat, io.Discard); err != nil {
		t.Fatal(err)
	}
	rdb, err := redisx.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	testenv.DropPrefix(t, rdb, name)
	tokens, err := auth.New(rdb, auth.Config{Prefix: sc.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	history, err := runstore.New(rdb, runstore.Config{Prefix: sc.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{tokens: map[auth.Role]string{}, ids: map[auth.Role]string{}, auth: tokens, cohort: cohort, runs: history}
	for _, r := range auth.Roles {
		tok, secret, err := tokens.Create(ctx, "console-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[r], s.ids[r] = secret, tok.ID
	}

	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = name, t.TempDir(), 2
	ccfg := consumer.DefaultConfig()
	ccfg.Topic, ccfg.GroupID, ccfg.SyncInterval = name, name, 100*time.Millisecond
	addr := testenv.ClosedAddr(t)
	cfg := app.ServeConfig{
		Runs:        mappingrun.Config{Producer: pcfg},
		Schedule:    schedule.Config{Tick: 50 * time.Millisecond, MaxJitter: schedule.NoJitter},
		Consumer:    ccfg,
		CatalogPoll: 100 * time.Millisecond,
		ApplyCheck:  100 * time.Millisecond,
		HTTPAddr:    addr,
		AdminAPI:    true,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proc := app.DefaultProcess()
	proc.LogLevel = "error"
	noEnv := func(string) (string, bool) { return "", false }
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- app.Serve(sctx, proc, noEnv, kafkax.Config{Brokers: brokers}, rc, sc, cfg, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not return within 20s of cancellation")
		}
	})
	s.url = "http://" + addr
	testenv.Eventually(t, 30*time.Second, "serve answering "+s.url+console.Path, func() bool {
		res, err := http.Get(s.url + console.Path)
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return s
}

// TestBrowserConsole is issue 10's scenario in a real browser on a real
// serve: a wrong token is refused on the login page; a writer logs in,
// creates a CSV mapping (which the scheduler runs at once), sees its run
// appear and finish, asks for a sync now and sees that run too, reads the
// run's counts and chart, downloads its exclusions CSV and checks it,
// pages and searches the segment's members, pauses and resumes the
// mapping, looks two contexts up, sees the destination connected and
// fresh, and logs out; a reader sees no write button, and is sent back
// to the login page once its token is revoked.
func TestBrowserConsole(t *testing.T) {
	ctx := testenv.Context(t, 4*time.Minute)
	b := newBrowser(t, ctx) // first: without a browser nothing else starts
	s := startStack(t, ctx)
	b.allowHTTPErrors() // the wrong token's 401 and the refused mapping's 400, which the page shows

	// A wrong token: the API's 401 on the login page, the field marked.
	b.open(s.url + "/")
	b.login("csa_not-a-token")
	b.waitText("[role=alert]", "Error 401")
	if got := b.eval(`document.querySelector("#token").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("token field aria-invalid = %q after a refused token, want true", got)
	}
	if got := b.eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("sessionStorage holds %s items after a refused token, want none", got)
	}

	// The writer logs in: the segments page, empty.
	b.login(s.tokens[auth.Writer])
	b.waitText("h1", "Segments")
	b.shot("01-segments-empty")
	b.waitText("#who", "console-writer (writer)")
	b.waitText("main", "no segment yet")

	// Create the mapping through the form; the scheduler runs it at once.
	b.do("opening the mappings", chromedp.Click(chromedp.CSS(`nav a[href="#/mappings"]`)))
	b.waitText("h1", "Mappings")
	b.waitText("main", "no mapping yet")
	if got := b.eval(`document.activeElement.tagName + " " + document.activeElement.innerText`); got != "H1 Mappings" {
		t.Errorf("focus after navigating = %q, want the page's heading", got)
	}
	// A destination that does not exist: the API's 400, its field marked.
	for id, v := range map[string]string{"#m-name": "churn", "#m-segment": "churn-users", "#m-source": s.cohort,
		"#m-destinations": "nowhere"} {
		b.do("filling "+id, chromedp.SendKeys(chromedp.CSS(id), v))
	}
	create := chromedp.CSS(`form[aria-labelledby=create-mapping] button[type=submit]`)
	b.do("creating the mapping", chromedp.Click(create))
	b.waitText("form [role=alert]", "Error 400")
	b.waitText("form [role=alert]", "field: destinations")
	if got := b.eval(`document.activeElement.id + " " + document.activeElement.getAttribute("aria-invalid")`); got != "m-destinations true" {
		t.Errorf("focus after the refusal = %q, want the destinations field, marked invalid", got)
	}
	if got := b.eval(`document.querySelector("#m-destinations").getAttribute("aria-describedby")`); got != "m-destinations-hint create-mapping-errors" {
		t.Errorf("the refused field is described by %q, want its hint and the error", got)
	}
	b.shot("02-mapping-refused")
	b.eval(`document.querySelector("#m-destinations").value = ""`)
	b.do("naming the destination", chromedp.SendKeys(chromedp.CSS("#m-destinations"), "production"), chromedp.Click(create))
	b.waitText("table", "churn-users")
	b.waitText("table", "active")
	b.shot("02-mappings")

	// Its first run appears in the runs list and finishes applied.
	b.do("opening the runs", chromedp.Navigate(s.url+"/console/#/runs?mapping=churn"))
	b.waitForRuns(1, "applied")

	// The segments list: the segment with its source mark and freshness.
	b.do("opening the segments", chromedp.Click(chromedp.CSS(`nav a[href="#/segments"]`)))
	b.waitText("main table", "churn-users")
	row := b.eval(`[...document.querySelectorAll("main table tbody tr")].find(r => r.innerText.includes("churn-users")).innerText`)
	for _, want := range []string{"production", "CSV", "churn", "3", "fresh, synced"} {
		if !strings.Contains(row, want) {
			t.Errorf("segments row %q lacks %q", row, want)
		}
	}

	// Sync now: the console follows the new run until it is applied.
	b.do("opening the mappings", chromedp.Click(chromedp.CSS(`nav a[href="#/mappings"]`)))
	b.do("sync now", chromedp.Click(chromedp.CSS(`button[data-mapping=churn][data-action=sync]`)))
	b.waitText("h1", "Runs")
	b.waitText("main", "manual")
	b.waitForRuns(1, "applied")
	b.shot("03-runs")

	// Pause and resume the mapping.
	b.do("opening the mappings", chromedp.Click(chromedp.CSS(`nav a[href="#/mappings"]`)))
	b.do("pausing", chromedp.Click(chromedp.CSS(`button[data-mapping=churn][data-action=pause]`)))
	b.waitText("main [role=status]", "churn paused.")
	b.waitText("main table", "paused")
	b.do("resuming", chromedp.Click(chromedp.CSS(`button[data-mapping=churn][data-action=resume]`)))
	b.waitText("main [role=status]", "churn resumed.")
	b.waitText("main table", "active")
	b.do("back to the run", chromedp.NavigateBack())

	// The run's page: counts, exclusions by reason, the chart of both runs.
	b.do("opening the run", chromedp.Click(chromedp.CSS(`main table tbody th a`)))
	b.waitText("h1", "Run ")
	b.waitText("main", "empty_id")
	b.waitText("main", "wrong_column_count")
	counts := b.eval(`[...document.querySelectorAll("main table")].find(t => t.caption && t.caption.innerText.startsWith("Counts")).innerText`)
	for _, want := range []string{"Rows read\t5", "Members\t3", "Excluded\t2", "Added\t0"} {
		if !strings.Contains(counts, want) {
			t.Errorf("counts table lacks %q:\n%s", want, counts)
		}
	}
	b.waitFor("the chart's two points", `document.querySelectorAll("figure.chart svg circle").length === 2`)
	b.shot("04-run")

	// The exclusions CSV: the header and the two excluded rows.
	name, content := b.download(`main button[data-run]`)
	if !strings.HasPrefix(name, "exclusions-") || !strings.HasSuffix(name, "-production.csv") {
		t.Errorf("downloaded file name %q, want exclusions-<run>-production.csv", name)
	}
	rows, err := csv.NewReader(strings.NewReader(string(content))).ReadAll()
	if err != nil {
		t.Fatalf("exclusions CSV %q: %v", content, err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], []string{"row", "line", "value", "reason"}) ||
		rows[1][3] != "empty_id" || rows[2][3] != "wrong_column_count" {
		t.Errorf("exclusions CSV = %q, want the header, then empty_id and wrong_column_count rows", rows)
	}

	// The segment: its members, searched by prefix.
	b.do("opening the segment", chromedp.Click(chromedp.CSS(`main dl a[href^="#/segments/"]`)))
	b.waitText("h1", "Segment churn-users in production")
	b.waitText("main", "fresh")
	b.waitText("main .applying", "up to date")
	b.waitFor("the three members", `[...document.querySelectorAll("main table")].some(t => t.caption && t.caption.innerText.startsWith("Members") && t.tBodies[0].rows.length === 3)`)
	b.do("searching members", chromedp.SendKeys(chromedp.CSS("#member-search"), "b"), chromedp.Click(chromedp.CSS("form[role=search] button")))
	b.shot("05-segment")
	b.waitText("main table caption", "starting with b")
	if got := b.eval(`[...document.querySelectorAll("main table")].find(t => t.caption && t.caption.innerText.startsWith("Members")).tBodies[0].innerText.trim()`); got != "bob" {
		t.Errorf("members starting with b = %q, want bob", got)
	}

	// The membership lookup: alice is in churn-users since the first run;
	// carol, excluded from the cohort, is not a member.
	b.do("opening the lookup", chromedp.Click(chromedp.CSS(`nav a[href="#/lookup"]`)))
	b.waitText("h1", "Membership lookup")
	b.waitFor("the destinations to choose from", `document.querySelector("#l-destination").value === "production"`)
	b.do("looking alice up", chromedp.SendKeys(chromedp.CSS("#l-key"), "alice"), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.waitText("main .answer", "alice is in 1 segment of production.")
	row = b.eval(`document.querySelector("main table tbody tr").innerText`)
	for _, want := range []string{"churn-users", "CSV", "yes", "catch-up"} {
		if !strings.Contains(row, want) {
			t.Errorf("lookup row %q lacks %q", row, want)
		}
	}
	b.shot("06-lookup")
	b.eval(`document.querySelector("#l-key").value = ""`)
	b.do("looking carol up in churn-users", chromedp.SendKeys(chromedp.CSS("#l-key"), "carol"),
		chromedp.SendKeys(chromedp.CSS("#l-segment"), "churn-users"), chromedp.Click(chromedp.CSS("main form button[type=submit]")))
	b.waitText("main .answer", "carol is not a member of churn-users in production.")

	// The destination: connected, available and fresh as the SDKs see it.
	b.do("opening the destinations", chromedp.Click(chromedp.CSS(`nav a[href="#/destinations"]`)))
	b.waitText("main table", "connected")
	b.waitText("main table", "available")
	b.waitText("main table", "fresh")
	b.shot("07-destinations")

	// Log out: the login page, nothing kept.
	b.do("logging out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitText("h1", "Log in")
	if got := b.eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("sessionStorage holds %s items after logging out, want none", got)
	}

	// A reader, in another tab: the mapping without its write buttons.
	r := b.another()
	r.open(s.url + "/console/#/mappings")
	r.login(s.tokens[auth.Reader])
	r.waitText("h1", "Mappings")
	r.waitText("main table", "churn")
	r.shot("08-reader-mappings")
	if n := r.count("main button[data-action]"); n != 0 {
		t.Errorf("a reader sees %d sync/pause buttons, want none", n)
	}
	if n := r.count("form[aria-labelledby=create-mapping]"); n != 0 {
		t.Errorf("a reader sees the create form")
	}
	r.waitText("main", "Your token is a reader's")

	// The reader's token is revoked while the page is open: the next call
	// leads back to the login page, with the API's word.
	if err := s.auth.Revoke(ctx, s.ids[auth.Reader]); err != nil {
		t.Fatal(err)
	}
	r.allowHTTPErrors()
	r.do("opening the runs", chromedp.Click(chromedp.CSS(`nav a[href="#/runs"]`)))
	r.waitText("h1", "Log in")
	r.waitText("[role=alert]", "Error 401")
	if got := r.eval(`String(sessionStorage.length)`); got != "0" {
		t.Errorf("sessionStorage holds %s items after the token was refused, want none", got)
	}
}

// runTimeout bounds the wait for a run to be applied: the run, then the
// consumer's batch and the watcher's check, on a loaded machine.
const runTimeout = 90 * time.Second

// waitForRuns waits for the runs table to list n runs, each in the API's
// state want.
func (b *tab) waitForRuns(n int, want string) {
	b.t.Helper()
	b.waitWithin(runTimeout, fmt.Sprintf("%d runs %s", n, want), fmt.Sprintf(
		`(() => { const t = document.querySelector("main table"); if (!t) return false;
		  const rows = [...t.tBodies[0].rows];
		  return rows.length === %d && rows.every(r => r.querySelector('[data-state=%q]')); })()`, n, want))
}

// TestBrowserRunProgress shows a running run's progress: the run's page
// draws the recorded progress as a bar with its words, follows it as the
// run rewrites its record (about once a second), and shows the counts
// once the final record replaced the running one.
func TestBrowserRunProgress(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	b := newBrowser(t, ctx) // first: without a browser nothing else starts
	s := startStack(t, ctx)
	started := time.Now().UTC()
	id := started.Format("20060102T150405Z") + "-c0ffee00"
	rec := runstore.Record{ID: id, Mapping: "churn", Destination: "production", Trigger: "manual",
		Summary: producer.Summary{Run: id, Segment: "churn-users", Started: started}}
	progress := func(phase string, done, total int64) {
		t.Helper()
		r := rec
		r.Progress = &runstore.Progress{Phase: phase, Done: done, Total: total, Updated: time.Now().UTC()}
		if err := s.runs.Add(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	progress("reading", 1200, 0)

	b.open(s.url + "/console/#/runs/" + id)
	b.login(s.tokens[auth.Reader])
	b.waitText("h1", "Run "+id)
	// The total is unknown: an indeterminate bar, the count in words.
	b.waitText("main", "reading: 1,200")
	if got := b.eval(`String(document.querySelector("main progress").hasAttribute("value"))`); got != "false" {
		t.Errorf("a bar without a total has a value attribute: %s, want an indeterminate bar", got)
	}
	progress("publishing", 40, 100)
	b.waitText("main", "publishing: 40 of 100 (40%)")
	if got := b.eval(`(p => p.value + "/" + p.max + " " + p.getAttribute("aria-label"))(document.querySelector("main progress"))`); got !=
		"40/100 Progress of run "+id+" into production" {
		t.Errorf("progress bar = %q, want 40/100 and its label", got)
	}
	progress("publishing", 80, 100)
	b.waitText("main", "publishing: 80 of 100 (80%)")
	b.shot("06-run-progress")

	final := rec
	final.Summary.Outcome, final.Summary.Rows, final.Summary.Keys, final.Summary.Added = producer.Succeeded, 100, 100, 100
	final.Summary.Duration = 3 * time.Second
	if err := s.runs.Add(ctx, final); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the final record's counts", `!document.querySelector("main progress") && document.body.innerText.includes("Rows read")`)
	b.waitText("main", "succeeded")
}
