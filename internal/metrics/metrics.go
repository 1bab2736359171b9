package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cohortsync/cohortsync/consumer"
)

// StatsFunc returns a snapshot of the consumer's counters (Consumer.Stats).
type StatsFunc func() consumer.Stats

// Consumer holds the consumer's metrics: its Stats, read at every scrape,
// and two histograms fed by the consumer as its Observer.
type Consumer struct {
	reg   *prometheus.Registry
	apply prometheus.Histogram
	lag   prometheus.Histogram
	dead  *prometheus.CounterVec
}

var _ consumer.Observer = (*Consumer)(nil)

// NewConsumer returns the consumer's metrics, reading stats at every
// scrape (serve Handler only once stats can answer). Set it as
// consumer.Config.Observer.
func NewConsumer(stats StatsFunc) *Consumer {
	m := &Consumer{
		reg: prometheus.NewRegistry(),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cohortsync_consumer_batch_apply_seconds",
			Help:    "Time to apply one batch to Redis and commit its offsets.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		// One observation per batch, of its oldest message: the batch's
		// worst lag, at the cost of one observation, not one per event.
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cohortsync_consumer_end_to_end_lag_seconds",
			Help:    "Per committed batch, the commit time minus the produce time of its oldest message.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}),
		// Reasons are the dead-letter topic's fixed vocabulary (decode
		// failures, Redis rejections, routing): the label stays bounded.
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohortsync_consumer_dead_lettered_by_reason_total",
			Help: "Messages written to the dead-letter topic, by the reason in their header.",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(statsCollector{stats}, m.apply, m.lag, m.dead)
	return m
}

// BatchCommitted records one committed batch (consumer.Observer).
func (m *Consumer) BatchCommitted(b consumer.BatchReport) {
	m.apply.Observe(b.Took.Seconds())
	for reason, n := range b.DeadLettered {
		m.dead.WithLabelValues(reason).Add(float64(n))
	}
	if !b.OldestProduced.IsZero() {
		m.lag.Observe(max(b.Committed.Sub(b.OldestProduced), 0).Seconds())
	}
}

// Gatherer returns the consumer's metrics, for Handler.
func (m *Consumer) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Consumer) Handler() http.Handler { return Handler(m) }

// stat is one metric read from Stats.
type stat struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(consumer.Stats) float64
}

// stats are the consumer's metrics, with the names, types and help that
// dashboards already use.
var stats = []stat{
	counter("cohortsync_consumer_applied_total", "Events applied to Redis.", func(s consumer.Stats) int64 { return s.Applied }),
	counter("cohortsync_consumer_dead_lettered_total", "Messages written to the dead-letter topic.", func(s consumer.Stats) int64 { return s.DeadLettered }),
	counter("cohortsync_consumer_unrouted_total", "Events dead-lettered because no destination serves their environment (counted in dead_lettered too).", func(s consumer.Stats) int64 { return s.Unrouted }),
	counter("cohortsync_consumer_set_aside_total", "Events of an unavailable destination set aside (counted in dead_lettered too); the next run of each segment there repairs it.", func(s consumer.Stats) int64 { return s.SetAside }),
	counter("cohortsync_consumer_batches_total", "Batches committed.", func(s consumer.Stats) int64 { return s.Batches }),
	counter("cohortsync_consumer_stale_total", "Redelivered messages dropped.", func(s consumer.Stats) int64 { return s.Stale }),
	counter("cohortsync_consumer_dropped_total", "Fetched messages left unapplied when a generation ended (rebalance or stop); the partition's next owner reads them again.", func(s consumer.Stats) int64 { return s.Dropped }),
	counter("cohortsync_consumer_retries_total", "Retries after transient errors.", func(s consumer.Stats) int64 { return s.Retries }),
	counter("cohortsync_consumer_generations_total", "Consumer group generations joined (rebalances).", func(s consumer.Stats) int64 { return s.Generations }),
	counter("cohortsync_consumer_sync_errors_total", "Failed lag checks or synchronized_on writes.", func(s consumer.Stats) int64 { return s.SyncErrors }),
	{
		prometheus.NewDesc("cohortsync_consumer_stores_lost", "Destination prefixes whose Redis lost its data under the running consumer (store id gone): not marked current until rebuilt.", nil, nil),
		prometheus.GaugeValue, func(s consumer.Stats) float64 { return float64(s.StoresLost) },
	},
	{
		prometheus.NewDesc("cohortsync_consumer_lag", "Uncommitted messages of the group on the topic (-1 unknown).", nil, nil),
		prometheus.GaugeValue, func(s consumer.Stats) float64 { return float64(s.Lag) },
	},
	{
		prometheus.NewDesc("cohortsync_consumer_last_applied_seconds", "Unix time of the last committed batch.", nil, nil),
		prometheus.GaugeValue, func(s consumer.Stats) float64 { return unixSeconds(s.LastApplied) },
	},
	{
		prometheus.NewDesc("cohortsync_consumer_last_sync_seconds", "Last big_segments_synchronized_on written, unix time.", nil, nil),
		prometheus.GaugeValue, func(s consumer.Stats) float64 { return unixSeconds(s.LastSync) },
	},
}

func counter(name, help string, get func(consumer.Stats) int64) stat {
	return stat{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, func(s consumer.Stats) float64 { return float64(get(s)) }}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}

// statsCollector reads one Stats snapshot per scrape, so the values of a
// scrape are consistent with each other.
type statsCollector struct{ stats StatsFunc }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range stats {
		ch <- s.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.stats()
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(s.desc, s.typ, s.get(snap))
	}
}
