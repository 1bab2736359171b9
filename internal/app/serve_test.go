package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// TestServeExposesSchedulerAndConsumerMetrics runs serve with both parts
// on a stored hourly mapping: the scheduler runs it (its first slot is a
// catch-up), the consumer applies its events, and the one /metrics shows
// both: the scheduler's decisions and run, and the consumer's counts.
// Cancellation returns nil.
func TestServeExposesSchedulerAndConsumerMetrics(t *testing.T) {
	ctx := testenv.Context(t, 2*time.Minute)
	addr, stop := serveBeta(t, ctx, testenv.RedisURL(t), []string{"a", "b", "c"}, nil)
	defer stop()

	waitMetrics(t, addr,
		`cohortsync_schedule_decisions_total{action="run",mapping="beta"} 1`+"\n",
		`cohortsync_schedule_decisions_total{action="up-to-date",mapping="beta"} `,
		`cohortsync_schedule_runs_total{mapping="beta",outcome="done",trigger="catch-up"} 1`+"\n",
		`cohortsync_schedule_run_duration_seconds_count{mapping="beta",outcome="done"} 1`+"\n",
		`cohortsync_schedule_last_success_timestamp_seconds{mapping="beta"} `,
		"cohortsync_schedule_runs_in_progress 0\n",
		"cohortsync_consumer_applied_total 3\n",
		"cohortsync_consumer_unrouted_total 0\n")
	stop()
}

// serveBeta stores the mapping beta of a CSV of members (hourly, into the
// destination staging on redisURL, which is the control Redis too) and
// runs serve with the scheduler, the consumer and the HTTP server
// (scheduledServe), its config changed by change when not nil, until stop
// (see startServe). It returns the HTTP server's address.
func serveBeta(t *testing.T, ctx context.Context, redisURL string, members []string, change func(*ServeConfig)) (addr string, stop func()) {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	rc, sc := storeBetaAt(t, ctx, name, redisURL, members...)
	cfg := scheduledServe(t, name)
	if change != nil {
		change(&cfg)
	}
	return cfg.HTTPAddr, startServe(t, ctx, brokers, rc, sc, cfg)
}

// scheduledServe is the configuration of serve's scheduler and consumer on
// topic and group name, ticking and polling fast, with its HTTP server on
// a free address. Tests of other parts set Parts and what those need.
func scheduledServe(t *testing.T, name string) ServeConfig {
	t.Helper()
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = name, t.TempDir(), 2
	ccfg := consumer.DefaultConfig()
	ccfg.Topic, ccfg.GroupID, ccfg.SyncInterval = name, name, 100*time.Millisecond
	cfg := ServeConfig{
		Runs:        mappingrun.Config{Producer: pcfg},
		Schedule:    schedule.Config{Tick: 50 * time.Millisecond, MaxJitter: schedule.NoJitter},
		Consumer:    ccfg,
		CatalogPoll: 100 * time.Millisecond,
		HTTPAddr:    testenv.ClosedAddr(t),
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startServe runs Serve with cfg (validated first) and the webhook's
// secret in its environment until the returned stop or the test's end.
func startServe(t *testing.T, ctx context.Context, brokers []string, rc redisx.Config, sc catalogstore.Config, cfg ServeConfig) (stop func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proc := DefaultProcess()
	proc.LogLevel = "error"
	return runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, hookEnv, kafkax.Config{Brokers: brokers}, rc, sc, cfg, io.Discard)
	})
}

// waitMetrics waits (60s at most) until the /metrics of the HTTP server at
// addr holds every line of want; the last ones read are logged if it
// fails.
func waitMetrics(t *testing.T, addr string, want ...string) {
	t.Helper()
	var metrics string
	defer func() {
		if t.Failed() {
			t.Logf("last /metrics:\n%s", metrics)
		}
	}()
	testenv.Eventually(t, 60*time.Second, "the run done and its events applied, on /metrics", func() bool {
		metrics = get(t, "http://"+addr+"/metrics")
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				return false
			}
		}
		return true
	})
}

// storeBeta stores, under control prefix name, destination staging (on
// the test's Redis, prefix <name>-dst) and the hourly CSV mapping beta of
// users a, b and c into segment beta-users there.
func storeBeta(t *testing.T, ctx context.Context, name string) (redisx.Config, catalogstore.Config) {
	t.Helper()
	return storeBetaAt(t, ctx, name, testenv.RedisURL(t), "a", "b", "c")
}

// storeBetaAt is storeBeta on redisURL with members.
func storeBetaAt(t *testing.T, ctx context.Context, name, redisURL string, members ...string) (redisx.Config, catalogstore.Config) {
	t.Helper()
	rc := redisAt(redisURL)
	return rc, applyCatalog(t, ctx, rc, name, betaCatalog(fmt.Sprintf("{url: %q}", redisURL), name, writeCohort(t, members...), "hourly", ""))
}

// runUntilCancelled starts run(ctx) in a goroutine and returns stop, which
// cancels it and checks that it returns nil within 20s; stop is idempotent
// (deferred, and called where the test wants the shutdown checked).
func runUntilCancelled(t *testing.T, ctx context.Context, what string, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	stopped := false
	return func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("%s = %v, want nil", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not return within 20s of cancellation", what)
		}
	}
}

// get returns the body of a GET of url, "" if it fails (the server may
// not be listening yet).
func get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}
