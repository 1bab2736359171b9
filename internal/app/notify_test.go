package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// hookReceiver is a webhook endpoint on loopback keeping the payloads
// whose signature it verified itself (HMAC-SHA256 of "<t>.<body>").
type hookReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	payloads []map[string]any
	bad      []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		var ts, v1 string
		for _, kv := range strings.Split(r.Header.Get("Cohortsync-Signature"), ",") {
			if k, v, _ := strings.Cut(kv, "="); k == "t" {
				ts = v
			} else if k == "v1" {
				v1 = v
			}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		if got, _ := hex.DecodeString(v1); !hmac.Equal(got, mac.Sum(nil)) {
			h.bad = append(h.bad, r.Header.Get("Cohortsync-Signature"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil {
			h.bad = append(h.bad, string(body))
		}
		h.payloads = append(h.payloads, p)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) got() ([]map[string]any, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.payloads...), append([]string(nil), h.bad...)
}

// failingMapping applies a catalog whose mapping's CSV lacks its
// id_property column (every run fails once started) and notifies hook.
func failingMapping(t *testing.T, ctx context.Context, hook, schedule string) (redisx.Config, catalogstore.Config) {
	t.Helper()
	name := testenv.Name(t)
	rc := redisAt(testenv.RedisURL(t))
	return rc, applyCatalog(t, ctx, rc, name, betaCatalog(fmt.Sprintf("{url: %q}", rc.URL), name, writeCohort(t, "a", "b"), schedule, fmt.Sprintf(`    id_property: email
    notify:
      webhook: {url: %q, secret_env: HOOK_SECRET, events: [failed]}
`, hook)))
}

func hookEnv(name string) (string, bool) {
	if name == "HOOK_SECRET" {
		return "hook-secret", true
	}
	return "", false
}

// TestFailedRunNotifiesTheWebhook: serve's scheduler runs a mapping that
// fails; its webhook gets a signed "failed" notification, the delivery is
// recorded with the run (runs show prints it) and counted on /metrics.
func TestFailedRunNotifiesTheWebhook(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	hook := newHookReceiver(t, "hook-secret")
	rc, sc := failingMapping(t, ctx, hook.srv.URL+"/cohortsync", "hourly")
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = testenv.Name(t), t.TempDir(), 1
	addr := testenv.ClosedAddr(t)
	cfg := ServeConfig{
		Parts:    []string{PartScheduler},
		Runs:     mappingrun.Config{Producer: pcfg},
		Schedule: schedule.Config{Tick: 50 * time.Millisecond, MaxJitter: schedule.NoJitter, MaxAttempts: 1},
		HTTPAddr: addr,
		Notify:   notify.Config{Retry: retry.Policy{Initial: 10 * time.Millisecond, Timeout: 5 * time.Second}},
	}
	stop := startServe(t, ctx, brokers, rc, sc, cfg)
	defer stop()

	var payloads []map[string]any
	testenv.Eventually(t, 60*time.Second, "a failed notification", func() bool {
		payloads, _ = hook.got()
		return len(payloads) > 0
	})
	p := payloads[0]
	if p["event"] != "failed" || p["mapping"] != "beta" || p["destination"] != "staging" || p["outcome"] != "failed" ||
		p["trigger"] != "catch-up" || !strings.Contains(fmt.Sprint(p["error"]), "email") {
		t.Errorf("payload = %v", p)
	}
	if _, bad := hook.got(); len(bad) > 0 {
		t.Errorf("requests with a bad signature or body: %q", bad)
	}
	want := `cohortsync_notify_deliveries_total{channel="webhook",event="failed",status="delivered"} 1` + "\n"
	testenv.Eventually(t, 10*time.Second, "the delivery on /metrics", func() bool {
		return strings.Contains(get(t, "http://"+addr+"/metrics"), want)
	})
	stop()

	run := fmt.Sprint(p["run"])
	var out strings.Builder
	if err := RunsShow(ctx, rc, sc, run, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("runs show:\n%s", out.String())
	if !strings.Contains(out.String(), "notifications\n") || !strings.Contains(out.String(), "  webhook  staging      failed  delivered  1 ") ||
		!strings.Contains(out.String(), hook.srv.URL+"/cohortsync") {
		t.Errorf("runs show %s:\n%s\nwant its webhook delivery", run, out.String())
	}
}

// TestAppliedRunNotifies: a mapping asking for "applied" is told once the
// consumer group has committed past its run (serve's run watcher), after
// the "finished" of its publication, each once.
func TestAppliedRunNotifies(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	hook := newHookReceiver(t, "hook-secret")
	f := newCSVMappingWith(t, ctx, "churn", fmt.Sprintf(`    notify:
      webhook: {url: %q, secret_env: HOOK_SECRET, events: [finished, applied]}
`, hook.srv.URL), "a", "b", "c")
	cfg := scheduledServe(t, testenv.Name(t))
	cfg.Parts, cfg.ApplyCheck = []string{PartScheduler, PartConsumer}, 100*time.Millisecond
	cfg.Notify = notify.Config{Retry: retry.Policy{Initial: 10 * time.Millisecond, Timeout: 5 * time.Second}}
	stop := startServe(t, ctx, brokers, f.rc, f.sc, cfg)
	defer stop()
	var payloads []map[string]any
	testenv.Eventually(t, 60*time.Second, "finished and applied notifications", func() bool {
		payloads, _ = hook.got()
		return len(payloads) >= 2
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive by now
	payloads, bad := hook.got()
	if len(bad) > 0 || len(payloads) != 2 {
		t.Fatalf("payloads %v, bad %q: want one finished and one applied", payloads, bad)
	}
	if payloads[0]["event"] != "finished" || payloads[1]["event"] != "applied" || payloads[0]["run"] != payloads[1]["run"] {
		t.Fatalf("payloads %v: want finished then applied, of one run", payloads)
	}
}

// TestSyncMappingNotifies: sync --mapping tells the mapping's webhook how
// the run ended before it returns.
func TestSyncMappingNotifies(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	hook := newHookReceiver(t, "hook-secret")
	rc, sc := failingMapping(t, ctx, hook.srv.URL, "daily")
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = testenv.Name(t), t.TempDir(), 1
	proc := DefaultProcess()
	proc.LogLevel = "error"
	err := SyncMapping(ctx, proc, hookEnv, kafkax.Config{Brokers: brokers}, rc, sc, mappingrun.Config{Producer: pcfg}, RunOptions{}, "beta", io.Discard, io.Discard)
	if err == nil {
		t.Fatal("the run of a CSV without its id column succeeded")
	}
	payloads, bad := hook.got()
	if len(payloads) != 1 || payloads[0]["event"] != "failed" || payloads[0]["trigger"] != "manual" || len(bad) > 0 {
		t.Fatalf("when SyncMapping returned, the webhook had %v (bad %q); want one failed notification", payloads, bad)
	}
}

// TestServeConfigNotify: the notification settings are checked with the
// scheduler part, whose runs they tell of, and only then.
func TestServeConfigNotify(t *testing.T) {
	valid := func() ServeConfig {
		return ServeConfig{Parts: []string{PartScheduler}, Runs: mappingrun.Config{Producer: producer.DefaultConfig()}}
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[ServeConfig]{
		{Name: "no SMTP server", Change: func(*ServeConfig) {}},
		{Name: "an SMTP server without a sender", Change: func(c *ServeConfig) { c.Notify.SMTP.Addr = "smtp.example.com:587" },
			Want: `--smtp-from: required, want the sender's address (user@example.com) with --smtp-addr`},
		{Name: "the receiver notifies too (push mappings' runs)", Change: func(c *ServeConfig) {
			c.Parts, c.ReceiverAddr, c.Notify.SMTP.Addr = []string{PartReceiver}, "127.0.0.1:0", "smtp.example.com:587"
		}, Want: `--smtp-from: required, want the sender's address (user@example.com) with --smtp-addr`},
		{Name: "the consumer alone does not notify", Change: func(c *ServeConfig) {
			c.Parts, c.Notify.SMTP.Addr = []string{PartConsumer}, "smtp.example.com:587"
		}},
	})
}

// TestPushMappingRunsNotify: a batch pushed into a push mapping is a run of
// it: the mapping's webhook is told "finished" after the 204 and
// "applied" once the consumer committed past it (serve's receiver part
// runs the run watcher).
func TestPushMappingRunsNotify(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	hook := newHookReceiver(t, "hook-secret")
	name := testenv.Name(t)
	clientSideID := fmt.Sprintf("%024x", time.Now().UnixNano())
	rc := redisAt(testenv.RedisURL(t))
	sc := applyCatalog(t, ctx, rc, name, fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    client_side_id: %s
mappings:
  - name: partners
    source: {push: true, integration: rudderstack, cohort: c1}
    segment: partner-audience
    destinations: [production]
    notify:
      webhook: {url: %q, secret_env: HOOK_SECRET, events: [finished, applied]}
`, rc.URL, clientSideID, hook.srv.URL))
	var token strings.Builder
	if err := DestinationsToken(ctx, rc, sc, "production", &token); err != nil {
		t.Fatal(err)
	}
	addr := testenv.ClosedAddr(t)
	cfg := scheduledServe(t, name)
	cfg.Parts, cfg.ReceiverAddr, cfg.ApplyCheck = []string{PartConsumer, PartReceiver}, addr, 100*time.Millisecond
	cfg.Notify = notify.Config{Retry: retry.Policy{Initial: 10 * time.Millisecond, Timeout: 5 * time.Second}}
	stop := startServe(t, ctx, brokers, rc, sc, cfg)
	defer stop()
	body := fmt.Sprintf(`{"environmentId": %q, "cohortId": "c1", "listData": {"add": [{"id": "a"}, {"id": "b"}], "remove": []}}`, clientSideID)
	testenv.Eventually(t, 30*time.Second, "the push accepted", func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v2/segment-targets/rudderstack", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", strings.TrimSpace(token.String()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false // not listening yet
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("push: status %d", resp.StatusCode)
		}
		return true
	})
	testenv.Eventually(t, 60*time.Second, "finished and applied notifications", func() bool {
		p, _ := hook.got()
		return len(p) >= 2
	})
	payloads, bad := hook.got()
	if len(bad) > 0 || len(payloads) != 2 || payloads[0]["event"] != "finished" || payloads[1]["event"] != "applied" ||
		payloads[0]["trigger"] != "push" || payloads[0]["mapping"] != "partners" || payloads[0]["run"] != payloads[1]["run"] {
		t.Fatalf("payloads %v, bad %q: want finished then applied of the push run", payloads, bad)
	}
}
