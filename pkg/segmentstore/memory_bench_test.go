package segmentstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/segmentstore/memsize"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// memoryMembers is how many members BenchmarkMemoryPerMembership writes.
const memoryMembers = 1_000_000

// BenchmarkMemoryPerMembership measures the Redis memory of one
// membership (issue 12 target 3: at most 1.1x the bare layout, or a
// documented reason) with memsize.Measure over a segment of a million
// members: the bare layout, cohortsync's before since-tracking and the
// Writer's. It needs a real redis-server (COHORTSYNC_TEST_REDIS_URL;
// miniredis has no INFO memory); BENCHMARKS.md has the figures.
func BenchmarkMemoryPerMembership(b *testing.B) {
	rb := testenv.Redis(b)
	rdb, ok := rb.Client.(*redis.Client)
	if !ok || rb.Miniredis != nil {
		b.Fatalf("a real standalone redis-server is needed (%s), got %s", testenv.EnvRedisURL, rb.Name)
	}
	ctx := testenv.Context(b, 10*time.Minute)
	var res memsize.Result
	for range b.N {
		var err error
		if res, err = memsize.Measure(ctx, rdb, testenv.Name(b), memoryMembers); err != nil {
			b.Fatal(err)
		}
	}
	for _, l := range memsize.Layouts {
		b.ReportMetric(res[l], "B/membership-"+l)
	}
	b.ReportMetric(res.Ratio(), "x-bare")
	b.ReportMetric(res[memsize.Writer]/res[memsize.SetIndex], "x-set-index")
}
