package metrics

import (
	"path/filepath"
	"testing"

	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestNotificationsExposition feeds the hook what a notifier reports and
// pins the exposition (testdata/notify.golden); Attach keeps the hook the
// config had.
func TestNotificationsExposition(t *testing.T) {
	m := NewNotifications()
	var earlier []string
	cfg := notify.Config{OnDelivery: func(d runstore.Delivery) { earlier = append(earlier, d.Status) }}
	m.Attach(&cfg)
	for _, d := range []runstore.Delivery{
		{Channel: notify.ChannelWebhook, Event: "failed", Status: notify.StatusDelivered, Attempts: 3},
		{Channel: notify.ChannelWebhook, Event: "finished", Status: notify.StatusDelivered, Attempts: 1},
		{Channel: notify.ChannelWebhook, Event: "failed", Status: notify.StatusFailed, Attempts: 1},
		{Channel: notify.ChannelEmail, Event: "refused", Status: notify.StatusDelivered, Attempts: 2},
		{Channel: notify.ChannelEmail, Event: "failed", Status: notify.StatusDropped},
	} {
		cfg.OnDelivery(d)
	}
	if len(earlier) != 5 {
		t.Errorf("the config's own hook saw %d deliveries, want 5", len(earlier))
	}
	testenv.Golden(t, *update, filepath.Join("testdata", "notify.golden"), []byte(scrape(t, Handler(m))))
}
