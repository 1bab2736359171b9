package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

const testSecret = "s3cret-for-tests"

func secretEnv(name string) (string, bool) {
	if name == "HOOK_SECRET" {
		return testSecret, true
	}
	return "", false
}

// received is one request the test's webhook receiver got.
type received struct {
	header  http.Header
	body    []byte
	at      time.Time
	signErr error // the receiver's own verification of the signature
}

// receiver is a webhook endpoint on loopback answering with the statuses
// of answer in turn (the last one repeated), verifying each signature as
// a receiver written from the README would.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer []func(http.ResponseWriter)
}

func newReceiver(t *testing.T, answer ...func(http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Error(err)
		}
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, at: time.Now(), signErr: verify(req.Header.Get("Cohortsync-Signature"), body, time.Now())})
		a := r.answer[min(len(r.got), len(r.answer))-1]
		r.mu.Unlock()
		a(w)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

// verify checks a Cohortsync-Signature header independently of the
// package: t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>, within
// five minutes of now.
func verify(header string, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("no timestamp")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp out of tolerance: a replay")
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return errors.New("v1 is not hex")
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), want) {
		return errors.New("signature mismatch")
	}
	return nil
}

// failedRun is a failed run with exclusions.
func failedRun(started time.Time) Run {
	return Run{Mapping: "beta", Destination: "production", Trigger: "scheduled", Summary: producer.Summary{
		Run: producer.NewRunID(started), Segment: "beta-users", Generation: 2, Outcome: producer.Failed, Error: "kafka: not enough replicas",
		Rows: 10, Keys: 7, Added: 4, Removed: 1, Unchanged: 3, Excluded: map[string]int64{"invalid_key": 2}, Duplicates: 1,
		Started: started, Duration: 1500 * time.Millisecond}}
}

// history is a run store on the test's Redis.
func history(t *testing.T) *runstore.Store {
	b := testenv.Redis(t)
	prefix := testenv.Name(t) + ":"
	testenv.DropPrefix(t, b.Client, testenv.Name(t))
	h, err := runstore.New(b.Client, runstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fastRetry retries within 1.5s, in tens of milliseconds.
var fastRetry = retry.Policy{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, Timeout: 1500 * time.Millisecond}

// quiet is the tests' logger: the deliveries' records are what they check.
var quiet = slog.New(slog.DiscardHandler)

// deliveries waits for run's n deliveries to be recorded.
func deliveries(t *testing.T, h *runstore.Store, run string, n int) []runstore.Delivery {
	t.Helper()
	var ds []runstore.Delivery
	testenv.Eventually(t, 10*time.Second, strconv.Itoa(n)+" deliveries recorded", func() bool {
		var err error
		ds, err = h.Deliveries(t.Context(), run)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) >= n
	})
	return ds
}

func TestWebhook(t *testing.T) {
	retryAfter1 := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}
	for _, tc := range []struct {
		name   string
		answer []func(http.ResponseWriter)
		// want: the delivery's final status, attempts and error.
		status, err  string
		attempts     int
		minTook      time.Duration // at least (Retry-After)
		maxTook      time.Duration
		wantRequests int
	}{
		{name: "500 twice then 204: retried until delivered", answer: []func(http.ResponseWriter){status(500), status(500), status(204)},
			status: StatusDelivered, attempts: 3, maxTook: 2 * time.Second},
		{name: "400 is final: one request, failed", answer: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "unknown mapping\n")
		}}, status: StatusFailed, attempts: 1, err: `HTTP 400 Bad Request: "unknown mapping" (not retried)`, maxTook: time.Second},
		{name: "429 with Retry-After 1s waits that second, not the 10ms backoff", answer: []func(http.ResponseWriter){retryAfter1, status(200)},
			status: StatusDelivered, attempts: 2, minTook: time.Second, maxTook: 3 * time.Second},
		{name: "408 is retried", answer: []func(http.ResponseWriter){status(408), status(202)}, status: StatusDelivered, attempts: 2, maxTook: 2 * time.Second},
		{name: "a receiver that keeps failing is given up within the bound", answer: []func(http.ResponseWriter){status(503)},
			status: StatusFailed, err: "webhook http://127.0.0.1:", maxTook: 3 * time.Second},
		{name: "a Retry-After past the bound is given up at once", answer: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		}}, status: StatusFailed, attempts: 1, err: "HTTP 503 Service Unavailable", maxTook: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := history(t)
			rcv := newReceiver(t, tc.answer...)
			var mu sync.Mutex
			var observed []runstore.Delivery
			n, err := New(t.Context(), Config{Retry: fastRetry, AttemptTimeout: time.Second, LookupEnv: secretEnv,
				ExclusionsURL: "https://console.example.com/runs/{run}/exclusions.csv",
				OnDelivery:    func(d runstore.Delivery) { mu.Lock(); observed = append(observed, d); mu.Unlock() }}, h, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			run := failedRun(time.Now().Add(-time.Minute))
			hook := &catalog.Webhook{URL: rcv.srv.URL + "/hooks/cohortsync?team=growth", Secret: catalog.SecretRef{Env: "HOOK_SECRET"}, Events: catalog.NotifyEvents}
			start := time.Now()
			n.Notify(catalog.Notify{Webhook: hook}, run)
			d := deliveries(t, h, run.Summary.Run, 1)[0]
			took := time.Since(start)

			if d.Status != tc.status || tc.attempts > 0 && d.Attempts != tc.attempts || !strings.Contains(d.Error, tc.err) {
				t.Errorf("delivery = %+v; want status %s, %d attempts, error containing %q", d, tc.status, tc.attempts, tc.err)
			}
			if tc.attempts == 0 && d.Attempts < 3 {
				t.Errorf("%d attempts; want retries", d.Attempts)
			}
			if took < tc.minTook || took > tc.maxTook {
				t.Errorf("took %v, want within [%v, %v]", took, tc.minTook, tc.maxTook)
			}
			if d.Channel != ChannelWebhook || d.Event != "failed" || d.Destination != "production" || d.Target != rcv.srv.URL+"/hooks/cohortsync?..." {
				t.Errorf("delivery = %+v", d)
			}
			reqs := rcv.requests()
			if len(reqs) != d.Attempts {
				t.Errorf("%d requests received, %d attempts recorded", len(reqs), d.Attempts)
			}
			for i, r := range reqs {
				if r.signErr != nil {
					t.Errorf("request %d: signature: %v", i, r.signErr)
				}
				if id := r.header.Get("Cohortsync-Delivery"); id != d.ID {
					t.Errorf("request %d: delivery id %q, want %q on every attempt", i, id, d.ID)
				}
				if i > 0 && string(r.body) != string(reqs[0].body) {
					t.Errorf("request %d: another body than the first's", i)
				}
			}
			var p map[string]any
			if err := json.Unmarshal(reqs[0].body, &p); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"delivery": d.ID, "event": "failed", "run": run.Summary.Run, "mapping": "beta", "destination": "production",
				"segment": "beta-users", "generation": 2.0, "trigger": "scheduled", "outcome": "failed", "error": "kafka: not enough replicas",
				"started": run.Summary.Started.Format(time.RFC3339Nano), "duration_ms": 1500.0,
				"counts": map[string]any{"rows": 10.0, "members": 7.0, "added": 4.0, "removed": 1.0, "unchanged": 3.0, "excluded": 2.0,
					"excluded_by_reason": map[string]any{"invalid_key": 2.0}, "duplicates": 1.0, "events": 0.0},
				"exclusions": map[string]any{"command": "cohortsync runs exclusions " + run.Summary.Run,
					"url": "https://console.example.com/runs/" + run.Summary.Run + "/exclusions.csv"}}
			if g, w := jsonText(t, p), jsonText(t, want); g != w {
				t.Errorf("payload\n%s\nwant\n%s", g, w)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(observed) != 1 || observed[0].Status != tc.status {
				t.Errorf("OnDelivery saw %+v", observed)
			}
		})
	}
}

func jsonText(t *testing.T, v any) string {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWebhookEvents: only the events a webhook lists are sent, and a
// secret that cannot be read fails the delivery without a request.
func TestWebhookEvents(t *testing.T) {
	h := history(t)
	rcv := newReceiver(t, status(204))
	n, err := New(t.Context(), Config{Retry: fastRetry, LookupEnv: secretEnv}, h, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ok := failedRun(time.Now())
	ok.Summary.Outcome, ok.Summary.Error, ok.Summary.Run = producer.Succeeded, "", producer.NewRunID(time.Now())+"-ok"
	n.Notify(catalog.Notify{Webhook: &catalog.Webhook{URL: rcv.srv.URL, Secret: catalog.SecretRef{Env: "HOOK_SECRET"}, Events: []catalog.NotifyEvent{catalog.EventFailed}}}, ok)
	unset := failedRun(time.Now())
	n.Notify(catalog.Notify{Webhook: &catalog.Webhook{URL: rcv.srv.URL, Secret: catalog.SecretRef{Env: "UNSET_SECRET"}, Events: catalog.NotifyEvents}}, unset)
	d := deliveries(t, h, unset.Summary.Run, 1)[0]
	if d.Status != StatusFailed || d.Attempts != 0 || d.Error != `mapping "beta": webhook secret: environment variable UNSET_SECRET: not set` {
		t.Errorf("delivery with an unset secret = %+v", d)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rcv.requests(); len(got) != 0 {
		t.Errorf("%d requests; want none (finished is not among the events, and the other secret is unset)", len(got))
	}
	if ds, err := h.Deliveries(t.Context(), ok.Summary.Run); err != nil || len(ds) != 0 {
		t.Errorf("deliveries of the unwanted event: %+v, %v", ds, err)
	}
}

// TestQueueFullDropsWithoutBlocking: a notification that finds the queue
// full is dropped and counted at once; Close waits for the others, and
// gives up on a receiver that hangs after CloseTimeout.
func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	h := history(t)
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(204)
	})
	n, err := New(t.Context(), Config{QueueSize: 1, Workers: 1, Retry: fastRetry, AttemptTimeout: 10 * time.Second,
		CloseTimeout: 300 * time.Millisecond, LookupEnv: secretEnv}, h, quiet)
	if err != nil {
		t.Fatal(err)
	}
	to := catalog.Notify{Webhook: &catalog.Webhook{URL: rcv.srv.URL, Secret: catalog.SecretRef{Env: "HOOK_SECRET"}, Events: catalog.NotifyEvents}}
	first := failedRun(time.Now())
	n.Notify(to, first)
	testenv.Eventually(t, 5*time.Second, "the first delivery under way", func() bool { return len(rcv.requests()) == 1 })
	start := time.Now()
	n.Notify(to, failedRun(time.Now()))          // queued
	n.Notify(to, failedRun(time.Now()))          // dropped
	if d := time.Since(start); d > time.Second { // the receiver hangs 10s
		t.Errorf("Notify took %v with a full queue; want no wait", d)
	}
	if n.Dropped() != 1 {
		t.Errorf("Dropped() = %d, want 1", n.Dropped())
	}
	start = time.Now()
	err = n.Close()
	if !errors.Is(err, ErrAbandoned) {
		t.Errorf("Close = %v, want ErrAbandoned (the receiver hangs)", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v, want about its 300ms timeout", d)
	}
	close(release)
	if err := n.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	d := deliveries(t, h, first.Summary.Run, 1)[0]
	if d.Status != StatusFailed || !strings.Contains(d.Error, context.Canceled.Error()) {
		t.Errorf("the abandoned delivery = %+v, want failed, cancelled", d)
	}
	if n.Dropped() != 2 {
		t.Errorf("Dropped() = %d, want 2 (the queued one, never started, too)", n.Dropped())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Mon, 07 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Mon, 07 Dec 2026 11:00:00 GMT", 0, true}, // past: at once
		{"-1", 0, false},
		{"soon", 0, false},
	} {
		if got, ok := retryAfter(tc.header, now); got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRunEvent(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  Run
		want catalog.NotifyEvent
	}{
		{"succeeded", Run{Summary: producer.Summary{Outcome: producer.Succeeded}}, catalog.EventFinished},
		{"failed", Run{Summary: producer.Summary{Outcome: producer.Failed, Error: "x"}}, catalog.EventFailed},
		{"refused by a guard", Run{Summary: producer.Summary{Outcome: producer.Refused, Error: "shrink"}}, catalog.EventRefused},
		{"did not start", Run{Err: "amplitude key unset"}, catalog.EventFailed},
		{"succeeded, then failed to close its source", Run{Summary: producer.Summary{Outcome: producer.Succeeded}, Err: "close"}, catalog.EventFailed},
	} {
		if got := tc.run.Event(); got != tc.want {
			t.Errorf("%s: Event() = %s, want %s", tc.name, got, tc.want)
		}
	}
}
