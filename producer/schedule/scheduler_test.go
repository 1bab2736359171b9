package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// start of the fake clock in every test: a Monday.
var monday = at("2025-03-10T10:00:00Z")

// TestEachSlotRunsOnceAcrossReplicas: three schedulers on one Redis, with
// jitter, stepping a fake clock through two hours in quarter hours: each
// slot of each mapping runs exactly once, the first as a catch-up (the
// mappings are new), the others as scheduled.
func TestEachSlotRunsOnceAcrossReplicas(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		maps := []catalog.Mapping{mapping(t, "hourly", "hourly"), mapping(t, "daily", "daily"), mapping(t, "quarter", "*/15 * * * *")}
		names := []string{"hourly", "daily", "quarter"}
		h := newHarness(t, b, monday, maps...)
		// Runs take a little time, so that claims overlap ticks.
		h.setBehave(func(ctx context.Context, _ string, _ catalog.Mapping, _ Trigger) error {
			time.Sleep(2 * time.Millisecond)
			return nil
		})
		owners, _ := h.startAll(3, func(c *Config) { c.MaxJitter = time.Minute })
		var want []string
		for step := range 8 {
			slot := monday.Add(time.Duration(step) * 15 * time.Minute)
			now := slot.Add(time.Minute) // past every jitter
			m := h.mark()
			h.clock.Set(now)
			h.settled(m, owners, names, upToDate(now))
			kind := TriggerScheduled
			if step == 0 {
				kind = TriggerCatchUp
				want = append(want, fmt.Sprintf("daily %s@03-10T00:00#1", kind))
			}
			if slot.Minute() == 0 {
				want = append(want, fmt.Sprintf("hourly %s@%s#1", kind, slot.Format("01-02T15:04")))
			}
			want = append(want, fmt.Sprintf("quarter %s@%s#1", kind, slot.Format("01-02T15:04")))
		}
		wantText := strings.Join(slices.Sorted(slices.Values(want)), "\n")
		if got := h.slotsRun(); got != wantText {
			t.Fatalf("runs:\n%s\nwant each slot once:\n%s\n(all: %v)", got, wantText, h.ranList())
		}
		if rec := h.record("quarter"); rec["done"] != slotID(monday.Add(105*time.Minute)) || rec["result"] != "ok" || rec["by"] == "" {
			t.Fatalf("record of quarter = %v", rec)
		}
	})
}

// TestAKilledReplicasSlotIsTakenOver: a replica stops mid-run without
// finishing (its context ends, its run never returns): its claim holds the
// slot off the others until the claim TTL passes, then one of them runs it,
// once.
func TestAKilledReplicasSlotIsTakenOver(t *testing.T) {
	const ttl = 200 * time.Millisecond
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		h := newHarness(t, b, monday.Add(2*time.Minute), mapping(t, "hourly", "hourly"))
		started, release := make(chan struct{}), make(chan struct{})
		h.setBehave(func(_ context.Context, owner string, _ catalog.Mapping, _ Trigger) error {
			if owner == "dead" {
				close(started)
				<-release // a killed process: it never returns, whatever its context says
			}
			return nil
		})
		fast := func(c *Config) { c.ClaimTTL = ttl }
		stopDead := h.start("dead", fast)
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the first scheduler did not start the run within 10s")
		}
		defer func() {
			close(release)
			stopDead()
		}()
		m := h.mark()
		h.start("r1", fast)
		h.start("r2", fast)
		h.settled(m, []string{"r1", "r2"}, []string{"hourly"}, is(ActionClaimed))
		if n := h.runCount(); n != 1 {
			t.Fatalf("%d runs while the claim was held: %v", n, h.ranList())
		}
		// The replica dies: its renewals stop with its context. Its Run
		// waits for the run that never returns, so it is not waited for here.
		go stopDead()
		deadline := time.Now().Add(10 * time.Second)
		for h.runCount() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no replica took the slot over within 10s of a %v claim TTL: %v", ttl, h.ranList())
			}
			if b.Miniredis != nil {
				b.Miniredis.FastForward(ttl / 2) // miniredis expires keys only when told
			}
			time.Sleep(10 * time.Millisecond)
		}
		m = h.mark()
		h.settled(m, []string{"r1", "r2"}, []string{"hourly"}, upToDate(h.clock.Now()))
		runs := h.ranList()
		if len(runs) != 2 || !strings.HasPrefix(runs[0], "dead hourly catch-up@03-10T10:00#1") ||
			!strings.HasSuffix(runs[1], " hourly catch-up@03-10T10:00#1") || strings.HasPrefix(runs[1], "dead") {
			t.Fatalf("runs = %v, want the dead replica's then one other's of the same slot", runs)
		}
	})
}

// TestDowntimeRunsTheLatestMissedSlotOnce: after five slots without a
// scheduler, three schedulers run the latest slot once, as a catch-up.
func TestDowntimeRunsTheLatestMissedSlotOnce(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		h := newHarness(t, b, monday.Add(2*time.Minute), mapping(t, "hourly", "hourly"))
		names := []string{"hourly"}
		m := h.mark()
		owners, stop := h.startAll(1, nil)
		h.settled(m, owners, names, upToDate(h.clock.Now()))
		stop()
		h.clock.Set(monday.Add(5*time.Hour + 30*time.Minute))
		m = h.mark()
		owners, _ = h.startAll(3, nil)
		h.settled(m, owners, names, upToDate(h.clock.Now()))
		want := "hourly catch-up@03-10T10:00#1\nhourly catch-up@03-10T15:00#1"
		if got := h.slotsRun(); got != want {
			t.Fatalf("runs:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestOneTimeRunsOncePerContent: a one-time mapping runs once however long
// the schedulers run, and once more when its content changes.
func TestOneTimeRunsOncePerContent(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		once := mapping(t, "launch", "one-time")
		h := newHarness(t, b, monday, once)
		names := []string{"launch"}
		m := h.mark()
		owners, _ := h.startAll(3, nil)
		h.settled(m, owners, names, is(ActionUpToDate))
		for _, d := range []time.Duration{time.Hour, 24 * time.Hour} {
			m := h.mark()
			h.clock.Set(monday.Add(d))
			h.settled(m, owners, names, is(ActionUpToDate))
		}
		if got := h.slotsRun(); got != "launch one-time@01-01T00:00#1" {
			t.Fatalf("runs:\n%s\nwant one", got)
		}
		changed := once
		changed.Segment = "launch-v2"
		m = h.mark()
		h.cat.Set(changed)
		h.settled(m, owners, names, is(ActionUpToDate))
		if got := h.slotsRun(); got != "launch one-time@01-01T00:00#1\nlaunch one-time@01-01T00:00#1" {
			t.Fatalf("runs:\n%s\nwant one more after the change", got)
		}
		if rec := h.record("launch"); rec["done"] != oneTimeID(changed) {
			t.Fatalf("record = %v, want done %s", rec, oneTimeID(changed))
		}
	})
}

// TestPausedAndPushedMappingsNeverRun: through several slots, paused
// mappings (periodic and one-time) and a push source are never run, and
// nothing is written for them.
func TestPausedAndPushedMappingsNeverRun(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		paused, pausedOnce := mapping(t, "paused", "hourly"), mapping(t, "paused-once", "one-time")
		paused.Enabled, pausedOnce.Enabled = false, false
		push := mapping(t, "push", "hourly")
		push.Source, push.Schedule = catalog.Source{Kind: catalog.SourcePush}, catalog.Schedule{Kind: catalog.ScheduleOnPush}
		h := newHarness(t, b, monday, paused, pausedOnce, push)
		owners, _ := h.startAll(3, nil)
		for step := range 3 {
			m := h.mark()
			h.clock.Set(monday.Add(time.Duration(step)*time.Hour + time.Minute))
			h.settled(m, owners, []string{"paused", "paused-once"}, is(ActionPaused))
			h.settled(m, owners, []string{"push"}, is(ActionPush))
		}
		if n := h.runCount(); n != 0 {
			t.Fatalf("%d runs: %v", n, h.ranList())
		}
		if keys := testenv.Snapshot(t, b.Client, strings.TrimSuffix(h.prefix, ":")); len(keys) != 0 {
			t.Fatalf("keys written for mappings that never run: %v", keys)
		}
	})
}

// TestLockedRunIsNotAnAttempt: a run refused because another run holds the
// segment leaves the slot due and uncounted; it runs again at the next tick
// and its success marks the slot done.
func TestLockedRunIsNotAnAttempt(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		h := newHarness(t, b, monday.Add(2*time.Minute), mapping(t, "hourly", "hourly"))
		locked := 3
		var records []map[string]string
		h.setBehave(func(context.Context, string, catalog.Mapping, Trigger) error {
			records = append(records, h.record("hourly")) // one scheduler: runs are sequential
			if locked > 0 {
				locked--
				return fmt.Errorf("sync: %w", snapshot.ErrLocked)
			}
			return nil
		})
		m := h.mark()
		owners, _ := h.startAll(1, nil)
		h.settled(m, owners, []string{"hourly"}, upToDate(h.clock.Now()))
		want := strings.Repeat("hourly catch-up@03-10T10:00#1\n", 4)
		if got := h.slotsRun(); got != strings.TrimSuffix(want, "\n") {
			t.Fatalf("runs:\n%s\nwant four first attempts", got)
		}
		for i, r := range records {
			if len(r) != 0 {
				t.Fatalf("record before run %d = %v, want none: a locked run is not done and not an attempt", i+1, r)
			}
		}
		if rec := h.record("hourly"); rec["done"] != slotID(monday) || rec["result"] != "ok" {
			t.Fatalf("record = %v", rec)
		}
	})
}

// TestFailedRunIsRetriedWithBackoffThenGivenUp: a failing slot is retried
// after a doubling wait, MaxAttempts times in all, then given up; the next
// slot runs as usual.
func TestFailedRunIsRetriedWithBackoffThenGivenUp(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		start := monday.Add(2 * time.Minute)
		h := newHarness(t, b, start, mapping(t, "hourly", "hourly"))
		h.setBehave(func(_ context.Context, _ string, _ catalog.Mapping, t Trigger) error {
			if t.Slot.Equal(monday) {
				return errors.New("source: 503 Service Unavailable")
			}
			return nil
		})
		names := []string{"hourly"}
		m := h.mark()
		owners, _ := h.startAll(3, nil)
		backoff := func(next time.Time) func(Decision) bool {
			return func(d Decision) bool { return d.Action == ActionBackoff && d.Next.Equal(next) }
		}
		// RetryBackoff is 1m: retries at +1m, then +2m after that.
		h.settled(m, owners, names, backoff(start.Add(time.Minute)))
		m = h.mark()
		h.clock.Set(start.Add(time.Minute))
		h.settled(m, owners, names, backoff(start.Add(3*time.Minute)))
		m = h.mark()
		h.clock.Set(start.Add(3 * time.Minute))
		h.settled(m, owners, names, upToDate(h.clock.Now()))
		if rec := h.record("hourly"); rec["done"] != slotID(monday) || rec["result"] != "failed" || rec["attempts"] != "" {
			t.Fatalf("record after giving up = %v", rec)
		}
		m = h.mark()
		h.clock.Set(monday.Add(time.Hour + time.Minute))
		h.settled(m, owners, names, upToDate(h.clock.Now()))
		want := "hourly catch-up@03-10T10:00#1\nhourly catch-up@03-10T10:00#2\nhourly catch-up@03-10T10:00#3\nhourly scheduled@03-10T11:00#1"
		if got := h.slotsRun(); got != want {
			t.Fatalf("runs:\n%s\nwant:\n%s", got, want)
		}
		var outcomes []string
		h.mu.Lock()
		for _, r := range h.results {
			outcomes = append(outcomes, string(r.Outcome))
		}
		h.mu.Unlock()
		if got := strings.Join(outcomes, ","); got != "retry,retry,gave-up,done" {
			t.Fatalf("outcomes = %s", got)
		}
	})
}

// TestSyncNow: a manual run goes through the claim (refused while another
// run holds the mapping), records no slot, and refuses paused, pushed and
// unknown mappings.
func TestSyncNow(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		paused := mapping(t, "paused", "hourly")
		paused.Enabled = false
		push := mapping(t, "push", "hourly")
		push.Source, push.Schedule = catalog.Source{Kind: catalog.SourcePush}, catalog.Schedule{Kind: catalog.ScheduleOnPush}
		h := newHarness(t, b, monday.Add(2*time.Minute), mapping(t, "hourly", "hourly"), paused, push)
		ctx := testenv.Context(t, 30*time.Second)
		a, other := h.scheduler("a", nil), h.scheduler("b", nil)
		if err := a.SyncNow(ctx, "hourly"); err != nil {
			t.Fatal(err)
		}
		if got := h.slotsRun(); got != "hourly manual@01-01T00:00#1" {
			t.Fatalf("runs = %s", got)
		}
		if rec := h.record("hourly"); len(rec) != 0 {
			t.Fatalf("a manual run recorded %v", rec)
		}
		for name, want := range map[string]error{"paused": ErrPaused, "push": ErrPush, "nope": ErrNotFound} {
			if err := a.SyncNow(ctx, name); !errors.Is(err, want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Errorf("SyncNow(%s) = %v, want %v naming it", name, err, want)
			}
		}
		// While a manual run holds the mapping, another is refused and a
		// scheduler leaves its slot alone.
		started, release := make(chan struct{}), make(chan struct{})
		h.setBehave(func(context.Context, string, catalog.Mapping, Trigger) error {
			close(started)
			<-release
			return errors.New("sync failed")
		})
		done := make(chan error, 1)
		go func() { done <- a.SyncNow(ctx, "hourly") }()
		<-started
		h.setBehave(nil)
		if err := other.SyncNow(ctx, "hourly"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "claim a ") {
			t.Fatalf("SyncNow during another run = %v, want ErrBusy naming the holder", err)
		}
		m := h.mark()
		h.start("r1", nil)
		h.settled(m, []string{"r1"}, []string{"hourly"}, is(ActionClaimed))
		close(release)
		if err := <-done; err == nil || !strings.Contains(err.Error(), "sync failed") {
			t.Fatalf("SyncNow = %v, want the run's error", err)
		}
		m = h.mark()
		h.settled(m, []string{"r1"}, []string{"hourly"}, upToDate(h.clock.Now()))
		if rec := h.record("hourly"); rec["done"] != slotID(monday) || rec["attempts"] != "" {
			t.Fatalf("record = %v: the failed manual run must not count as an attempt of the slot", rec)
		}
	})
}
