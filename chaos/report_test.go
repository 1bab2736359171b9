package chaos

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"
)

// The full form (make chaos) writes RELIABILITY.md from what the rows
// measured: scripts/chaos.sh sets COHORTSYNC_CHAOS_REPORT to the file to
// write. Each row's result is kept in resultsFile, keyed by test, so that
// a run of some rows (TEST_ARGS='-run X') updates those and keeps the
// others' last results, each with its date and form. The short form (make
// test) checks the same oracles and writes nothing.
const (
	envReport    = "COHORTSYNC_CHAOS_REPORT"
	envLogs      = "COHORTSYNC_CHAOS_LOGS" // set: every process's output logged at the end of its row
	resultsFile  = "testdata/results.json"
	templateFile = "testdata/RELIABILITY.md.tmpl"
)

// result is one row of the table: what a test injected and what the
// oracle found at its last check.
type result struct {
	Test     string `json:"test"`
	Fault    string `json:"fault"`
	Injected string `json:"injected"` // what this run did, with its measured durations
	Form     string `json:"form"`     // "full" or "short"
	Date     string `json:"date"`     // UTC, when the row ran
	// Expected is the oracle's member count, Observed the member index's,
	// at the last check.
	Expected int `json:"expected"`
	Observed int `json:"observed"`
	// Lost counts expected members missing from the member index or from
	// their LaunchDarkly include set; Doubled the members present in
	// either that the oracle says are not members (see the template).
	Lost    int `json:"lost"`
	Doubled int `json:"doubled"`
	// RecoverMillis is the time from the end of the fault to the moment
	// Redis was exact and marked current past it; -1 when it never was.
	RecoverMillis int64 `json:"recover_ms"`
	Pass          bool  `json:"pass"`
}

// Recover formats RecoverMillis for the table.
func (r result) Recover() string {
	if r.RecoverMillis < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f s", float64(r.RecoverMillis)/1000)
}

// Result says pass or FAIL.
func (r result) Result() string {
	if r.Pass {
		return "pass"
	}
	return "FAIL"
}

var (
	resultsMu sync.Mutex
	results   []result
)

func record(r result) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results = append(results, r)
}

func TestMain(m *testing.M) {
	flag.Parse()
	startBrokerEarly()
	code := m.Run()
	if binPath != "" {
		// The binary's directory is the package's own: leave nothing in
		// the temp directory behind (a -race build is about 50 MB).
		if err := os.RemoveAll(filepath.Dir(binPath)); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: remove the test binary: %v\n", err)
		}
	}
	if err := stopSuiteBroker(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		code = max(code, 1)
	}
	if path := os.Getenv(envReport); path != "" {
		if err := writeReport(path); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: writing %s: %v\n", path, err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// writeReport merges this run's rows into resultsFile and renders the
// template into path.
func writeReport(path string) error {
	var all []result
	b, err := os.ReadFile(resultsFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s: %w", resultsFile, err)
		}
	}
	resultsMu.Lock()
	for _, r := range results {
		all = slices.DeleteFunc(all, func(o result) bool { return o.Test == r.Test })
		all = append(all, r)
	}
	resultsMu.Unlock()
	if all == nil {
		all = []result{}
	}
	order := rowOrder()
	slices.SortStableFunc(all, func(a, b result) int { return order(a.Test) - order(b.Test) })
	out, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(resultsFile, append(out, '\n'), 0o644); err != nil {
		return err
	}
	cell := strings.NewReplacer("|", `\|`, "\n", " ")
	rows := slices.Clone(all)
	for _, r := range suiteRows {
		if !slices.ContainsFunc(all, func(o result) bool { return o.Test == r.test }) {
			rows = append(rows, result{Test: r.test, Fault: r.fault}) // no Date: not measured
		}
	}
	slices.SortStableFunc(rows, func(a, b result) int { return order(a.Test) - order(b.Test) })
	tmpl, err := template.New("RELIABILITY.md.tmpl").Funcs(template.FuncMap{"cell": cell.Replace}).ParseFiles(templateFile)
	if err != nil {
		return err
	}
	type form struct {
		Members, Kills int
		Outage         time.Duration
	}
	view := func(sz size) form { return form{sz.members, sz.kills, sz.outage} }
	var md bytes.Buffer
	err = tmpl.Execute(&md, struct {
		Rows        []result
		Short, Full form
	}{rows, view(shortSize), view(fullSize)})
	if err != nil {
		return err
	}
	return os.WriteFile(path, md.Bytes(), 0o644)
}

// rowOrder orders rows as suiteRows lists them; others (a row renamed
// since it last ran) go last.
func rowOrder() func(test string) int {
	known := map[string]int{}
	for i, r := range suiteRows {
		known[r.test] = i
	}
	return func(test string) int {
		if i, ok := known[test]; ok {
			return i
		}
		return len(suiteRows)
	}
}

// suiteRows are the rows of the table, in its order: each test and the
// fault it injects. A row the results file lacks (never run in the full
// form) is listed as not measured.
var suiteRows = []struct{ test, fault string }{
	{"TestConsumerKilled", "Consumer killed"},
	{"TestProducerKilled", "Producer killed"},
	{"TestRedisRestartedMidApply", "Redis restarted mid-apply"},
	{"TestRedisDataLoss", "Redis data loss"},
	{"TestSIGTERMMidApply", "SIGTERM mid-apply"},
	{"TestPoisonMessages", "Poison messages"},
	{"TestRebalances", "Repeated rebalances"},
	{"TestRebalancesMemberKilled", "Member killed during rebalances"},
	{"TestConcurrentSyncs", "Concurrent syncs"},
	{"TestConcurrentSyncsTwoStateDirs", "Concurrent syncs, two state directories"},
	{"TestBrokerDown/DuringPublish", "Broker down during publish"},
	{"TestBrokerDown/DuringApply", "Broker down during apply"},
}

// rowFault is the fault of test's row, "" if it has none.
func rowFault(test string) string {
	for _, r := range suiteRows {
		if r.test == test {
			return r.fault
		}
	}
	return ""
}

// row starts the test's row (suiteRows names its fault): injected says
// what the test does (details measured during the run are added with
// note). The row is recorded when the test ends, with the last check's
// numbers.
func (s *stage) row(injected string) {
	fault := rowFault(s.t.Name())
	if fault == "" {
		s.t.Errorf("%s is not in suiteRows: add it where its row belongs in RELIABILITY.md", s.t.Name())
	}
	s.res = &result{Test: s.t.Name(), Fault: fault, Injected: injected, Form: suiteForm(),
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), RecoverMillis: -1}
	s.t.Cleanup(func() {
		s.res.Pass = !s.t.Failed()
		s.t.Logf("row: expected %d, observed %d, lost %d, doubled %d, recovered in %s, %s",
			s.res.Expected, s.res.Observed, s.res.Lost, s.res.Doubled, s.res.Recover(), s.res.Result())
		record(*s.res)
		if os.Getenv(envLogs) != "" {
			for i, p := range s.procs {
				s.t.Logf("process %d %v:\n%s", i, p.cmd.Args[1:2], p.output())
			}
		}
	})
}

// note adds a measured detail to the row's description of what was
// injected.
func (s *stage) note(format string, args ...any) {
	s.t.Helper()
	s.t.Logf(format, args...)
	if s.res != nil {
		s.res.Injected = strings.TrimSuffix(s.res.Injected, ".") + "; " + fmt.Sprintf(format, args...)
	}
}
