package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
)

// Notifications holds the notifier's metrics, fed by its OnDelivery hook
// (Attach). Labels are the fixed channels and statuses of package notify
// and the three events: the series stay few whatever the catalog.
type Notifications struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	attempts   *prometheus.CounterVec
}

// NewNotifications returns the notifier's metrics.
func NewNotifications() *Notifications {
	m := &Notifications{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohortsync_notify_deliveries_total",
			Help: "Run notifications that ended, by channel (webhook, email), event (finished, failed, refused) and status (delivered, failed, dropped).",
		}, []string{"channel", "event", "status"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cohortsync_notify_attempts_total",
			Help: "Requests (webhook) and SMTP sessions (email) made to deliver run notifications, retries included.",
		}, []string{"channel"}),
	}
	m.reg.MustRegister(m.deliveries, m.attempts)
	return m
}

// Attach sets m's Delivery as cfg's OnDelivery, after the hook cfg
// already has (which is still called, first).
func (m *Notifications) Attach(cfg *notify.Config) {
	first := cfg.OnDelivery
	cfg.OnDelivery = func(d runstore.Delivery) {
		if first != nil {
			first(d)
		}
		m.Delivery(d)
	}
}

// Delivery records how one delivery ended (notify.Config.OnDelivery).
func (m *Notifications) Delivery(d runstore.Delivery) {
	m.deliveries.WithLabelValues(d.Channel, d.Event, d.Status).Inc()
	if d.Attempts > 0 {
		m.attempts.WithLabelValues(d.Channel).Add(float64(d.Attempts))
	}
}

// Gatherer returns the notifier's metrics, for Handler.
func (m *Notifications) Gatherer() prometheus.Gatherer { return m.reg }
