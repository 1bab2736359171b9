package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/erase"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun/mappingruntest"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// destPassword is the password of the test's "secured" destination: it
// must never appear in a response or a log line.
const destPassword = "dest-pw-4f1c9a-never-shown"

// document is openapi.json loaded and validated once.
var document = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(Spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return doc, nil
})

// world is the API over real stores on one Redis backend, a Kafka (kfake
// unless integration), a scheduler whose runner records runs, and tokens of
// each role.
type world struct {
	t       *testing.T
	ctx     context.Context
	b       testenv.RedisBackend
	control string // the control prefix
	api     *API
	srv     *httptest.Server
	router  routers.Router
	cat     *catalogstore.Store
	tokens  *auth.Store
	runs    *runstore.Store
	log     *bytes.Buffer
	logMu   *sync.Mutex
	// secret holds a token of each role; revoked one that was revoked.
	secret  map[auth.Role]string
	revoked string
	// never are strings no response may hold.
	never []string
	// runner is the scheduler's: it records a run, or blocks on hold.
	runner *recordingRunner
}

// syncBuffer is a log buffer written by the server's goroutines.
type syncBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// recordingRunner stands in for a mapping run: it records one run per
// destination in the history, as runAdapter does after a real run.
type recordingRunner struct {
	runs *runstore.Store
	hold chan struct{} // a run of mapping "slow" waits for it
}

func (r *recordingRunner) Run(ctx context.Context, m catalog.Mapping, t schedule.Trigger) error {
	if m.Name == "slow" {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := time.Now()
	for _, d := range m.Destinations {
		rec := runstore.Record{ID: producer.NewRunID(now), Mapping: m.Name, Destination: d, Trigger: string(t.Kind),
			Summary: producer.Summary{Run: producer.NewRunID(now), Segment: m.Segment, Started: now, Outcome: producer.Succeeded, Added: 2}}
		if err := r.runs.Add(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// destRedis is how a destination on the test's Redis is declared.
func destRedis(b testenv.RedisBackend) map[string]any {
	if b.URL != "" {
		return map[string]any{"url": b.URL}
	}
	return map[string]any{"cluster_addrs": b.Addrs}
}

func newWorld(t *testing.T, b testenv.RedisBackend, prefix string) *world {
	ctx := testenv.Context(t, 2*time.Minute)
	w := &world{t: t, ctx: ctx, b: b, control: prefix + ":control:", log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	testenv.DropPrefix(t, b.Client, prefix)
	var err error
	if w.cat, err = catalogstore.New(b.Client, catalogstore.Config{Prefix: w.control}); err != nil {
		t.Fatal(err)
	}
	if w.tokens, err = auth.New(b.Client, auth.Config{Prefix: w.control}); err != nil {
		t.Fatal(err)
	}
	if w.runs, err = runstore.New(b.Client, runstore.Config{Prefix: w.control}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(syncBuffer{w.logMu, w.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w.runner = &recordingRunner{runs: w.runs, hold: make(chan struct{})}
	sched, err := schedule.New(schedule.Config{Prefix: w.control}, b.Client, w.cat, w.runner, log)
	if err != nil {
		t.Fatal(err)
	}
	// The event path of list-segment edits: leases, sequence numbers and
	// a publisher on the test's Kafka.
	kf := kafkaxtest.Kafka(t)
	pcfg := mappingruntest.Producer(t, ctx, kf, testenv.Name(t))
	pcfg.Logger = log
	wr := mappingruntest.NewWriters(t, b.Client, kf, pcfg, w.control)
	connect := w.connector(map[string]string{"DEST_PW": destPassword})
	editor := &segments.Editor{Catalog: w.cat, Connect: connect, Locker: wr.Locker, Seq: wr.Seq, Streams: wr.Streams, History: w.runs, Topic: pcfg.Topic, Log: log}
	receipts, err := erase.NewStore(b.Client, wr.Lease)
	if err != nil {
		t.Fatal(err)
	}
	eraser := &erase.Eraser{Catalog: w.cat, Connect: connect, Locker: wr.Locker, Seq: wr.Seq, Streams: wr.Streams, Topic: pcfg.Topic,
		Erased: wr.Erased, Receipts: receipts, History: w.runs, Log: log}
	gaps, err := segmentlease.NewGaps(b.Client, wr.Lease)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DEST_PW": destPassword}
	w.api, err = New(Config{SyncGrace: 200 * time.Millisecond}, Deps{Tokens: w.tokens, Catalog: w.cat, Runs: w.runs, Connect: connect,
		Test: func(ctx context.Context, d catalog.Destination) error { return testConnection(ctx, d, env) },
		Sync: sched, Edit: editor, Log: log,
		Lookup: &membership.Lookup{Catalog: w.cat, Connect: connect, Runs: w.runs},
		Status: &status.Checker{Catalog: w.cat, Connect: connect, History: w.runs, SetAsides: gaps},
		Erase:  eraser})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.api.Close() })
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", w.api.Handler())
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	doc, err := document()
	if err != nil {
		t.Fatal(err)
	}
	if w.router, err = gorillamux.NewRouter(doc); err != nil {
		t.Fatal(err)
	}
	w.secret = map[auth.Role]string{}
	for _, role := range auth.Roles {
		_, s, err := w.tokens.Create(ctx, "test-"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		w.secret[role] = s
	}
	old, s, err := w.tokens.Create(ctx, "revoked", auth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tokens.Revoke(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	w.revoked = s
	w.never = []string{destPassword, s, w.secret[auth.Admin], w.secret[auth.Writer], w.secret[auth.Reader]}
	t.Cleanup(w.checkLog)
	return w
}

// connector returns the test's client for a destination on the test's
// Redis, else a client of its own (a destination elsewhere, or down),
// closed when the test ends.
func (w *world) connector(env map[string]string) segments.Connector {
	var mu sync.Mutex
	own := map[string]redis.UniversalClient{}
	w.t.Cleanup(func() {
		for _, c := range own {
			_ = c.Close()
		}
	})
	return func(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
		if (w.b.URL != "" && d.Redis.URL == w.b.URL) || (w.b.URL == "" && len(d.Redis.ClusterAddrs) > 0) {
			return w.b.Client, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if c, ok := own[d.Name]; ok {
			return c, nil
		}
		cfg, err := d.RedisConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
		if err != nil {
			return nil, err
		}
		cfg.Timeout, cfg.PoolSize = time.Second, 1
		c, err := redisx.Open(cfg)
		if err != nil {
			return nil, err
		}
		own[d.Name] = c
		return c, nil
	}
}

// testConnection connects to d's Redis as serve's test does.
func testConnection(ctx context.Context, d catalog.Destination, env map[string]string) error {
	cfg, err := d.RedisConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		return err
	}
	cfg.Timeout, cfg.PoolSize = 2*time.Second, 1
	c, err := redisx.Open(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	if err := c.Get(ctx, bigsegments.SyncTimeKey(d.Prefix())).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// checkLog fails the test if a secret was logged.
func (w *world) checkLog() {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	for _, s := range w.never {
		if strings.Contains(w.log.String(), s) {
			w.t.Errorf("a secret is in the log:\n%s", w.log.String())
		}
	}
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map (or v).
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errField is the error's field and code.
func (r response) errField(t *testing.T) (code, field string) {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error in %s", r.body)
	}
	c, _ := e["code"].(string)
	f, _ := e["field"].(string)
	return c, f
}

// do sends a request with token (role's secret, or as given) and a JSON
// body (a string or []byte as is, anything else marshalled), then checks
// the answer against openapi.json and that it holds no secret.
func (w *world) do(method, path, token string, body any) response {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(w.ctx, method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, body: b}
	for _, s := range w.never {
		if bytes.Contains(b, []byte(s)) || strings.Contains(res.Header.Get("Location"), s) {
			w.t.Fatalf("%s %s answered a secret: %s", method, path, b)
		}
	}
	if res.StatusCode >= 500 {
		w.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	w.validate(req, out)
	return out
}

// validate checks a response against the document: its status is one the
// operation declares and its body matches the schema. A path the document
// does not have gets the API's JSON 404.
func (w *world) validate(req *http.Request, res response) {
	w.t.Helper()
	vreq := req.Clone(w.ctx)
	vreq.URL.Host, vreq.URL.Scheme = "", ""
	route, params, err := w.router.FindRoute(vreq)
	if err != nil {
		if res.status != http.StatusNotFound && res.status != http.StatusMethodNotAllowed {
			w.t.Fatalf("%s %s is not in the document: %v (answered %d)", req.Method, req.URL.Path, err, res.status)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.status, Header: res.header, Body: io.NopCloser(bytes.NewReader(res.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(w.ctx, in); err != nil {
		w.t.Fatalf("%s %s answered %d %s, not as the document says: %v", req.Method, req.URL.Path, res.status, res.body, err)
	}
}

// all follows path's pages (path has a query) and returns every item.
func (w *world) all(path, token string) []any {
	w.t.Helper()
	var out []any
	cursor := ""
	for range 500 {
		res := w.do("GET", path+cursor, token, nil)
		if res.status != http.StatusOK {
			w.t.Fatalf("%s: %d %s", path, res.status, res.body)
		}
		page := res.json(w.t)
		out = append(out, page["items"].([]any)...)
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = "&cursor=" + next
	}
	w.t.Fatalf("%s: more than 500 pages", path)
	return nil
}

// eachWorld runs fn on a world of every Redis backend.
func eachWorld(t *testing.T, fn func(t *testing.T, w *world)) {
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, _ context.Context, b testenv.RedisBackend, prefix string) {
		fn(t, newWorld(t, b, prefix))
	})
}
