package metrics

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

var (
	mapA = catalog.Mapping{Name: "a"}
	mapB = catalog.Mapping{Name: "b"}
)

func scheduled(attempt int) schedule.Trigger {
	return schedule.Trigger{Kind: schedule.TriggerScheduled, Slot: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Attempt: attempt}
}

// TestSchedulerExposition feeds the hooks what a scheduler reports over a
// few ticks and pins the exposition of every family (testdata/scheduler.golden).
func TestSchedulerExposition(t *testing.T) {
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewScheduler(func() time.Time { return clock })

	// Tick 1: a's slot runs and fails; b is paused.
	m.Decision(mapA, schedule.Decision{Action: schedule.ActionRun, Trigger: scheduled(1)})
	m.Decision(mapB, schedule.Decision{Action: schedule.ActionPaused})
	m.RunDone(mapA, schedule.Result{Trigger: scheduled(1), Err: errors.New("source down"), Outcome: schedule.OutcomeRetry, Took: 2 * time.Second})
	// Tick 2: a waits out its backoff; b is still paused.
	m.Decision(mapA, schedule.Decision{Action: schedule.ActionBackoff, Trigger: scheduled(2)})
	m.Decision(mapB, schedule.Decision{Action: schedule.ActionPaused})
	// Tick 3: a's retry succeeds, at clock.
	m.Decision(mapA, schedule.Decision{Action: schedule.ActionRun, Trigger: scheduled(2)})
	clock = clock.Add(90 * time.Second)
	m.RunDone(mapA, schedule.Result{Trigger: scheduled(2), Outcome: schedule.OutcomeDone, Took: 75 * time.Second})
	// A manual sync of a: the run succeeds, nothing is recorded, and it is
	// a success all the same.
	manual := schedule.Trigger{Kind: schedule.TriggerManual, Attempt: 1}
	m.Decision(mapA, schedule.Decision{Action: schedule.ActionRun, Trigger: manual})
	clock = clock.Add(time.Hour)
	m.RunDone(mapA, schedule.Result{Trigger: manual, Outcome: schedule.OutcomeReleased, Took: 300 * time.Millisecond})
	// b resumed: its run succeeds but its end cannot be recorded; a run is
	// then in progress.
	m.Decision(mapB, schedule.Decision{Action: schedule.ActionRun, Trigger: schedule.Trigger{Kind: schedule.TriggerCatchUp, Attempt: 1}})
	m.RunDone(mapB, schedule.Result{Trigger: schedule.Trigger{Kind: schedule.TriggerCatchUp, Attempt: 1}, Err: errors.New("redis down"), Took: 10 * time.Second})
	m.Decision(mapB, schedule.Decision{Action: schedule.ActionRun, Trigger: schedule.Trigger{Kind: schedule.TriggerCatchUp, Attempt: 1}})

	// a's last success is the manual run's end, 12:00 + 90s + 1h; b has
	// none (its end was not recorded, so it is not known to have succeeded).
	// One run of b is in progress.
	testenv.Golden(t, *update, filepath.Join("testdata", "scheduler.golden"), []byte(scrape(t, Handler(m))))
}

// TestSchedulerRunsInProgress: the gauge counts runs between their Decision
// and their RunDone, and never goes below zero when a fast run ends before
// the scheduler reports the decision that started it.
func TestSchedulerRunsInProgress(t *testing.T) {
	run := schedule.Decision{Action: schedule.ActionRun, Trigger: scheduled(1)}
	done := schedule.Result{Trigger: scheduled(1), Outcome: schedule.OutcomeDone, Took: time.Second}
	tests := []struct {
		name  string
		steps []func(*Scheduler)
		want  int
	}{
		{"none", nil, 0},
		{"started", []func(*Scheduler){
			func(m *Scheduler) { m.Decision(mapA, run) },
			func(m *Scheduler) { m.Decision(mapB, run) },
		}, 2},
		{"started then ended", []func(*Scheduler){
			func(m *Scheduler) { m.Decision(mapA, run) },
			func(m *Scheduler) { m.Decision(mapB, run) },
			func(m *Scheduler) { m.RunDone(mapA, done) },
		}, 1},
		{"ended before its decision was reported", []func(*Scheduler){
			func(m *Scheduler) { m.RunDone(mapA, done) },
		}, 0},
		{"other actions start nothing", []func(*Scheduler){
			func(m *Scheduler) {
				m.Decision(mapA, schedule.Decision{Action: schedule.ActionBusy, Trigger: scheduled(1)})
			},
			func(m *Scheduler) {
				m.Decision(mapA, schedule.Decision{Action: schedule.ActionClaimed, Holder: "other"})
			},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewScheduler(nil)
			for _, step := range tt.steps {
				step(m)
			}
			want := "# HELP cohortsync_schedule_runs_in_progress Runs started by this replica that have not ended.\n" +
				"# TYPE cohortsync_schedule_runs_in_progress gauge\n" +
				"cohortsync_schedule_runs_in_progress " + strconv.Itoa(tt.want) + "\n"
			if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "cohortsync_schedule_runs_in_progress"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSchedulerConcurrentRuns: OnRunDone is called from the runs'
// goroutines concurrently (run with -race).
func TestSchedulerConcurrentRuns(t *testing.T) {
	m := NewScheduler(nil)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		mp := mapA
		if i%2 == 1 {
			mp = mapB
		}
		m.Decision(mp, schedule.Decision{Action: schedule.ActionRun, Trigger: scheduled(1)})
		wg.Go(func() {
			m.RunDone(mp, schedule.Result{Trigger: scheduled(1), Outcome: schedule.OutcomeDone, Took: time.Second})
		})
	}
	wg.Wait()
	const want = `
# HELP cohortsync_schedule_runs_total Runs started by this replica that ended, by trigger and recorded outcome.
# TYPE cohortsync_schedule_runs_total counter
cohortsync_schedule_runs_total{mapping="a",outcome="done",trigger="scheduled"} 25
cohortsync_schedule_runs_total{mapping="b",outcome="done",trigger="scheduled"} 25
# HELP cohortsync_schedule_runs_in_progress Runs started by this replica that have not ended.
# TYPE cohortsync_schedule_runs_in_progress gauge
cohortsync_schedule_runs_in_progress 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"cohortsync_schedule_runs_total", "cohortsync_schedule_runs_in_progress"); err != nil {
		t.Error(err)
	}
}

// TestHandlerServesEverySet: one endpoint serves the consumer's and the
// scheduler's families together.
func TestHandlerServesEverySet(t *testing.T) {
	c := NewConsumer(func() consumer.Stats { return consumer.Stats{Applied: 3, Unrouted: 2, Lag: -1} })
	s := NewScheduler(nil)
	s.Decision(mapA, schedule.Decision{Action: schedule.ActionUpToDate})

	body := scrape(t, Handler(c, s))
	for _, line := range []string{
		"cohortsync_consumer_applied_total 3\n",
		"cohortsync_consumer_unrouted_total 2\n",
		`cohortsync_schedule_decisions_total{action="up-to-date",mapping="a"} 1` + "\n",
		"cohortsync_schedule_runs_in_progress 0\n",
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q:\n%s", line, body)
		}
	}
}

// TestSchedulerAttach: Attach feeds the metrics from a schedule.Config's
// hooks and keeps the hooks it already had, called first.
func TestSchedulerAttach(t *testing.T) {
	var calls []string
	cfg := schedule.Config{
		OnDecision: func(mp catalog.Mapping, d schedule.Decision) {
			calls = append(calls, "decision "+mp.Name+" "+string(d.Action))
		},
	}
	m := NewScheduler(nil)
	m.Attach(&cfg)
	cfg.OnDecision(mapA, schedule.Decision{Action: schedule.ActionRun, Trigger: scheduled(1)})
	cfg.OnRunDone(mapA, schedule.Result{Trigger: scheduled(1), Outcome: schedule.OutcomeDone, Took: time.Second})

	if want := []string{"decision a run"}; !slices.Equal(calls, want) {
		t.Errorf("existing hook calls = %q, want %q", calls, want)
	}
	const want = `
# HELP cohortsync_schedule_decisions_total Decisions of the scheduler about a mapping, one per mapping per tick (and per manual sync), by action.
# TYPE cohortsync_schedule_decisions_total counter
cohortsync_schedule_decisions_total{action="run",mapping="a"} 1
# HELP cohortsync_schedule_runs_total Runs started by this replica that ended, by trigger and recorded outcome.
# TYPE cohortsync_schedule_runs_total counter
cohortsync_schedule_runs_total{mapping="a",outcome="done",trigger="scheduled"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want),
		"cohortsync_schedule_decisions_total", "cohortsync_schedule_runs_total"); err != nil {
		t.Error(err)
	}
}
