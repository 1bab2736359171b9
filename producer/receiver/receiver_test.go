package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/publish/publishtest"
	"github.com/cohortsync/cohortsync/schema"
)

// testCatalog: production is named by its client-side ID, staging by its
// name (its environment is "stage", which events carry).
const testCatalog = `destinations:
  - name: production
    redis: {url: "redis://127.0.0.1:1/0"}
    client_side_id: 5f3c2a1b9d8e7f6a5b4c3d2e
  - name: staging
    environment: stage
    redis: {url: "redis://127.0.0.1:1/1"}
`

const prodID = "5f3c2a1b9d8e7f6a5b4c3d2e"

type fixture struct {
	url     string
	rcv     *Receiver
	store   *catalogstore.Store
	seq     *segmentlease.SeqAllocator
	pcfg    publish.Config
	kf      *kafkax.Factory
	tokens  map[string]string
	streams *gatedStreams
	history *runstore.Store // every accepted batch is recorded in it
}

// gatedStreams holds Stream calls while its gate is closed, to fill the
// receiver's in-flight slots.
type gatedStreams struct {
	Streams
	mu   sync.Mutex
	gate chan struct{}
}

func (g *gatedStreams) Stream(ctx context.Context, o publish.Origin) (*publish.Stream, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.Streams.Stream(ctx, o)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t testing.TB, cfg Config, edit func(*publish.Config)) *fixture {
	t.Helper()
	ctx := t.Context()
	rdb := testenv.Redis(t).Client
	prefix := testenv.Name(t) + ":"
	store, err := catalogstore.New(rdb, catalogstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Decode("catalog.yaml", []byte(testCatalog))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, tokens: map[string]string{}}
	for _, d := range []string{"production", "staging"} {
		if f.tokens[d], err = store.RotateToken(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if f.seq, err = segmentlease.NewSeqAllocator(rdb, segmentlease.Config{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	f.pcfg, f.kf = publishtest.Config(t)
	f.pcfg.TopicPartitions = 3
	if edit != nil {
		edit(&f.pcfg)
	}
	pub, err := publish.New(f.pcfg, f.kf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if edit == nil {
		if err := publish.EnsureTopics(testenv.Context(t, time.Minute), f.pcfg, f.kf); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := NewParsers(Builtin()...)
	if err != nil {
		t.Fatal(err)
	}
	f.streams = &gatedStreams{Streams: pub}
	if f.history, err = runstore.New(rdb, runstore.Config{Prefix: prefix}); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet()
	f.rcv, err = New(cfg, Deps{Parsers: ps, Catalog: store, Seq: f.seq, Streams: f.streams, Control: rdb, Prefix: prefix, History: f.history, Topic: f.pcfg.Topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.rcv.Close() })
	srv := httptest.NewServer(f.rcv.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

type answer struct {
	status int
	header http.Header
	body   errorBody
}

func (f *fixture) post(t testing.TB, path, token, contentType string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("status %d: body %q is not the JSON error", resp.StatusCode, raw)
		}
	}
	return a
}

func (f *fixture) push(t testing.TB, integration, token, body string) answer {
	t.Helper()
	return f.post(t, "/api/v2/segment-targets/"+integration, token, "application/json", strings.NewReader(body))
}

func request(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// events reads the topic: key -> "op seq" of the last event, per key, of
// the segment.
func (f *fixture) events(t *testing.T) []schema.Event {
	t.Helper()
	var out []schema.Event
	for _, m := range testenv.ReadTopic(t, f.kf.Brokers(), f.pcfg.Topic, f.pcfg.TopicPartitions) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b schema.Event) int { return int(a.Seq) - int(b.Seq) })
	return out
}

// TestAnswers: every answer of the receiver, by the request that gets it.
func TestAnswers(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096}, nil)
	prod, staging := f.tokens["production"], f.tokens["staging"]
	amp := request(t, "requests/amplitude.json")
	big := `{"environmentId": "` + prodID + `", "batch": [` + strings.Repeat(`{"userId": "u", "value": true},`, 200) + `{}]}`
	for _, tc := range []struct {
		name, path, token, ctype, body string
		status                         int
		field                          string
	}{
		{"accepted", "segment-targets/amplitude", prod, "application/json", amp, 204, ""},
		{"accepted with charset and Bearer", "segment-targets/amplitude", "Bearer " + prod, "application/json; charset=utf-8", amp, 204, ""},
		{"environment by name", "segment-targets/sumatra", staging, "application/json", request(t, "requests/sumatra.json"), 204, ""},
		{"no token", "segment-targets/amplitude", "", "application/json", amp, 401, "Authorization"},
		{"unknown token", "segment-targets/amplitude", "cst_nope", "application/json", amp, 401, "Authorization"},
		{"another destination's token", "segment-targets/amplitude", staging, "application/json", amp, 403, "Authorization"},
		{"unknown integration", "segment-targets/optimizely", prod, "application/json", amp, 404, "integrationKey"},
		{"unknown environment", "segment-targets/amplitude", prod, "application/json", strings.Replace(amp, prodID, "nosuchenv", 1), 400, "/environmentId"},
		{"unknown webhook environment", "amplitude-cohort-webhooks/nosuchenv", prod, "application/json", request(t, "webhook-enter.json"), 400, "environment"},
		{"wrong content type", "segment-targets/amplitude", prod, "text/plain", amp, 415, "Content-Type"},
		{"no content type", "segment-targets/amplitude", prod, "", amp, 415, "Content-Type"},
		{"form content type", "segment-targets/amplitude", prod, "application/x-www-form-urlencoded", amp, 415, "Content-Type"},
		{"empty body", "segment-targets/amplitude", prod, "application/json", "", 400, "body"},
		{"invalid UTF-8", "segment-targets/amplitude", prod, "application/json", "{\"environmentId\": \"\xfe\"}", 400, "body"},
		{"deep nesting", "segment-targets/amplitude", prod, "application/json", strings.Repeat("[", 2000) + strings.Repeat("]", 2000), 400, "body"},
		{"wrong type", "segment-targets/rudderstack", prod, "application/json", `{"environmentId": "` + prodID + `", "cohortId": "c", "listData": {"add": "u1"}}`, 400, "/listData/add"},
		{"over the size limit", "segment-targets/amplitude", prod, "application/json", big, 413, "body"},
		{"GET", "segment-targets/amplitude", prod, "application/json", amp, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			if tc.name == "GET" {
				resp, err := http.Get(f.url + "/api/v2/" + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				a.status = resp.StatusCode
			} else {
				a = f.post(t, "/api/v2/"+tc.path, tc.token, tc.ctype, strings.NewReader(tc.body))
			}
			if a.status != tc.status || a.body.Field != tc.field {
				t.Fatalf("status %d field %q (%+v), want %d field %q", a.status, a.body.Field, a.body, tc.status, tc.field)
			}
			if a.status >= 400 && a.status < 500 && a.status != 405 && (a.body.Code == "" || a.body.Message == "") {
				t.Errorf("error body %+v lacks code or message", a.body)
			}
		})
	}
}

// zeros is an endless body of a JSON string's insides.
type zeros struct{ n atomic.Int64 }

func (z *zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	z.n.Add(int64(len(p)))
	return len(p), nil
}

// TestHundredMegabytes: a 100 MB body is refused by the size limit, with
// or without a Content-Length, having read no more than the limit.
func TestHundredMegabytes(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprint("content length declared ", declared), func(t *testing.T) {
			z := &zeros{}
			body := io.MultiReader(strings.NewReader(`{"environmentId": "`), io.LimitReader(z, 100<<20))
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/api/v2/segment-targets/amplitude", body)
			if err != nil {
				t.Fatal(err)
			}
			if declared {
				req.ContentLength = 100<<20 + 19
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", f.tokens["production"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// The server may close the connection while the client
				// still writes: the refusal is what matters, checked by
				// the bytes read.
				t.Logf("client: %v", err)
			} else {
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("status %d, want 413", resp.StatusCode)
				}
			}
			if n := z.n.Load(); n >= 100<<20 {
				t.Errorf("the client wrote all %d bytes: the server read past its limit", n)
			}
		})
	}
}

// TestPublishes: the accepted batch's changes are on the topic, numbered
// from the segment's shared allocator above what another writer (a CSV
// run) reserved, in the destination's environment.
func TestPublishes(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := t.Context()
	id := snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}
	if _, err := f.seq.Reserve(ctx, id, 1, 100); err != nil {
		t.Fatal(err)
	}
	if a := f.push(t, "amplitude", f.tokens["production"], request(t, "requests/amplitude.json")); a.status != 204 {
		t.Fatalf("status %d %+v", a.status, a.body)
	}
	var got []string
	for _, ev := range f.events(t) {
		if ev.Env != id.Env || ev.Segment != id.Segment || ev.Generation != 1 || ev.ContextKind != "user" || ev.Source != Source {
			t.Fatalf("event %+v", ev)
		}
		got = append(got, fmt.Sprintf("%s %v %d", ev.ContextKey, ev.Op, ev.Seq))
	}
	want := []string{"user-1234 add 101", "4242 add 102", "user-5678 remove 103"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if high, _ := f.seq.High(ctx, id); high != 103 {
		t.Errorf("shared counter %d, want 103", high)
	}
	s := f.rcv.Stats()
	if s.Batches.Load() != 1 || s.Members.Load() != 3 || s.Excluded.Load() != 3 {
		t.Errorf("stats batches %d members %d excluded %d", s.Batches.Load(), s.Members.Load(), s.Excluded.Load())
	}
}

// TestWebhookRedelivery: a webhook delivery already applied is not
// applied again, so its redelivery after a later exit cannot re-add.
func TestWebhookRedelivery(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	hook := "/api/v2/amplitude-cohort-webhooks/" + prodID
	enter, exit := request(t, "webhook-enter.json"), request(t, "webhook-exit.json")
	for i, body := range []string{enter, exit, enter, exit} {
		if a := f.post(t, hook, f.tokens["production"], "application/json", strings.NewReader(body)); a.status != 204 {
			t.Fatalf("delivery %d: status %d %+v", i, a.status, a.body)
		}
	}
	last := map[string]string{}
	for _, ev := range f.events(t) {
		last[ev.ContextKey] = ev.Op.String()
		if ev.Segment != "amplitude-7khm89cz" {
			t.Fatalf("webhook event of segment %q", ev.Segment)
		}
	}
	if want := map[string]string{"user_one@example.com": "add", "user_two@example.com": "remove"}; fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("last events %v, want %v", last, want)
	}
	if n := f.rcv.Stats().Dups.Load(); n != 2 {
		t.Errorf("%d duplicates, want 2", n)
	}
	// Each delivery answered 204 is a run; a redelivery publishes nothing,
	// its keys counted as duplicates.
	var runs []string
	for _, r := range f.recorded(t, 4, runstore.Filter{}) {
		runs = append(runs, fmt.Sprintf("+%d -%d dup %d", r.Summary.Added, r.Summary.Removed, r.Summary.Duplicates))
	}
	slices.Sort(runs)
	if want := []string{"+0 -0 dup 1", "+0 -0 dup 2", "+0 -1 dup 0", "+2 -0 dup 0"}; !slices.Equal(runs, want) {
		t.Errorf("runs %q, want %q", runs, want)
	}
}

// TestOutOfOrder pins the rule for batches of one key: arrival order. The
// later batch gets the higher sequence numbers, which the consumer keeps.
func TestOutOfOrder(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	tok := f.tokens["production"]
	for _, b := range []string{"hightouch-add.json", "hightouch-remove.json", "hightouch-add.json", "hightouch-remove.json"} {
		if a := f.push(t, "hightouch", tok, request(t, "requests/"+b)); a.status != 204 {
			t.Fatalf("%s: %d %+v", b, a.status, a.body)
		}
	}
	last := map[string]schema.Event{}
	for _, ev := range f.events(t) {
		if prev, ok := last[ev.ContextKey]; ok && prev.Seq >= ev.Seq {
			t.Fatalf("sequence numbers do not grow with arrival: %+v after %+v", ev, prev)
		}
		last[ev.ContextKey] = ev
	}
	if last["u2"].Op != schema.OpRemove || last["u1"].Op != schema.OpAdd {
		t.Errorf("last u1 %v u2 %v, want add and remove", last["u1"].Op, last["u2"].Op)
	}
}

// TestSaturated: with every slot taken, a request is answered 429 with
// Retry-After at once; the held ones then succeed.
func TestSaturated(t *testing.T) {
	f := newFixture(t, Config{MaxInFlight: 2, RetryAfter: 3 * time.Second}, nil)
	gate := make(chan struct{})
	f.streams.mu.Lock()
	f.streams.gate = gate
	f.streams.mu.Unlock()
	body := request(t, "requests/fulcrum.json")
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = f.push(t, "fulcrum", f.tokens["production"], body).status
		}()
	}
	testenv.Eventually(t, 10*time.Second, "both slots taken", func() bool { return len(f.rcv.slots) == 2 })
	a := f.push(t, "fulcrum", f.tokens["production"], body)
	if a.status != 429 || a.header.Get("Retry-After") != "3" {
		t.Errorf("saturated: status %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	close(gate)
	wg.Wait()
	if statuses[0] != 204 || statuses[1] != 204 {
		t.Errorf("held requests: %v", statuses)
	}
}

// TestKafkaDown: a push Kafka cannot take is answered 429 with
// Retry-After, never 204 and never a 5xx.
func TestKafkaDown(t *testing.T) {
	// The publisher would retry for 20s: the receiver's Timeout answers
	// first.
	f := newFixture(t, Config{Timeout: time.Second}, func(c *publish.Config) { c.WriteTimeout = time.Second })
	// newFixture's publisher would reach the test's brokers: point a
	// receiver at a closed port instead.
	kf := kafkaxtest.Factory(t, testenv.ClosedAddr(t))
	pcfg := f.pcfg
	pub, err := publish.New(pcfg, kf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	f.streams.Streams = pub
	start := time.Now()
	a := f.push(t, "fulcrum", f.tokens["production"], request(t, "requests/fulcrum.json"))
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("answered after %v: the Timeout did not bound the request", took)
	}
	if a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q %+v, want 429 with Retry-After", a.status, a.header.Get("Retry-After"), a.body)
	}
}

func TestNewRequires(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("New without dependencies succeeded")
	}
	if _, err := New(Config{MaxInFlight: -1}, Deps{}); err == nil || !strings.Contains(err.Error(), "receiver-max-in-flight") {
		t.Errorf("invalid config: %v", err)
	}
}

// TestWebhookComputedTimeOrder: an exit computed after an enter, delivered
// before it, wins for the keys both name; the enter still adds the others.
func TestWebhookComputedTimeOrder(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	hook := "/api/v2/amplitude-cohort-webhooks/production" // the destination's name works too
	for _, name := range []string{"webhook-exit.json", "webhook-enter.json"} {
		if a := f.post(t, hook, f.tokens["production"], "application/json", strings.NewReader(request(t, name))); a.status != 204 {
			t.Fatalf("%s: status %d %+v", name, a.status, a.body)
		}
	}
	last := map[string]string{}
	for _, ev := range f.events(t) {
		last[ev.ContextKey] = ev.Op.String()
	}
	if want := map[string]string{"user_one@example.com": "add", "user_two@example.com": "remove"}; fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("last events %v, want %v", last, want)
	}
	if n := f.rcv.Stats().Stale.Load(); n != 1 {
		t.Errorf("%d stale changes dropped, want 1", n)
	}
}

// TestPushMappingClaimsACohort: a push mapping naming an integration and
// cohort receives their pushes into its own segment, generation and
// context kind; paused, it refuses them (409) rather than let them go to
// the default segment.
func TestPushMappingClaimsACohort(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := t.Context()
	c, err := catalog.Decode("catalog.yaml", []byte(testCatalog+`mappings:
  - name: trials
    source: {push: true, integration: hightouch, cohort: c9}
    segment: trial-accounts
    generation: 2
    context_kind: account
    destinations: [production]
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	body := request(t, "requests/hightouch-add.json")
	if a := f.push(t, "hightouch", f.tokens["production"], body); a.status != 204 {
		t.Fatalf("status %d %+v", a.status, a.body)
	}
	evs := f.events(t)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for _, ev := range evs {
		if ev.Env != "production" || ev.Segment != "trial-accounts" || ev.Generation != 2 || ev.ContextKind != "account" {
			t.Fatalf("event %+v, want segment trial-accounts generation 2 kind account", ev)
		}
	}
	if _, err := f.store.Pause(ctx, "trials"); err != nil {
		t.Fatal(err)
	}
	if a := f.push(t, "hightouch", f.tokens["production"], body); a.status != http.StatusConflict || a.body.Code != "mapping_paused" {
		t.Fatalf("push to a paused mapping: status %d %+v, want 409 mapping_paused", a.status, a.body)
	}
	if n := len(f.events(t)); n != len(evs) {
		t.Fatalf("%d events after the refused push, want still %d", n, len(evs))
	}
	// The accepted batch is a run of the mapping; the refused one is none.
	rs := f.recorded(t, 1, runstore.Filter{Mapping: "trials"})
	if len(rs) != 1 || rs[0].Trigger != Trigger || rs[0].Summary.Segment != "trial-accounts" || rs[0].Summary.Generation != 2 {
		t.Fatalf("runs of the mapping: %+v", rs)
	}
	if all, err := f.history.List(ctx, runstore.Filter{}); err != nil || len(all) != 1 {
		t.Fatalf("%d runs, %v; want 1", len(all), err)
	}
}
