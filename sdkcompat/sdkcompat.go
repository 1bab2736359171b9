package sdkcompat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Defaults of Request.
const (
	DefaultFlagKey     = "cohortsync-sdkcompat"
	DefaultContextKind = "user"
	// DefaultStaleAfter is the SDKs' own default.
	DefaultStaleAfter = 120 * time.Second
	// DefaultTimeout bounds one node run. A run takes ~0.2 s; the SDK alone
	// may wait 10 s for initialisation and ~2 s per Redis connect attempt.
	DefaultTimeout = 60 * time.Second
)

// Big Segments status values as the SDK reports them in
// reason.bigSegmentsStatus.
const (
	StatusHealthy       Status = "HEALTHY"
	StatusStale         Status = "STALE"
	StatusStoreError    Status = "STORE_ERROR"
	StatusNotConfigured Status = "NOT_CONFIGURED"
)

// Status is the SDK's Big Segments status of one evaluation; "" when the
// evaluation did not consult a Big Segment.
type Status string

var (
	// ErrNotInstalled means the Node SDK packages are missing from the node
	// directory.
	ErrNotInstalled = errors.New("LaunchDarkly Node SDK not installed: run npm ci --prefix sdkcompat/node (scripts/test.sh does)")
	// ErrNodeNotFound means no node executable was found.
	ErrNodeNotFound = errors.New("node not found (Node.js >= 18 runs LaunchDarkly's SDK)")
)

// Request is one evaluation run: one flag whose only rule matches an unbounded
// segment, evaluated for each context key against the Redis at RedisURL.
type Request struct {
	// RedisURL is redis://[user:password@]host:port/db (or rediss://). Required.
	RedisURL string
	// Prefix of the Big Segments keys. Default bigsegments.DefaultPrefix.
	Prefix string
	// FlagKey names the generated flag. Default DefaultFlagKey.
	FlagKey string
	// SegmentKey is the unbounded segment's key (refs are "<SegmentKey>.g<Generation>"). Required.
	SegmentKey string
	// Generation of the segment. 0 is allowed: the SDK then reports
	// NOT_CONFIGURED without reading Redis.
	Generation int
	// ContextKind of the contexts and of the segment's unboundedContextKind. Default "user".
	ContextKind string
	// Segment, when set, is the segment definition served instead of the
	// generated one (such as cohortsync segments show --ld-json prints):
	// the flag then shows whether evaluators given it read Redis right.
	// Its key must be SegmentKey. The Node SDK ignores it.
	Segment json.RawMessage
	// ContextKeys to evaluate, in order; at least one, none empty.
	ContextKeys []string
	// StaleAfter is the SDK's bigSegments.staleAfter. Default DefaultStaleAfter.
	StaleAfter time.Duration
	// StatusPollInterval is the SDK's bigSegments.statusPollInterval. Default
	// the SDK's (5 s); one run polls once before its first evaluation anyway.
	StatusPollInterval time.Duration
	// Dir holds evaluate.js and its node_modules. Default: the node directory
	// beside this source file.
	Dir string
	// Node is the node executable. Default "node" from PATH.
	Node string
	// Timeout bounds the whole run. Default DefaultTimeout.
	Timeout time.Duration
}

// kindPattern is LaunchDarkly's rule for context kinds ("kind" and "multi" are reserved).
var kindPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// WithDefaults returns r with every zero default filled in.
func (r Request) WithDefaults() Request {
	if r.Prefix == "" {
		r.Prefix = bigsegments.DefaultPrefix
	}
	if r.FlagKey == "" {
		r.FlagKey = DefaultFlagKey
	}
	if r.ContextKind == "" {
		r.ContextKind = DefaultContextKind
	}
	if r.StaleAfter == 0 {
		r.StaleAfter = DefaultStaleAfter
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Node == "" {
		r.Node = "node"
	}
	if r.Dir == "" {
		r.Dir = defaultDir()
	}
	return r
}

// Validate checks the request after defaults are applied; each error names the field.
func (r Request) Validate() error {
	r = r.WithDefaults()
	switch {
	case r.RedisURL == "":
		return errors.New("RedisURL: required")
	case r.SegmentKey == "":
		return errors.New("SegmentKey: required")
	case r.Generation < 0:
		return fmt.Errorf("Generation: must be >= 0, got %d", r.Generation) //nolint:staticcheck // ST1005: starts with the field's name, as every message here
	case !kindPattern.MatchString(r.ContextKind) || r.ContextKind == "kind" || r.ContextKind == "multi":
		return fmt.Errorf("ContextKind: %q is not a valid context kind", r.ContextKind)
	case len(r.ContextKeys) == 0:
		return errors.New("ContextKeys: at least one required")
	case r.StaleAfter < time.Millisecond:
		return fmt.Errorf("StaleAfter: must be >= 1ms, got %s", r.StaleAfter)
	case r.StatusPollInterval != 0 && r.StatusPollInterval < time.Millisecond:
		return fmt.Errorf("StatusPollInterval: must be >= 1ms or 0 for the SDK default, got %s", r.StatusPollInterval)
	case r.Timeout < 0:
		return fmt.Errorf("Timeout: must be > 0 or 0 for the default, got %s", r.Timeout) //nolint:staticcheck // ST1005: starts with the field's name, as every message here
	}
	u, err := url.Parse(r.RedisURL)
	if err != nil {
		return fmt.Errorf("RedisURL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("RedisURL: scheme must be redis or rediss, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("RedisURL: host missing in %q", r.RedisURL)
	}
	for i, k := range r.ContextKeys {
		if k == "" {
			return fmt.Errorf("ContextKeys[%d]: empty", i)
		}
	}
	return nil
}

// wireRequest is evaluate.js's input; testdata/request.golden.json pins it.
type wireRequest struct {
	RedisURL                  string   `json:"redisUrl"`
	Prefix                    string   `json:"prefix"`
	FlagKey                   string   `json:"flagKey"`
	SegmentKey                string   `json:"segmentKey"`
	Generation                int      `json:"generation"`
	ContextKind               string   `json:"contextKind"`
	ContextKeys               []string `json:"contextKeys"`
	StaleAfterSeconds         float64  `json:"staleAfterSeconds"`
	StatusPollIntervalSeconds float64  `json:"statusPollIntervalSeconds,omitempty"`
}

func (r Request) wire() wireRequest {
	return wireRequest{
		RedisURL:                  r.RedisURL,
		Prefix:                    r.Prefix,
		FlagKey:                   r.FlagKey,
		SegmentKey:                r.SegmentKey,
		Generation:                r.Generation,
		ContextKind:               r.ContextKind,
		ContextKeys:               r.ContextKeys,
		StaleAfterSeconds:         r.StaleAfter.Seconds(),
		StatusPollIntervalSeconds: r.StatusPollInterval.Seconds(),
	}
}

// Result is the SDK's evaluation of the flag for one context key.
type Result struct {
	Key string `json:"key"`
	// Value is true when the SDK matched the segment rule.
	Value bool `json:"value"`
	// VariationIndex is nil when the SDK returned the default value.
	VariationIndex    *int   `json:"variationIndex"`
	BigSegmentsStatus Status `json:"bigSegmentsStatus"`
	Reason            Reason `json:"reason"`
}

// Reason is the SDK's evaluation reason (LDEvaluationReason).
type Reason struct {
	// Kind is RULE_MATCH (in the segment), FALLTHROUGH (not in it), ERROR, ...
	Kind              string `json:"kind"`
	RuleIndex         *int   `json:"ruleIndex,omitempty"`
	RuleID            string `json:"ruleId,omitempty"`
	ErrorKind         string `json:"errorKind,omitempty"`
	BigSegmentsStatus Status `json:"bigSegmentsStatus,omitempty"`
}

// Evaluate runs LaunchDarkly's Node SDK once and returns one Result per
// context key, in the order of req.ContextKeys.
func Evaluate(ctx context.Context, req Request) ([]Result, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("sdkcompat: invalid request: %w", err)
	}
	req = req.WithDefaults()
	script, err := checkInstall(req.Dir)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath(req.Node)
	if err != nil {
		return nil, fmt.Errorf("sdkcompat: %w: %w", ErrNodeNotFound, err)
	}
	in, err := json.Marshal(req.wire())
	if err != nil {
		return nil, fmt.Errorf("sdkcompat: encode request: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 16 << 10}
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = req.Dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	// Bounds the wait for the pipes once node has been killed.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("sdkcompat: %s did not finish within %s (after %s): %w; stderr: %s",
			script, req.Timeout, time.Since(start).Round(time.Millisecond), ctx.Err(), stderr)
	}
	if runErr != nil {
		return nil, fmt.Errorf("sdkcompat: %s %s: %w; stderr: %s", node, script, runErr, stderr)
	}
	res, err := parseResults(stdout.Bytes(), req.ContextKeys)
	if err != nil {
		return nil, fmt.Errorf("sdkcompat: output of %s: %w; stderr: %s", script, err, stderr)
	}
	return res, nil
}

// defaultDir locates node/ beside this file, so tests of any package find it
// whatever their working directory. It needs the source tree (not -trimpath).
func defaultDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "sdkcompat/node"
	}
	return filepath.Join(filepath.Dir(file), "node")
}

// checkInstall returns the path of evaluate.js once the SDK packages it
// requires are present in dir.
func checkInstall(dir string) (string, error) {
	script := filepath.Join(dir, "evaluate.js")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("sdkcompat: evaluate.js: %w", err)
	}
	for _, pkg := range []string{"node-server-sdk", "node-server-sdk-redis"} {
		p := filepath.Join(dir, "node_modules", "@launchdarkly", pkg, "package.json")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("sdkcompat: %w (%s missing)", ErrNotInstalled, p)
		}
	}
	return script, nil
}

// parseResults reads evaluate.js's JSON lines and checks that they answer
// exactly the keys asked, in order.
func parseResults(out []byte, keys []string) ([]Result, error) {
	lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
	if len(out) == 0 {
		lines = nil
	}
	if len(lines) != len(keys) {
		return nil, fmt.Errorf("%d result lines for %d context keys", len(lines), len(keys))
	}
	res := make([]Result, len(lines))
	for i, line := range lines {
		var raw struct {
			Result
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(line, &raw); err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", i+1, err, truncate(line))
		}
		r := raw.Result
		switch string(raw.Value) {
		case "true":
			r.Value = true
		case "false":
		default: // null included: the flag only has boolean variations
			return nil, fmt.Errorf("line %d: value %s is not a boolean", i+1, truncate(raw.Value))
		}
		if r.Key != keys[i] {
			return nil, fmt.Errorf("line %d: key %q, want %q", i+1, r.Key, keys[i])
		}
		if r.Reason.Kind == "" {
			return nil, fmt.Errorf("line %d: reason.kind missing", i+1)
		}
		res[i] = r
	}
	return res, nil
}

func truncate(b []byte) string {
	const maxLen = 200
	if len(b) > maxLen {
		return string(b[:maxLen]) + "..."
	}
	return string(b)
}

// tailBuffer keeps the last max bytes written: node's stderr is for error
// messages, and a chatty run must not grow without bound.
type tailBuffer struct {
	max int
	buf []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := string(bytes.TrimSpace(t.buf))
	if s == "" {
		return "(empty)"
	}
	if t.cut {
		return "..." + s
	}
	return s
}

// ClientURL returns the redis:// URL of a standalone go-redis client, so a
// test can hand the SDK the same server it writes through (testenv.Redis gives
// a client, the SDK needs a URL). Cluster and unix-socket clients are refused:
// RedisBigSegmentStore built from a URL speaks to one standalone server.
func ClientURL(c redis.UniversalClient) (string, error) {
	rc, ok := c.(*redis.Client)
	if !ok {
		return "", fmt.Errorf("sdkcompat: ClientURL: %T is not a standalone *redis.Client", c)
	}
	o := rc.Options()
	if o.Network != "" && o.Network != "tcp" {
		return "", fmt.Errorf("sdkcompat: ClientURL: network %q is not tcp", o.Network)
	}
	u := url.URL{Scheme: "redis", Host: o.Addr, Path: "/" + strconv.Itoa(o.DB)}
	if o.TLSConfig != nil {
		u.Scheme = "rediss"
	}
	switch {
	case o.Password != "":
		u.User = url.UserPassword(o.Username, o.Password)
	case o.Username != "":
		u.User = url.User(o.Username)
	}
	return u.String(), nil
}
