package suite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/ldstore"
	"github.com/cohortsync/cohortsync/sdkcompat"
)

// sdkTarget is issue 12's target 5: the SDK's lookup p99 at most this
// many times a raw SMEMBERS round trip's.
const sdkTarget = 1.3

// sdkInitTimeout bounds the SDK client's start (its data is a local file).
const sdkInitTimeout = 10 * time.Second

// warmup lookups (of members not timed) open the connections and let the
// SDK read the store's status first.
const warmup = 100

// lookups measures target 5 on segment (generation 1, n members under
// prefix): for random distinct members, one evaluation by the Go SDK of a
// flag matching the segment (its Big Segments store reading Redis, as
// sdkcompat/ldgo configures it) and one raw SMEMBERS of the same include
// key, in alternating order; p99 of each.
func (r *run) lookups(ctx context.Context, row bench.Row, prefix, segment string, n int) bench.Row {
	m := min(r.cfg.Lookups, n-warmup)
	if m <= 0 {
		row.Err = fmt.Errorf("%d members leave none to time after %d warm-up lookups", n, warmup)
		return row
	}
	client, flag, err := r.sdkClient(ctx, prefix, segment)
	if err != nil {
		row.Err = err
		return row
	}
	defer func() { _ = client.Close() }() // nothing to flush: events are off
	// Distinct members, so that none is answered from the SDK's cache.
	picks := rand.Perm(n)[:m+warmup]
	sdk, raw := make([]time.Duration, 0, m), make([]time.Duration, 0, m)
	deadline := time.Now().Add(r.cfg.PhaseTimeout)
	for i, member := range picks {
		if time.Now().After(deadline) {
			row.Err = fmt.Errorf("%d of %d lookups within %s", i, len(picks), r.cfg.PhaseTimeout)
			return row
		}
		key := bench.Key(member)
		timeSDK := func() error {
			start := time.Now()
			v, detail, err := client.BoolVariationDetailCtx(ctx, flag, ldcontext.New(key), false)
			d := time.Since(start)
			if err != nil || !v {
				return fmt.Errorf("the SDK found %s not in %s: %v, big segments status %s (err %v)", key, segment, detail.Reason, detail.Reason.GetBigSegmentsStatus(), err)
			}
			if i >= warmup {
				sdk = append(sdk, d)
			}
			return nil
		}
		timeRaw := func() error {
			start := time.Now()
			refs, err := r.rdb.SMembers(ctx, bigsegments.IncludeKey(prefix, key)).Result()
			d := time.Since(start)
			if err != nil || !slices.Contains(refs, bigsegments.Ref(segment, 1)) {
				return fmt.Errorf("SMEMBERS of %s's include set: %v (err %v)", key, refs, err)
			}
			if i >= warmup {
				raw = append(raw, d)
			}
			return nil
		}
		first, second := timeSDK, timeRaw
		if i%2 == 1 {
			first, second = timeRaw, timeSDK
		}
		if err := errors.Join(first(), second()); err != nil {
			row.Err = err
			return row
		}
	}
	ps, pr := p99(sdk), p99(raw)
	row.Subject = fmt.Sprintf("p99 %s (p50 %s)", ps, p50(sdk))
	row.Reference = fmt.Sprintf("raw SMEMBERS round trip: p99 %s (p50 %s)", pr, p50(raw))
	row.Figure = ps.Seconds() / pr.Seconds()
	r.say("SDK lookups: %s; %s", row.Subject, row.Reference)
	return row
}

// sdkClient starts a Go SDK client serving one flag that matches the
// unbounded segment from a local file, with its Big Segments store on
// this run's Redis under prefix.
func (r *run) sdkClient(ctx context.Context, prefix, segment string) (*ld.LDClient, string, error) {
	req := sdkcompat.Request{RedisURL: r.cfg.RedisURL, Prefix: prefix, SegmentKey: segment, Generation: 1, ContextKeys: []string{bench.Key(0)}}
	data, err := sdkcompat.FlagData(req)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(r.dir, "flags.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, "", err
	}
	config := ld.Config{
		DataSource:       ldfiledata.DataSource().FilePaths(path),
		Events:           ldcomponents.NoEvents(),
		DiagnosticOptOut: true,
		Logging:          ldcomponents.NoLogging(),
		BigSegments:      ldcomponents.BigSegments(ldstore.NewStore(ctx, r.rdb, prefix).Configurer()),
	}
	client, err := ld.MakeCustomClient("sdk-cohortsync-bench-offline", config, sdkInitTimeout)
	if err != nil {
		if client != nil {
			_ = client.Close() // it did not start
		}
		return nil, "", fmt.Errorf("LaunchDarkly Go SDK did not initialise within %s: %w", sdkInitTimeout, err)
	}
	return client, req.WithDefaults().FlagKey, nil
}

// p99 and p50 are percentiles of ds (nearest rank); ds is sorted in place.
func p99(ds []time.Duration) time.Duration { return percentile(ds, 99) }
func p50(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100 // nearest rank, 1-based
	return ds[max(i-1, 0)]
}
