package app

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestServeProbesThroughARedisOutage pins what deploy/k8s/serve.yaml's
// probes rely on: with Redis down (the control Redis, which is also the
// destination here), /readyz fails, so the replica takes no traffic, but
// /healthz does not, so Kubernetes does not restart every replica for an
// outage a restart cannot end; once Redis is back, /readyz passes again.
// The outage needs a Redis the test can stop: a miniredis of its own,
// whatever the backend of the suite.
func TestServeProbesThroughARedisOutage(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	mr := miniredis.RunT(t)
	addr, stop := serveBeta(t, ctx, "redis://"+mr.Addr()+"/0", []string{"a"}, func(cfg *ServeConfig) {
		// Health's limit: 3 x 100ms + 3s. The consumer retries a batch
		// for longer than the outage lasts here.
		cfg.Consumer.RetryTimeout = 30 * time.Second
	})
	defer stop()

	code := probeCode(t, ctx, addr)
	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool { return code("/readyz") == http.StatusOK })
	if c := code("/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz = %d when ready", c)
	}

	mr.Close() // Redis goes down
	testenv.Eventually(t, 30*time.Second, "/readyz 503 with Redis down", func() bool { return code("/readyz") == http.StatusServiceUnavailable })
	// Longer than the consumer's Health limit: the lag checks fail, and
	// liveness still holds.
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c := code("/healthz"); c != http.StatusOK {
			t.Fatalf("/healthz = %d with Redis down, want 200: a restart does not bring Redis back", c)
		}
	}
	if c := code("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d after 4s of outage, want 503", c)
	}

	if err := mr.Restart(); err != nil { // the same address, its data kept
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "/readyz 200 once Redis is back", func() bool { return code("/readyz") == http.StatusOK })
	stop()
}

// TestConsumeProbesThroughARedisOutage is the same pin for `consume`
// (deploy/k8s/consumer.yaml): its liveness used to be the lag checks'
// health, so a Redis outage of a few seconds failed /healthz and would
// have restarted every consumer pod.
func TestConsumeProbesThroughARedisOutage(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	brokers, _ := testenv.Kafka(t)
	kc := kafkax.Config{Brokers: brokers, DialTimeout: 5 * time.Second}
	noEnv := func(string) (string, bool) { return "", false }
	proc := DefaultProcess()
	proc.LogLevel = "error"
	pcfg, req, csv, opts := twoMemberSync(t)
	if err := Sync(ctx, proc, noEnv, kc, pcfg, req, csv, opts, io.Discard, io.Discard); err != nil { // creates the topic
		t.Fatalf("Sync = %v", err)
	}

	mr := miniredis.RunT(t)
	rc := redisAt("redis://" + mr.Addr() + "/0")
	ccfg := consumer.Config{Topic: pcfg.Topic, GroupID: testenv.Name(t), RedisPrefix: testenv.Name(t),
		SyncInterval: 100 * time.Millisecond, RetryTimeout: 30 * time.Second}
	addr := testenv.ClosedAddr(t)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- Consume(cctx, proc, noEnv, kc, rc, addr, ccfg, io.Discard) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Consume = %v, want nil", err)
		}
	}()
	code := probeCode(t, ctx, addr)

	testenv.Eventually(t, 60*time.Second, "/readyz 200", func() bool { return code("/readyz") == http.StatusOK })
	// Applied and caught up first: the lag checks then write to Redis.
	testenv.Eventually(t, 60*time.Second, "a and b applied", func() bool {
		return mr.Exists(bigsegments.IncludeKey(ccfg.RedisPrefix, "a")) && mr.Exists(bigsegments.IncludeKey(ccfg.RedisPrefix, "b"))
	})
	mr.Close()
	testenv.Eventually(t, 30*time.Second, "/readyz 503 with Redis down", func() bool { return code("/readyz") == http.StatusServiceUnavailable })
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c := code("/healthz"); c != http.StatusOK {
			t.Fatalf("/healthz = %d with Redis down, want 200: a restart does not bring Redis back", c)
		}
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "/readyz 200 once Redis is back", func() bool { return code("/readyz") == http.StatusOK })
}

// probeCode returns a GET of a path on addr, answering its status (0 when
// the server does not answer).
func probeCode(t *testing.T, ctx context.Context, addr string) func(path string) int {
	return func(path string) int {
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
}
