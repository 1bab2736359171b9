package metrics

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestMetricsGolden pins the /metrics text for fixed Stats and batches:
// today's names, types and help (dashboards and alerts use them) plus the
// two histograms.
func TestMetricsGolden(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewConsumer(func() consumer.Stats {
		return consumer.Stats{
			Applied: 12, DeadLettered: 3, Unrouted: 1, SetAside: 1, StoresLost: 1, Batches: 3, Dropped: 7, Stale: 1, Retries: 4, Generations: 5, SyncErrors: 6,
			LastApplied: at.Add(1500 * time.Millisecond), LastSync: at, Lag: 3,
		}
	})
	m.BatchCommitted(consumer.BatchReport{Messages: 10, Took: 3 * time.Millisecond, OldestProduced: at, Committed: at.Add(700 * time.Millisecond)})
	m.BatchCommitted(consumer.BatchReport{Messages: 2, Took: 2 * time.Second, OldestProduced: at, Committed: at.Add(40 * time.Second),
		DeadLettered: map[string]int{"unknown_environment": 1, "invalid_json": 1}})
	m.BatchCommitted(consumer.BatchReport{Messages: 1, Took: time.Millisecond, Committed: at, DeadLettered: map[string]int{"destination_unavailable": 1}})
	// No produce time: the lag is unknown, not zero.
	m.BatchCommitted(consumer.BatchReport{Messages: 1, Took: 20 * time.Millisecond, Committed: at})
	// A producer's clock ahead of ours counts as no lag, not a negative one.
	m.BatchCommitted(consumer.BatchReport{Messages: 1, Took: time.Millisecond, OldestProduced: at.Add(time.Second), Committed: at})

	testenv.Golden(t, *update, filepath.Join("testdata", "metrics.golden"), []byte(scrape(t, m.Handler())))
}

// scrape GETs h in the text format and returns the body of its 200.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain") // the text format, whatever the client's defaults
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d\n%s", res.StatusCode, body)
	}
	return string(body)
}
