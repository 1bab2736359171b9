package segmentlease

import (
	"testing"

	"github.com/cohortsync/cohortsync/pkg/snapshot/snapshottest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestGaps: a gap recorded for a destination is unseen by every segment
// until a run marks it seen; a later gap is unseen again.
func TestGaps(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		g, err := NewGaps(b.Client, Config{Prefix: testenv.Name(t) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		check := func(wantCount, wantSeen uint64) {
			t.Helper()
			count, seen, err := g.Check(ctx, "staging", snapshottest.ID)
			if err != nil || count != wantCount || seen != wantSeen {
				t.Fatalf("Check = %d, %d, %v; want %d, %d", count, seen, err, wantCount, wantSeen)
			}
		}
		check(0, 0)
		if err := g.Record(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		check(1, 0)
		if err := g.MarkSeen(ctx, snapshottest.ID, 1); err != nil {
			t.Fatal(err)
		}
		check(1, 1)
		if err := g.Record(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		check(2, 1)
		if count, _, err := g.Check(ctx, "production", snapshottest.ID); err != nil || count != 0 {
			t.Fatalf("another destination's count = %d, %v; want 0", count, err)
		}
	})
}
