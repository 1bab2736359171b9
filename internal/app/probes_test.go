package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// TestServeProbesThroughARedisOutage pins what deploy/k8s/serve.yaml's
// probes rely on: with Redis down (the control Redis, which is also the
// destination here), /readyz fails, so the replica takes no traffic, but
// /healthz does not, so Kubernetes does not restart every replica for an
// outage a restart cannot end; once Redis is back, /readyz passes again.
// The outage needs a Redis the test can stop: a miniredis of its own,
// whatever the backend of the suite.
func TestServeProbesThroughARedisOutage(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	ctx := testenv.Context(t, 2*time.Minute)
	mr := miniredis.RunT(t)
	redisURL := "redis://" + mr.Addr() + "/0"
	cohort := filepath.Join(t.TempDir(), "beta.csv")
	if err := os.WriteFile(cohort, []byte("user_id\na\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Decode("mappings.yaml", []byte(fmt.Sprintf(`destinations:
  - name: staging
    redis: {url: %q}
    prefix: %s-dst
mappings:
  - name: beta
    source: {csv: %q}
    segment: beta-users
    destinations: [staging]
    schedule: hourly
`, redisURL, name, cohort)))
	if err != nil {
		t.Fatal(err)
	}
	rc := redisx.Config{URL: redisURL, PoolSize: redisx.DefaultPoolSize, Timeout: time.Second}
	sc := catalogstore.Config{Prefix: name + ":", Timeout: time.Second}
	if err := MappingsApply(ctx, rc, sc, cat, io.Discard); err != nil {
		t.Fatal(err)
	}
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = name, t.TempDir(), 2
	ccfg := consumer.DefaultConfig()
	ccfg.Topic, ccfg.GroupID, ccfg.SyncInterval, ccfg.RetryTimeout = name, name, 100*time.Millisecond, 2*time.Second
	addr := testenv.ClosedAddr(t)
	cfg := ServeConfig{
		Runs:        mappingrun.Config{Producer: pcfg},
		Schedule:    schedule.Config{Tick: 50 * time.Millisecond, MaxJitter: schedule.NoJitter},
		Consumer:    ccfg,
		CatalogPoll: 100 * time.Millisecond,
		HTTPAddr:    addr,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proc := DefaultProcess()
	proc.LogLevel = "error"
	noEnv := func(string) (string, bool) { return "", false }
	stop := runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, noEnv, kafkax.Config{Brokers: brokers}, rc, sc, cfg, io.Discard)
	})
	defer stop()

	code := func(path string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool { return code("/readyz") == http.StatusOK })
	if c := code("/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz = %d when ready", c)
	}

	mr.Close() // Redis goes down
	testenv.Eventually(t, 30*time.Second, "/readyz 503 with Redis down", func() bool { return code("/readyz") == http.StatusServiceUnavailable })
	// Longer than the consumer's Health limit (3 x 100ms + 2s/10): the
	// lag checks fail, and liveness still holds.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c := code("/healthz"); c != http.StatusOK {
			t.Fatalf("/healthz = %d with Redis down, want 200: a restart does not bring Redis back", c)
		}
	}
	if c := code("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d after 2s of outage, want 503", c)
	}

	if err := mr.Restart(); err != nil { // the same address, its data kept
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "/readyz 200 once Redis is back", func() bool { return code("/readyz") == http.StatusOK })
	stop()
}
