package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// eachRedis runs test as a subtest on every Redis deployment available.
func eachRedis(t *testing.T, test func(t *testing.T, b testenv.RedisBackend)) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) { test(t, b) })
	}
}

// fakeClock is a Config.Clock the test steps.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// fakeCatalog is a Catalog whose mappings the test sets.
type fakeCatalog struct {
	mu sync.Mutex
	ms []catalog.Mapping
}

func (c *fakeCatalog) List(ctx context.Context) ([]catalog.Mapping, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ms), nil
}

func (c *fakeCatalog) Set(ms ...catalog.Mapping) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms = ms
}

// ran is one call of a Runner.
type ran struct {
	owner, mapping string
	trigger        Trigger
}

func (r ran) String() string {
	return fmt.Sprintf("%s %s %s@%s#%d", r.owner, r.mapping, r.trigger.Kind, r.trigger.Slot.UTC().Format("01-02T15:04"), r.trigger.Attempt)
}

// decided is one decision a scheduler reported.
type decided struct {
	owner, mapping string
	d              Decision
}

// harness runs schedulers on one Redis and records what they decide and run.
type harness struct {
	t      *testing.T
	b      testenv.RedisBackend
	prefix string
	clock  *fakeClock
	cat    *fakeCatalog

	mu        sync.Mutex
	runs      []ran
	decisions []decided
	results   []Result
	// behave is what a run does (nil: succeed at once).
	behave func(ctx context.Context, owner string, m catalog.Mapping, t Trigger) error
}

func newHarness(t *testing.T, b testenv.RedisBackend, start time.Time, ms ...catalog.Mapping) *harness {
	name := testenv.Name(t)
	testenv.DropPrefix(t, b.Client, name)
	h := &harness{t: t, b: b, prefix: name + ":", clock: &fakeClock{t: start}, cat: &fakeCatalog{}}
	h.cat.Set(ms...)
	return h
}

func (h *harness) setBehave(f func(ctx context.Context, owner string, m catalog.Mapping, t Trigger) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.behave = f
}

// runnerFunc is a Runner.
type runnerFunc func(ctx context.Context, m catalog.Mapping, t Trigger) error

func (f runnerFunc) Run(ctx context.Context, m catalog.Mapping, t Trigger) error { return f(ctx, m, t) }

// config is the schedulers' Config: fast ticks, the fake clock, keys of
// this test only.
func (h *harness) config(owner string) Config {
	return Config{
		Tick: 5 * time.Millisecond, Prefix: h.prefix, Timeout: 5 * time.Second, Clock: h.clock.Now, Owner: owner,
		ClaimTTL: time.Second, RetryBackoff: time.Minute, MaxAttempts: 3,
		OnDecision: func(m catalog.Mapping, d Decision) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.decisions = append(h.decisions, decided{owner, m.Name, d})
		},
		OnRunDone: func(_ catalog.Mapping, r Result) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.results = append(h.results, r)
		},
	}
}

// scheduler returns a Scheduler called owner, with change applied to its
// Config.
func (h *harness) scheduler(owner string, change func(*Config)) *Scheduler {
	h.t.Helper()
	cfg := h.config(owner)
	if change != nil {
		change(&cfg)
	}
	run := runnerFunc(func(ctx context.Context, m catalog.Mapping, t Trigger) error {
		h.mu.Lock()
		h.runs = append(h.runs, ran{owner, m.Name, t})
		behave := h.behave
		h.mu.Unlock()
		if behave != nil {
			return behave(ctx, owner, m, t)
		}
		return nil
	})
	s, err := New(cfg, h.b.Client, h.cat, run, slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// start runs a scheduler called owner until the returned stop is called
// (or the test ends); stop waits for Run to return, at most 10s.
func (h *harness) start(owner string, change func(*Config)) (stop func()) {
	h.t.Helper()
	s := h.scheduler(owner, change)
	ctx, cancel := context.WithCancel(context.Background()) // the test's context ends before its cleanups
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run of %s = %v", owner, err)
				}
			case <-time.After(10 * time.Second):
				h.t.Errorf("Run of %s did not return within 10s of its context ending", owner)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// startAll starts schedulers r1..rn and returns their names and a stop of
// all of them.
func (h *harness) startAll(n int, change func(*Config)) (owners []string, stop func()) {
	var stops []func()
	for i := range n {
		owners = append(owners, fmt.Sprintf("r%d", i+1))
		stops = append(stops, h.start(owners[i], change))
	}
	return owners, func() {
		for _, s := range stops {
			s()
		}
	}
}

// mark is a point in the decisions reported, for settled.
func (h *harness) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.decisions)
}

// settled waits until every owner has reported, since mark, a decision about
// every mapping named that satisfies ok: each scheduler has looked at the
// state the test waits for, so a slot that ran once and is settled everywhere
// cannot run again.
func (h *harness) settled(mark int, owners, names []string, ok func(Decision) bool) {
	h.t.Helper()
	testenv.Eventually(h.t, 10*time.Second, fmt.Sprintf("%v to settle %v", owners, names), func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		seen := map[string]bool{}
		for _, d := range h.decisions[mark:] {
			if ok(d.d) {
				seen[d.owner+"\x00"+d.mapping] = true
			}
		}
		for _, o := range owners {
			for _, n := range names {
				if !seen[o+"\x00"+n] {
					return false
				}
			}
		}
		return true
	})
}

// upToDate holds for a decision that the latest slot due at now has run.
func upToDate(now time.Time) func(Decision) bool {
	return func(d Decision) bool { return d.Action == ActionUpToDate && d.Next.After(now) }
}

func is(a Action) func(Decision) bool { return func(d Decision) bool { return d.Action == a } }

// ranList is every run so far, as text.
func (h *harness) ranList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.runs {
		out = append(out, r.String())
	}
	return out
}

// slotsRun lists, sorted, "<mapping> <kind>@<slot>#<attempt>" of every run,
// without who ran it.
func (h *harness) slotsRun() string {
	var out []string
	for _, r := range h.ranList() {
		out = append(out, r[strings.IndexByte(r, ' ')+1:])
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func (h *harness) runCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.runs)
}

// record is the schedule hash of the mapping called name.
func (h *harness) record(name string) map[string]string {
	h.t.Helper()
	cfg, err := h.config("").withDefaults()
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := h.b.Client.HGetAll(testenv.Context(h.t, 5*time.Second), cfg.keys(name)[0]).Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}
