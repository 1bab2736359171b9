package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// lockedBuffer is a bytes.Buffer safe for the exporters' goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSyncThenConsumeServesHTTP runs the two commands' wiring: a sync, then
// a consumer with Redis opened from its settings and the HTTP server on
// --http-addr, and telemetry from OTEL_* variables (the console exporter,
// whose output shows that both parts got the provider). /readyz turns
// ready, /metrics counts what was applied, and cancellation returns nil.
func TestSyncThenConsumeServesHTTP(t *testing.T) {
	spans := &lockedBuffer{}
	prev := telemetry.ConsoleOutput
	telemetry.ConsoleOutput = spans
	t.Cleanup(func() { telemetry.ConsoleOutput = prev })
	env := func(k string) (string, bool) {
		if k == telemetry.EnvTracesExporter {
			return "console", true
		}
		return "", false
	}
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	proc := DefaultProcess()
	proc.LogLevel = "warn"

	pcfg := producer.DefaultConfig()
	kc := kafkax.Config{Brokers: brokers}
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = testenv.Name(t), t.TempDir(), 2
	csv := filepath.Join(t.TempDir(), "cohort.csv")
	if err := os.WriteFile(csv, []byte("user_id\na\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := producer.SyncRequest{Env: "staging", Segment: "seg", Generation: 1, ContextKind: "user", Source: "csv"}
	var summary bytes.Buffer
	if err := Sync(ctx, proc, env, kc, pcfg, req, csv, csvfile.Options{IDColumn: "user_id"}, &summary, io.Discard); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	if !strings.Contains(spans.String(), `"Name":"sync"`) {
		t.Errorf("no sync span exported:\n%s", spans.String())
	}

	ccfg := consumer.Config{Topic: pcfg.Topic, GroupID: testenv.Name(t), RedisPrefix: testenv.Name(t), SyncInterval: 100 * time.Millisecond}
	rc := redisAt(testenv.RedisURL(t))
	addr := testenv.ClosedAddr(t)
	stop := runUntilCancelled(t, ctx, "Consume", func(ctx context.Context) error {
		return Consume(ctx, proc, env, kc, rc, addr, ccfg, io.Discard)
	})
	defer stop()

	get := func(path string) (int, string) {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	testenv.Eventually(t, 30*time.Second, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == 200 })
	var metrics string
	testenv.Eventually(t, 30*time.Second, "every event applied and no lag", func() bool {
		_, metrics = get("/metrics")
		return strings.Contains(metrics, "cohortsync_consumer_applied_total 3\n") && strings.Contains(metrics, "cohortsync_consumer_lag 0\n")
	})
	for _, h := range []string{"cohortsync_consumer_batch_apply_seconds_count", "cohortsync_consumer_end_to_end_lag_seconds_count"} {
		if !strings.Contains(metrics, h+" ") || strings.Contains(metrics, h+" 0\n") {
			t.Errorf("/metrics: histogram %s observed nothing:\n%s", h, metrics)
		}
	}
	// What the settings opened is the Redis the sync's members reached, with
	// synchronized_on set once the group caught up.
	rdb, err := redisx.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdb.Close() }()
	var members []string
	if err := segmentstore.Members(ctx, rdb, ccfg.RedisPrefix, bigsegments.Ref(req.Segment, req.Generation), func(k string) error {
		members = append(members, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(members)
	if want := []string{"a", "b", "c"}; !slices.Equal(members, want) {
		t.Errorf("members in Redis = %q, want %q", members, want)
	}
	if _, ok, err := segmentstore.SyncTime(ctx, rdb, ccfg.RedisPrefix); err != nil || !ok {
		t.Errorf("synchronized_on = set %v, %v; want set once caught up", ok, err)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	stop()
	if !strings.Contains(spans.String(), `"Name":"apply batch"`) {
		t.Errorf("no apply batch span exported")
	}
	if code, _ := get("/healthz"); code != 0 {
		t.Errorf("/healthz answered %d after Consume returned: the server outlived it", code)
	}
}
