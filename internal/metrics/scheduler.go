package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// outcomeUnrecorded labels a run whose end could not be recorded (the
// finish script failed: Result.Outcome is empty and Result.Err says why).
const outcomeUnrecorded = "unrecorded"

// Scheduler holds the metrics of a schedule.Scheduler, fed by its observer
// hooks: Decision and RunDone, set by Attach.
//
// Series are labelled by mapping name. Their number is bounded by the
// catalog (one mapping, one name) times the fixed sets of actions,
// triggers and outcomes of package schedule; a deleted mapping's series stay
// until the process restarts.
type Scheduler struct {
	reg         *prometheus.Registry
	now         func() time.Time
	decisions   *prometheus.CounterVec
	runs        *prometheus.CounterVec
	took        *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	// started and ended count runs; their difference is the runs in
	// progress. Two counts rather than one gauge because a fast run's
	// RunDone may come before the Decision that started it (the
	// scheduler observes after starting the run's goroutine): a gauge would
	// dip below zero meanwhile, the difference is clamped at zero.
	started, ended atomic.Int64
}

// NewScheduler returns the scheduler's metrics. now stamps successful
// runs; nil is time.Now.
func NewScheduler(now func() time.Time) *Scheduler {
	if now == nil {
		now = time.Now
	}
	m := &Scheduler{
		reg: prometheus.NewRegistry(),
		now: now,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohortsync_schedule_decisions_total",
			Help: "Decisions of the scheduler about a mapping, one per mapping per tick (and per manual sync), by action.",
		}, []string{"mapping", "action"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohortsync_schedule_runs_total",
			Help: "Runs started by this replica that ended, by trigger and recorded outcome.",
		}, []string{"mapping", "trigger", "outcome"}),
		// From a small CSV (under a second) to a large warehouse export
		// (an hour or more).
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cohortsync_schedule_run_duration_seconds",
			Help:    "Duration of the runs started by this replica, by recorded outcome.",
			Buckets: []float64{.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"mapping", "outcome"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cohortsync_schedule_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful run of the mapping started by this replica ended.",
		}, []string{"mapping"}),
	}
	inProgress := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cohortsync_schedule_runs_in_progress",
		Help: "Runs started by this replica that have not ended.",
	}, func() float64 { return float64(max(m.started.Load()-m.ended.Load(), 0)) })
	m.reg.MustRegister(m.decisions, m.runs, m.took, m.lastSuccess, inProgress)
	return m
}

// Attach sets m's Decision and RunDone as cfg's hooks, after the hooks
// cfg already has (which are still called, first).
func (m *Scheduler) Attach(cfg *schedule.Config) {
	cfg.OnDecision = chain(cfg.OnDecision, m.Decision)
	cfg.OnRunDone = chain(cfg.OnRunDone, m.RunDone)
}

func chain[T any](first, then func(catalog.Mapping, T)) func(catalog.Mapping, T) {
	if first == nil {
		return then
	}
	return func(mp catalog.Mapping, v T) {
		first(mp, v)
		then(mp, v)
	}
}

// Decision records what the scheduler decided about m
// (schedule.Config.OnDecision).
func (m *Scheduler) Decision(mp catalog.Mapping, d schedule.Decision) {
	m.decisions.WithLabelValues(mp.Name, string(d.Action)).Inc()
	if d.Action == schedule.ActionRun {
		m.started.Add(1)
	}
}

// RunDone records how a run of m ended (schedule.Config.OnRunDone). A run
// succeeded when its Result has no error: its outcome is then done, or
// released for a manual run, or lost if its claim expired meanwhile (the
// segment was synced all the same).
func (m *Scheduler) RunDone(mp catalog.Mapping, r schedule.Result) {
	m.ended.Add(1)
	outcome := string(r.Outcome)
	if outcome == "" {
		outcome = outcomeUnrecorded
	}
	m.runs.WithLabelValues(mp.Name, string(r.Trigger.Kind), outcome).Inc()
	m.took.WithLabelValues(mp.Name, outcome).Observe(r.Took.Seconds())
	if r.Err == nil {
		m.lastSuccess.WithLabelValues(mp.Name).Set(unixSeconds(m.now()))
	}
}

// Gatherer returns the scheduler's metrics, for Handler.
func (m *Scheduler) Gatherer() prometheus.Gatherer { return m.reg }

// Set is a group of metrics with its own registry: Consumer, Scheduler.
type Set interface {
	Gatherer() prometheus.Gatherer
}

// Handler serves the metrics of every set on one endpoint, in the
// Prometheus text format. Their names must not collide (a scrape would
// fail); the sets of this package use distinct prefixes.
func Handler(sets ...Set) http.Handler {
	gs := make(prometheus.Gatherers, len(sets))
	for i, s := range sets {
		gs[i] = s.Gatherer()
	}
	return promhttp.HandlerFor(gs, promhttp.HandlerOpts{})
}
