package ldgo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/ldstore"
	"github.com/cohortsync/cohortsync/sdkcompat"
)

// initTimeout matches evaluate.js: the file data source is local, so 10 s
// means something is broken.
const initTimeout = 10 * time.Second

// Evaluate answers req with the Go SDK, in the same form as sdkcompat.Evaluate
// answers it with the Node SDK. req.Dir and req.Node are ignored.
func Evaluate(ctx context.Context, req sdkcompat.Request) ([]sdkcompat.Result, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("ldgo: invalid request: %w", err)
	}
	opts, err := redis.ParseURL(req.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("ldgo: RedisURL: %w", err)
	}
	opts.DialTimeout = 2 * time.Second
	opts.MaxRetries = 1
	rc := redis.NewClient(opts)
	defer func() { _ = rc.Close() }()
	return evaluate(ctx, rc, req)
}

// EvaluateClient is Evaluate reading Redis through rc, which may be a Redis
// Cluster client: the Node SDK's store only speaks to a single server, so
// this is how the Cluster layout is checked with a LaunchDarkly SDK.
// req.RedisURL is ignored.
func EvaluateClient(ctx context.Context, rc redis.UniversalClient, req sdkcompat.Request) ([]sdkcompat.Result, error) {
	req.RedisURL = "redis://client.invalid" // only to satisfy Validate; rc is what is read
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("ldgo: invalid request: %w", err)
	}
	return evaluate(ctx, rc, req)
}

func evaluate(ctx context.Context, rc redis.UniversalClient, req sdkcompat.Request) ([]sdkcompat.Result, error) {
	req = req.WithDefaults()
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()

	data, err := sdkcompat.FlagData(req)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cohortsync-ldgo-")
	if err != nil {
		return nil, fmt.Errorf("ldgo: temp dir for flag data: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "flags.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("ldgo: write flag data: %w", err)
	}

	bigSegments := ldcomponents.BigSegments(ldstore.NewStore(ctx, rc, req.Prefix).Configurer()).
		StaleAfter(req.StaleAfter).
		// One run evaluates each key once; a short cache keeps repeated
		// runs in one process from reading old membership.
		ContextCacheTime(time.Second)
	if req.StatusPollInterval > 0 {
		bigSegments = bigSegments.StatusPollInterval(req.StatusPollInterval)
	}
	config := ld.Config{
		DataSource:       ldfiledata.DataSource().FilePaths(path),
		Events:           ldcomponents.NoEvents(),
		DiagnosticOptOut: true,
		Logging:          ldcomponents.NoLogging(),
		BigSegments:      bigSegments,
	}
	client, err := ld.MakeCustomClient("sdk-cohortsync-sdkcompat-offline", config, initTimeout)
	if client != nil {
		defer func() { _ = client.Close() }()
	}
	if err != nil {
		return nil, fmt.Errorf("ldgo: LaunchDarkly Go SDK did not initialise within %s: %w", initTimeout, err)
	}

	out := make([]sdkcompat.Result, len(req.ContextKeys))
	for i, key := range req.ContextKeys {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ldgo: evaluated %d of %d keys: %w", i, len(req.ContextKeys), err)
		}
		lc := ldcontext.NewWithKind(ldcontext.Kind(req.ContextKind), key)
		v, detail, err := client.BoolVariationDetailCtx(ctx, req.FlagKey, lc, false)
		if err != nil && detail.Reason.GetKind() != ldreason.EvalReasonError {
			return nil, fmt.Errorf("ldgo: evaluate %q for %s %q: %w", req.FlagKey, req.ContextKind, key, err)
		}
		out[i] = result(key, v, detail)
	}
	return out, nil
}

// result converts the SDK's answer to the shape evaluate.js prints.
func result(key string, v bool, d ldreason.EvaluationDetail) sdkcompat.Result {
	r := sdkcompat.Result{
		Key:               key,
		Value:             v,
		BigSegmentsStatus: sdkcompat.Status(d.Reason.GetBigSegmentsStatus()),
		Reason: sdkcompat.Reason{
			Kind:              string(d.Reason.GetKind()),
			RuleID:            d.Reason.GetRuleID(),
			ErrorKind:         string(d.Reason.GetErrorKind()),
			BigSegmentsStatus: sdkcompat.Status(d.Reason.GetBigSegmentsStatus()),
		},
	}
	if idx, ok := d.VariationIndex.Get(); ok {
		r.VariationIndex = &idx
	}
	if d.Reason.GetKind() == ldreason.EvalReasonRuleMatch {
		ri := d.Reason.GetRuleIndex()
		r.Reason.RuleIndex = &ri
	}
	return r
}
