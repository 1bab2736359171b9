package app

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

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
	addr, stop := serveBeta(t, ctx, "redis://"+mr.Addr()+"/0", "a\n", func(cfg *ServeConfig) {
		// Health's limit: 3 x 100ms + 3s. The consumer retries a batch
		// for longer than the outage lasts here.
		cfg.Consumer.RetryTimeout = 30 * time.Second
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
