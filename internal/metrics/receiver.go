package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cohortsync/cohortsync/producer/receiver"
)

// Receiver holds the push receiver's metrics, read from its Stats at
// every scrape.
type Receiver struct {
	reg *prometheus.Registry
}

// NewReceiver returns the metrics of stats (Receiver.Stats).
func NewReceiver(stats *receiver.Stats) *Receiver {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, v func() int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v()) }))
	}
	counter("cohortsync_receiver_batches_total", "Pushed batches published and acknowledged by Kafka.", stats.Batches.Load)
	counter("cohortsync_receiver_members_total", "Membership changes of pushed batches acknowledged by Kafka.", stats.Members.Load)
	counter("cohortsync_receiver_excluded_total", "Pushed members without a usable key.", stats.Excluded.Load)
	counter("cohortsync_receiver_duplicates_total", "Webhook deliveries already applied (same message_id), answered 204 without publishing.", stats.Dups.Load)
	counter("cohortsync_receiver_stale_total", "Pushed changes dropped because a batch computed later changed their key already.", stats.Stale.Load)
	counter("cohortsync_receiver_runs_recorded_total", "Accepted batches recorded in the run history.", stats.Recorded.Load)
	counter("cohortsync_receiver_runs_not_recorded_total", "Accepted batches the run history could not record (logged).", stats.HistoryFailures.Load)
	reg.MustRegister(refusals{stats: stats, desc: prometheus.NewDesc("cohortsync_receiver_refused_total",
		"Push requests refused, by HTTP status.", []string{"status"}, nil)})
	return &Receiver{reg: reg}
}

// Gatherer implements Set.
func (m *Receiver) Gatherer() prometheus.Gatherer { return m.reg }

type refusals struct {
	stats *receiver.Stats
	desc  *prometheus.Desc
}

func (r refusals) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r refusals) Collect(ch chan<- prometheus.Metric) {
	for code, n := range r.stats.Refusals() {
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(n), strconv.Itoa(code))
	}
}
