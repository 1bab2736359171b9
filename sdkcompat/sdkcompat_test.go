package sdkcompat

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestEvaluateBigSegmentsLayout writes Redis exactly as docs/bigsegments-redis.md
// states (through pkg/bigsegments, not through the consumer) and checks that
// LaunchDarkly's own Node SDK reads it as we believe it does.
func TestEvaluateBigSegmentsLayout(t *testing.T) {
	t.Parallel()
	backend := testenv.Redis(t)
	redisURL, err := ClientURL(backend.Client)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			ctx := testenv.Context(t, 2*time.Minute)
			prefix := testenv.Name(t)
			if err := tc.Write(ctx, backend.Client, prefix, time.Now()); err != nil {
				t.Fatal(err)
			}
			res, err := Evaluate(ctx, tc.Request(redisURL, prefix))
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range tc.Expect {
				if m := Mismatch(res[i], e.Key, e.Node); m != "" {
					t.Error(m)
				}
			}
		})
	}
}

// TestEvaluateStoreError points the SDK at a server that drops every
// connection: the SDK must say STORE_ERROR, and Evaluate must not hang.
func TestEvaluateStoreError(t *testing.T) {
	t.Parallel()
	addr := testenv.DroppingListener(t)
	ctx := testenv.Context(t, time.Minute)
	res, err := Evaluate(ctx, Request{
		RedisURL:    "redis://" + addr + "/0",
		Prefix:      testenv.Name(t),
		SegmentKey:  CaseSegment,
		Generation:  1,
		ContextKeys: []string{"alice"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := Mismatch(res[0], "alice", Answer{false, StatusStoreError, "FALLTHROUGH"}); m != "" {
		t.Error(m)
	}
}

// fakeDir builds a node directory whose evaluate.js is testdata/fakenode/<script>
// and whose node_modules only pretends the SDK is installed.
func fakeDir(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "fakenode", script))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "evaluate.js"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"node-server-sdk", "node-server-sdk-redis"} {
		p := filepath.Join(dir, "node_modules", "@launchdarkly", pkg)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "package.json"), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestEvaluateFailures(t *testing.T) {
	t.Parallel()
	notInstalled := t.TempDir()
	if err := os.WriteFile(filepath.Join(notInstalled, "evaluate.js"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := Request{RedisURL: "redis://127.0.0.1:1/0", SegmentKey: CaseSegment, Generation: 1, ContextKeys: []string{"alice"}}
	cases := []struct {
		name     string
		edit     func(*Request)
		wantIs   error
		wantText []string
	}{
		{
			name:     "invalid request is refused before node runs",
			edit:     func(r *Request) { r.SegmentKey = "" },
			wantText: []string{"invalid request", "SegmentKey: required"},
		},
		{
			name:     "missing node_modules says how to install",
			edit:     func(r *Request) { r.Dir = notInstalled },
			wantIs:   ErrNotInstalled,
			wantText: []string{"run npm ci --prefix sdkcompat/node (scripts/test.sh does)", "node-server-sdk"},
		},
		{
			name:     "missing evaluate.js names it",
			edit:     func(r *Request) { r.Dir = filepath.Join(notInstalled, "nope") },
			wantIs:   os.ErrNotExist,
			wantText: []string{"evaluate.js"},
		},
		{
			name:     "missing node executable",
			edit:     func(r *Request) { r.Dir = fakeDir(t, "fail.js"); r.Node = filepath.Join(notInstalled, "no-such-node") },
			wantIs:   ErrNodeNotFound,
			wantText: []string{"no-such-node"},
		},
		{
			name:     "node failing includes its stderr",
			edit:     func(r *Request) { r.Dir = fakeDir(t, "fail.js") },
			wantText: []string{"exit status 1", "simulated failure for the test"},
		},
		{
			name:     "node exceeding the timeout is killed",
			edit:     func(r *Request) { r.Dir = fakeDir(t, "hang.js"); r.Timeout = 300 * time.Millisecond },
			wantIs:   context.DeadlineExceeded,
			wantText: []string{"did not finish within 300ms"},
		},
		{
			name:     "output that is not a result is an error",
			edit:     func(r *Request) { r.Dir = fakeDir(t, "garbage.js") },
			wantText: []string{"line 1: invalid character", "this is not JSON"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := base
			tc.edit(&req)
			start := time.Now()
			_, err := Evaluate(testenv.Context(t, time.Minute), req)
			if err == nil {
				t.Fatal("Evaluate succeeded, want an error")
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Evaluate took %s to fail", d)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestRequestValidate(t *testing.T) {
	valid := Request{RedisURL: "redis://127.0.0.1:6379/0", SegmentKey: "s", Generation: 1, ContextKeys: []string{"a"}}
	cases := []struct {
		name string
		edit func(*Request)
		want string // "" for valid
	}{
		{"minimal request is valid with defaults", func(*Request) {}, ""},
		{"generation 0 is allowed to observe NOT_CONFIGURED", func(r *Request) { r.Generation = 0 }, ""},
		{"rediss with credentials is valid", func(r *Request) { r.RedisURL = "rediss://u:p@redis.example:6380/2" }, ""},
		{"redis url required", func(r *Request) { r.RedisURL = "" }, "RedisURL: required"},
		{"redis url scheme", func(r *Request) { r.RedisURL = "http://127.0.0.1:6379" }, `RedisURL: scheme must be redis or rediss, got "http"`},
		{"redis url host", func(r *Request) { r.RedisURL = "redis:///0" }, `RedisURL: host missing in "redis:///0"`},
		{"redis url unparsable", func(r *Request) { r.RedisURL = "redis://[::1" }, "RedisURL: parse"},
		{"segment key required", func(r *Request) { r.SegmentKey = "" }, "SegmentKey: required"},
		{"negative generation", func(r *Request) { r.Generation = -1 }, "Generation: must be >= 0, got -1"},
		{"reserved context kind", func(r *Request) { r.ContextKind = "kind" }, `ContextKind: "kind" is not a valid context kind`},
		{"context kind with colon", func(r *Request) { r.ContextKind = "org:team" }, `ContextKind: "org:team" is not a valid context kind`},
		{"no context keys", func(r *Request) { r.ContextKeys = nil }, "ContextKeys: at least one required"},
		{"empty context key", func(r *Request) { r.ContextKeys = []string{"a", ""} }, "ContextKeys[1]: empty"},
		{"negative staleAfter", func(r *Request) { r.StaleAfter = -time.Second }, "StaleAfter: must be >= 1ms, got -1s"},
		{"sub-millisecond poll interval", func(r *Request) { r.StatusPollInterval = time.Microsecond }, "StatusPollInterval: must be >= 1ms or 0 for the SDK default, got 1µs"},
		{"negative timeout", func(r *Request) { r.Timeout = -time.Second }, "Timeout: must be > 0 or 0 for the default, got -1s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := valid
			r.ContextKeys = append([]string(nil), valid.ContextKeys...)
			tc.edit(&r)
			err := r.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want %q", tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), tc.want):
				t.Fatalf("Validate() = %q, want %q", err, tc.want)
			}
		})
	}
}

// TestRequestWireGolden pins evaluate.js's input format.
func TestRequestWireGolden(t *testing.T) {
	req := Request{
		RedisURL:           "redis://127.0.0.1:6379/0",
		Prefix:             "ld-prod",
		SegmentKey:         CaseSegment,
		Generation:         2,
		ContextKind:        "device",
		ContextKeys:        []string{"alice@example.com", "üser+1/2"},
		StaleAfter:         90 * time.Second,
		StatusPollInterval: 1500 * time.Millisecond,
	}.WithDefaults()
	got, err := json.MarshalIndent(req.wire(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	testenv.Golden(t, *update, filepath.Join("testdata", "request.golden.json"), got)
}

func TestParseResults(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	zero, one := 0, 1
	wantFixture := []Result{
		{Key: "alice@example.com", Value: true, VariationIndex: &one, BigSegmentsStatus: StatusHealthy,
			Reason: Reason{Kind: "RULE_MATCH", RuleID: "in-segment", RuleIndex: &zero, BigSegmentsStatus: StatusHealthy}},
		{Key: "bob", Value: false, VariationIndex: &zero, BigSegmentsStatus: StatusStale,
			Reason: Reason{Kind: "FALLTHROUGH", BigSegmentsStatus: StatusStale}},
		{Key: "carol", Reason: Reason{Kind: "ERROR", ErrorKind: "FLAG_NOT_FOUND"}},
	}
	cases := []struct {
		name string
		out  string
		keys []string
		want []Result
		err  string
	}{
		{"fixture of real SDK output", string(fixture), []string{"alice@example.com", "bob", "carol"}, wantFixture, ""},
		{"no output", "", []string{"a"}, nil, "0 result lines for 1 context keys"},
		{"too many lines", `{"key":"a","value":true,"reason":{"kind":"X"}}` + "\n" + `{"key":"b","value":true,"reason":{"kind":"X"}}` + "\n", []string{"a"}, nil, "2 result lines for 1 context keys"},
		{"not json", "oops\n", []string{"a"}, nil, `line 1: invalid character`},
		{"key out of order", `{"key":"b","value":true,"reason":{"kind":"X"}}` + "\n", []string{"a"}, nil, `line 1: key "b", want "a"`},
		{"value not boolean", `{"key":"a","value":"yes","reason":{"kind":"X"}}` + "\n", []string{"a"}, nil, `line 1: value "yes" is not a boolean`},
		{"value null", `{"key":"a","value":null,"reason":{"kind":"X"}}` + "\n", []string{"a"}, nil, `line 1: value null is not a boolean`},
		{"reason missing", `{"key":"a","value":true}` + "\n", []string{"a"}, nil, `line 1: reason.kind missing`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResults([]byte(tc.out), tc.keys)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseResults error = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseResults =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestClientURL(t *testing.T) {
	cases := []struct {
		name string
		c    redis.UniversalClient
		want string
		err  string
	}{
		{"plain", redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "redis://127.0.0.1:6379/0", ""},
		{"db and password", redis.NewClient(&redis.Options{Addr: "127.0.0.1:6380", DB: 3, Password: "p@ss/word"}), "redis://:p%40ss%2Fword@127.0.0.1:6380/3", ""},
		{"acl user", redis.NewClient(&redis.Options{Addr: "[::1]:6379", Username: "ld", Password: "pw"}), "redis://ld:pw@[::1]:6379/0", ""},
		{"unix socket", redis.NewClient(&redis.Options{Network: "unix", Addr: "/tmp/redis.sock"}), "", `network "unix" is not tcp`},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:7000"}}), "", "is not a standalone *redis.Client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { _ = tc.c.Close() })
			got, err := ClientURL(tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ClientURL error = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ClientURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"0123", "4567", "89ab"} {
		if _, err := b.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.String(); got != "...456789ab" {
		t.Errorf("tail = %q, want %q", got, "...456789ab")
	}
	if got := (&tailBuffer{max: 8}).String(); got != "(empty)" {
		t.Errorf("empty tail = %q", got)
	}
}

// BenchmarkEvaluate measures one Evaluate call (node start, SDK init, Redis
// reads) for a few sizes of key list.
func BenchmarkEvaluate(b *testing.B) {
	backend := testenv.Redis(b)
	redisURL, err := ClientURL(backend.Client)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 1000} {
		b.Run(strconv.Itoa(n)+"keys", func(b *testing.B) {
			ctx := testenv.Context(b, 10*time.Minute)
			prefix := testenv.Name(b)
			keys := make([]string, n)
			include := map[string][]string{}
			for i := range keys {
				keys[i] = "user-" + strconv.Itoa(i)
				if i%2 == 0 {
					include[keys[i]] = []string{CaseRef(1)}
				}
			}
			c := Case{Include: include}
			if err := c.Write(ctx, backend.Client, prefix, time.Now()); err != nil {
				b.Fatal(err)
			}
			req := Request{RedisURL: redisURL, Prefix: prefix, SegmentKey: CaseSegment, Generation: 1, ContextKeys: keys}
			for b.Loop() {
				res, err := Evaluate(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if !res[0].Value {
					b.Fatalf("%s: not a member", res[0].Key)
				}
			}
		})
	}
}

// TestFlagDataGolden pins the flag data both SDKs are given.
func TestFlagDataGolden(t *testing.T) {
	got, err := FlagData(Cases()[0].Request("redis://127.0.0.1:6379/0", "ld-prod"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, *update, filepath.Join("testdata", "flagdata.golden.json"), got)
}

// TestFlagDataMatchesNode checks that evaluate.js gives the Node SDK the
// document FlagData gives the Go SDK, so both answer the same question.
func TestFlagDataMatchesNode(t *testing.T) {
	t.Parallel()
	for _, tc := range Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			req := tc.Request("redis://127.0.0.1:6379/0", "ld-prod").WithDefaults()
			in, err := json.Marshal(req.wire())
			if err != nil {
				t.Fatal(err)
			}
			ctx := testenv.Context(t, time.Minute)
			cmd := exec.CommandContext(ctx, "node", filepath.Join(req.Dir, "evaluate.js"), "--print-flag-data", string(in))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			fromNode, err := cmd.Output()
			if err != nil {
				t.Fatalf("evaluate.js --print-flag-data: %v; stderr: %s", err, stderr.String())
			}
			fromGo, err := FlagData(req)
			if err != nil {
				t.Fatal(err)
			}
			var n, g any
			if err := json.Unmarshal(fromNode, &n); err != nil {
				t.Fatalf("node flag data: %v: %s", err, fromNode)
			}
			if err := json.Unmarshal(fromGo, &g); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n, g) {
				t.Errorf("flag data differs:\nnode: %s\ngo:   %s", fromNode, fromGo)
			}
		})
	}
}

// TestEvaluateJSRejectsBadRequests feeds evaluate.js directly, past the Go
// validation, as any other caller could.
func TestEvaluateJSRejectsBadRequests(t *testing.T) {
	t.Parallel()
	good := `"redisUrl":"redis://127.0.0.1:1/0","prefix":"p","segmentKey":"s","generation":1,"contextKind":"user","staleAfterSeconds":60`
	cases := []struct {
		name string
		in   string
		want string
	}{
		{"not json", `{`, "request is not valid JSON"},
		{"not an object", `[1]`, "request must be a JSON object"},
		{"unknown field", `{` + good + `,"contextKeys":["a"],"flag":"x"}`, "request.flag: unknown field"},
		{"no keys", `{` + good + `,"contextKeys":[]}`, "request.contextKeys: must be a non-empty array of strings"},
		{"key not a string", `{` + good + `,"contextKeys":["a",7]}`, "request.contextKeys[1]: must be a non-empty string, got 7"},
		{"fractional generation", `{` + strings.Replace(good, `"generation":1`, `"generation":1.5`, 1) + `,"contextKeys":["a"]}`, "request.generation: must be an integer >= 0, got 1.5"},
		{"bad scheme", `{` + strings.Replace(good, "redis://", "http://", 1) + `,"contextKeys":["a"]}`, `request.redisUrl: scheme must be redis or rediss, got "http:"`},
		{"bad database", `{` + strings.Replace(good, "/0", "/zero", 1) + `,"contextKeys":["a"]}`, `request.redisUrl: database "zero" is not a number`},
		{"reserved kind", `{` + strings.Replace(good, `"user"`, `"multi"`, 1) + `,"contextKeys":["a"]}`, `request.contextKind: "multi" is not a valid context kind`},
		{"missing prefix", `{` + strings.Replace(good, `"prefix":"p",`, ``, 1) + `,"contextKeys":["a"]}`, "request.prefix: must be a non-empty string"},
	}
	script := filepath.Join(Request{}.WithDefaults().Dir, "evaluate.js")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(testenv.Context(t, time.Minute), "node", script)
			cmd.Stdin = strings.NewReader(tc.in)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
				t.Fatalf("evaluate.js: %v, want exit status 2; stdout %q; stderr %q", err, out, stderr.String())
			}
			if len(out) != 0 {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tc.want)
			}
		})
	}
}
