package progress

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/progress/progresstest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

var update = flag.Bool("update", false, "rewrite golden files")

// at is a reading of the test's run: phase, done of total.
func at(phase producer.Phase, done, total int64) producer.Progress {
	return producer.Progress{Run: "20261207T120000Z-0a1b2c3d", Phase: phase, Done: done, Total: total}
}

// clock is a clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)} }
func visible(s string) string            { return strings.NewReplacer("\r", "<CR>", clearLine, "<EL>").Replace(s) }
func quietTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func TestBarLines(t *testing.T) {
	run := "20261207T120000Z-0a1b2c3d"
	var b strings.Builder
	for _, s := range []sample{
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhaseStarting}, elapsed: 300 * time.Millisecond},
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhaseReading, Done: 1234567}, elapsed: 2 * time.Second, perSecond: 617283.5},
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhaseReading, Done: 12}, elapsed: 100 * time.Millisecond},
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhaseSorting}, elapsed: 65 * time.Second},
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhaseDiffing, Done: 30000}, elapsed: 3 * time.Second, perSecond: 10000},
		{name: "production", p: producer.Progress{Run: run, Phase: producer.PhasePublishing, Done: 4000, Total: 10000}, elapsed: 4 * time.Second, perSecond: 1000},
		{name: "staging", p: producer.Progress{Run: run, Phase: producer.PhaseRecovering, Done: 10, Total: 10}, elapsed: time.Second, perSecond: 10},
		{name: "staging", p: producer.Progress{Run: run, Phase: producer.PhaseEnded, Done: 10000, Total: 10000}, perSecond: 5000},
		{name: "staging", p: producer.Progress{Run: run, Phase: producer.PhaseEnded}},
	} {
		b.WriteString(s.bar(DefaultWidth) + "\n")
	}
	testenv.Golden(t, *update, "testdata/bar.golden", []byte(b.String()))
}

// TestBarRedrawsInPlace drives a Reporter by hand through a two
// destination run: the bar is redrawn in place, a log line written
// meanwhile clears it and redraws it, each destination ends on its own
// line, and Stop ends the last.
func TestBarRedrawsInPlace(t *testing.T) {
	ctx := t.Context()
	var out bytes.Buffer
	c := newClock()
	r := New(&out, Config{Mode: Bar, Now: c.now, Width: 10})
	logs := slog.New(slog.NewTextHandler(r.Writer(), &slog.HandlerOptions{ReplaceAttr: quietTime}))
	prod, staging := &progresstest.Meter{}, &progresstest.Meter{}
	r.Watch("destination", "production", prod)
	r.tick(ctx) // not started: nothing drawn
	prod.Set(at(producer.PhaseReading, 0, 0))
	r.tick(ctx)
	c.advance(time.Second)
	prod.Set(at(producer.PhaseReading, 500, 0))
	r.tick(ctx)
	logs.Info("mapping run", "destination", "production")
	prod.Set(at(producer.PhasePublishing, 0, 100))
	r.tick(ctx)
	c.advance(2 * time.Second)
	prod.Set(at(producer.PhasePublishing, 50, 100))
	r.tick(ctx)
	prod.Set(at(producer.PhaseEnded, 100, 100))
	r.Watch("destination", "staging", staging)
	staging.Set(at(producer.PhaseDiffing, 7, 0))
	r.tick(ctx)
	r.Stop()
	r.Stop()
	testenv.Golden(t, *update, "testdata/bar-run.golden", []byte(visible(out.String())))
}

// TestLogLinesWhenNotATerminal: without a terminal, a line at each phase
// change and every LogEvery, none in between, and the last state at Stop.
func TestLogLinesWhenNotATerminal(t *testing.T) {
	ctx := t.Context()
	var out bytes.Buffer
	c := newClock()
	r := New(&out, Config{Mode: Log, Now: c.now, LogEvery: 10 * time.Second})
	if r.Writer() != &out {
		t.Fatal("in log mode the logs are written to the output as they are")
	}
	r.log = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: quietTime}))
	m := &progresstest.Meter{}
	r.Watch("segment", "beta-users", m)
	m.Set(at(producer.PhaseReading, 0, 0))
	r.tick(ctx)
	for range 25 { // 25 s of reading, a tick a second
		c.advance(time.Second)
		m.Set(at(producer.PhaseReading, m.Read().Done+1000, 0))
		r.tick(ctx)
	}
	m.Set(at(producer.PhasePublishing, 0, 4000))
	r.tick(ctx)
	c.advance(2 * time.Second)
	m.Set(at(producer.PhasePublishing, 1000, 4000))
	r.tick(ctx)
	r.Stop()
	testenv.Golden(t, *update, "testdata/log-run.golden", out.Bytes())
}

// afterStop keeps what is written once stopped is set apart.
type afterStop struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	after   bytes.Buffer
	stopped bool
}

func (w *afterStop) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return w.after.Write(p)
	}
	return w.buf.Write(p)
}

func (w *afterStop) stop() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	return w.buf.String()
}

// TestStopsCleanly: whether the sync fails or the command is cancelled,
// Stop returns promptly, the bar's line is ended, and nothing is written
// afterwards.
func TestStopsCleanly(t *testing.T) {
	for _, c := range []struct {
		name   string
		cancel bool
	}{
		{"the sync fails", false},
		{"the command is cancelled", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w := &afterStop{}
			r := New(w, Config{Mode: Bar, Redraw: time.Millisecond})
			r.Start(ctx, nil)
			m := &progresstest.Meter{}
			m.Set(at(producer.PhaseDiffing, 3, 0))
			r.Watch("destination", "production", m)
			testenv.Eventually(t, 5*time.Second, "the bar drawn", func() bool {
				w.mu.Lock()
				defer w.mu.Unlock()
				return strings.Contains(w.buf.String(), "production diffing")
			})
			if c.cancel {
				cancel()
			} else {
				m.Set(at(producer.PhaseEnded, 3, 3)) // Sync returned its error
			}
			start := time.Now()
			r.Stop()
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Stop took %v", d)
			}
			got := w.stop()
			if !strings.HasSuffix(got, clearLine+"\n") {
				t.Fatalf("output ends %q, want the bar's line ended", got[max(0, len(got)-40):])
			}
			r.Stop()
			r.Watch("destination", "staging", m)
			if _, err := r.Writer().Write([]byte("error: boom\n")); err != nil { // the command's error
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond) // a redraw would have come by now
			w.mu.Lock()
			defer w.mu.Unlock()
			if got := w.after.String(); got != "error: boom\n" {
				t.Fatalf("written after Stop: %q, want only the command's own line, no bar around it", got)
			}
		})
	}
}

func TestStopWithNothingStarted(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Config{Mode: Bar})
	r.Start(t.Context(), nil)
	r.Watch("destination", "production", &progresstest.Meter{}) // failed before its run began
	r.Stop()
	if out.Len() != 0 {
		t.Fatalf("wrote %q for a sync that never started", out.String())
	}
}

func TestMode(t *testing.T) {
	for _, c := range []struct {
		m        Mode
		terminal bool
		want     Mode
		bad      bool
	}{
		{m: Auto, terminal: true, want: Bar},
		{m: Auto, terminal: false, want: Log},
		{m: Bar, terminal: false, want: Bar},
		{m: Log, terminal: true, want: Log},
		{m: None, terminal: true, want: None},
		{m: "fancy", bad: true},
	} {
		t.Run(string(c.m), func(t *testing.T) {
			err := c.m.Validate()
			if c.bad {
				if err == nil || !strings.Contains(err.Error(), `--progress="fancy": want auto, bar, log or none`) {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.m.Resolve(c.terminal); got != c.want {
				t.Fatalf("Resolve(%v) = %q, want %q", c.terminal, got, c.want)
			}
		})
	}
	var b bytes.Buffer
	if IsTerminal(&b) {
		t.Fatal("a buffer is not a terminal")
	}
}

func TestFitCutsToTheTerminal(t *testing.T) {
	for _, c := range []struct {
		line string
		cols int
		want string
	}{
		{"production reading 10 rows", 0, "production reading 10 rows"},
		{"production reading 10 rows", 80, "production reading 10 rows"},
		{"production reading 10 rows", 11, "production"},
		{"prodüction", 5, "prod"},
	} {
		if got := fit(c.line, c.cols); got != c.want {
			t.Errorf("fit(%q, %d) = %q, want %q", c.line, c.cols, got, c.want)
		}
	}
}

// TestRateOverTheLastSeconds: the rate looks at the last seconds of the
// count, goes on from diffing into publishing (one count), and starts
// again with another count.
func TestRateOverTheLastSeconds(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var w window
	w.add(t0, 0, false)
	if r := w.rate(); r != 0 {
		t.Fatalf("rate of one reading = %v", r)
	}
	for i := 1; i <= 10; i++ { // 100/s for 10 s
		w.add(t0.Add(time.Duration(i)*time.Second), int64(100*i), true)
	}
	if r := w.rate(); r != 100 {
		t.Fatalf("rate = %v, want 100", r)
	}
	for i := 11; i <= 15; i++ { // then 1000/s
		w.add(t0.Add(time.Duration(i)*time.Second), 1000+int64(1000*(i-10)), true)
	}
	if r := w.rate(); r != 1000 {
		t.Fatalf("rate after 5 s at 1000/s = %v, want 1000: the last seconds only", r)
	}
	if !continues(producer.PhaseDiffing, producer.PhasePublishing) || continues(producer.PhaseReading, producer.PhaseSorting) {
		t.Fatal("continues: diffing goes on into publishing, reading does not into sorting")
	}
	w.add(t0.Add(16*time.Second), 5, false)
	if r := w.rate(); r != 0 {
		t.Fatalf("rate just after a new count began = %v, want unknown", r)
	}
	w.add(t0.Add(17*time.Second), 1, true) // a count that went back is another one
	w.add(t0.Add(18*time.Second), 11, true)
	if r := w.rate(); r != 10 {
		t.Fatalf("rate = %v, want 10 from the count that went back", r)
	}
}
