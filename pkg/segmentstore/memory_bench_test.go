package segmentstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// memoryMembers is how many members BenchmarkMemoryPerMembership writes.
const memoryMembers = 1_000_000

// BenchmarkMemoryPerMembership measures the Redis memory of one
// membership (issue 12 target 3: at most 1.1x the bare layout, or a
// documented reason) as INFO memory's used_memory delta over a segment of
// a million members, for three layouts: the bare layout (include sets
// alone: what LaunchDarkly's own writer stores), cohortsync's before
// since-tracking (include sets and a set of the members), and the
// Writer's (include sets, the member index as a hash of joining sequence
// numbers, the run index, metadata). It needs a real redis-server
// (COHORTSYNC_TEST_REDIS_URL; miniredis has no INFO memory) and reports
// bytes per membership of each and the ratios; BENCHMARKS.md has the
// figures.
func BenchmarkMemoryPerMembership(b *testing.B) {
	rdb := testenv.Redis(b).Client
	ctx := testenv.Context(b, 10*time.Minute)
	used := func() int64 {
		b.Helper()
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				return n
			}
		}
		b.Fatalf("INFO memory has no used_memory (a real redis-server is needed): %q", info)
		return 0
	}
	key := func(i int) string { return "user-" + strconv.Itoa(i) + "@example.com" }
	const ref = "bench-segment.g1"
	layouts := []struct {
		name  string
		write func(prefix string) error
	}{
		{"bare", func(prefix string) error { return rawWrite(ctx, rdb, prefix, ref, key, false) }},
		{"set-index", func(prefix string) error { return rawWrite(ctx, rdb, prefix, ref, key, true) }},
		{"writer", func(prefix string) error {
			w := NewWriter(rdb, time.Now)
			batch := make([]Change, 0, 20000)
			for i := range memoryMembers {
				batch = append(batch, Change{Prefix: prefix, Segment: "bench-segment", Generation: 1, ContextKind: "user",
					ContextKey: key(i), Seq: uint64(i + 1), Run: fmt.Sprintf("20261207T000000Z-%08d", i/100000)})
				if len(batch) == cap(batch) || i == memoryMembers-1 {
					if f, err := w.Apply(ctx, batch); err != nil || len(f) > 0 {
						return fmt.Errorf("apply: %v %v", f, err)
					}
					batch = batch[:0]
				}
			}
			return nil
		}},
	}
	perMember := map[string]float64{}
	for range b.N {
		for _, l := range layouts {
			prefix := testenv.Name(b) + "-" + l.name
			before := used()
			if err := l.write(prefix); err != nil {
				b.Fatal(err)
			}
			perMember[l.name] = float64(used()-before) / memoryMembers
			if err := testenv.DeletePrefix(ctx, rdb, prefix); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, l := range layouts {
		b.ReportMetric(perMember[l.name], "B/membership-"+l.name)
	}
	b.ReportMetric(perMember["writer"]/perMember["bare"], "x-bare")
	b.ReportMetric(perMember["writer"]/perMember["set-index"], "x-set-index")
}

// rawWrite writes memoryMembers include sets holding ref under prefix
// with pipelined SADDs, and with index a set of the members too.
func rawWrite(ctx context.Context, rdb redis.UniversalClient, prefix, ref string, key func(int) string, index bool) error {
	members := bigsegments.MembersKey(prefix, ref)
	for i := 0; i < memoryMembers; i += 10000 {
		p := rdb.Pipeline()
		for j := i; j < min(i+10000, memoryMembers); j++ {
			p.SAdd(ctx, bigsegments.IncludeKey(prefix, key(j)), ref)
			if index {
				p.SAdd(ctx, members, key(j))
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
