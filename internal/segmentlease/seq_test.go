package segmentlease

import (
	"cmp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/snapshot/snapshottest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func newSeq(t *testing.T, b testenv.RedisBackend, prefix string) *SeqAllocator {
	t.Helper()
	a, err := NewSeqAllocator(b.Client, Config{Prefix: prefix, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSeqAllocatorConformance(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		snapshottest.SeqAllocatorConformance(t, func(t *testing.T) snapshot.SeqAllocator {
			return newSeq(t, b, testenv.Name(t)+":")
		})
	})
}

// TestSeqAllocatorSharedCounter: the counter, not the caller's floor, wins
// when it is ahead (another replica reserved), and a floor ahead of the
// counter (a store's own record) is honoured; numbers past MaxSeq are refused.
func TestSeqAllocatorSharedCounter(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		a := newSeq(t, b, testenv.Name(t)+":")
		for i, st := range []struct {
			floor, n, first, last uint64
		}{
			{100, 5, 100, 104}, // floor ahead of an empty counter
			{1, 3, 105, 107},   // stale floor: the counter is ahead
			{108, 1, 108, 108}, // floor just past the counter
			{500, 2, 500, 501}, // floor far ahead: a gap, never a reuse
		} {
			r, err := a.Reserve(t.Context(), snapshottest.ID, st.floor, st.n)
			if err != nil {
				t.Fatal(err)
			}
			if r.First != st.first || r.Last != st.last {
				t.Fatalf("reservation %d (floor %d, n %d) = %d..%d, want %d..%d", i, st.floor, st.n, r.First, r.Last, st.first, st.last)
			}
		}
		if _, err := a.Reserve(t.Context(), snapshottest.ID, MaxSeq, 2); err == nil {
			t.Fatal("Reserve past MaxSeq succeeded")
		}
		other := snapshottest.ID
		other.Segment = "other"
		if r, err := a.Reserve(t.Context(), other, 1, 1); err != nil || r.First != 1 {
			t.Fatalf("first Reserve of another segment = %d..%d, %v, want 1..1: segments have their own counters", r.First, r.Last, err)
		}
	})
}

// TestConcurrentAllocatorsNeverOverlap: two allocators (two replicas) on one
// counter, reserving at once with stale floors, never hand out a number twice.
func TestConcurrentAllocatorsNeverOverlap(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		prefix := testenv.Name(t) + ":"
		allocs := []*SeqAllocator{newSeq(t, b, prefix), newSeq(t, b, prefix)}
		var mu sync.Mutex
		var ranges []snapshot.SeqRange
		var wg sync.WaitGroup
		errs := make(chan error, len(allocs))
		for w, a := range allocs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					r, err := a.Reserve(t.Context(), snapshottest.ID, 1, uint64(1+(i+w)%5))
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					ranges = append(ranges, r)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.SortFunc(ranges, func(x, y snapshot.SeqRange) int { return cmp.Compare(x.First, y.First) })
		for i := 1; i < len(ranges); i++ {
			if ranges[i].First <= ranges[i-1].Last {
				t.Fatalf("ranges %d..%d and %d..%d overlap", ranges[i-1].First, ranges[i-1].Last, ranges[i].First, ranges[i].Last)
			}
		}
		if len(ranges) != 400 {
			t.Fatalf("%d ranges, want 400", len(ranges))
		}
	})
}

// TestSeqAllocatorHigh: High reads the shared counter, whichever allocator
// moved it, and is 0 for a segment never reserved.
func TestSeqAllocatorHigh(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		prefix := testenv.Name(t) + ":"
		a, other := newSeq(t, b, prefix), newSeq(t, b, prefix)
		if h, err := a.High(t.Context(), snapshottest.ID); err != nil || h != 0 {
			t.Fatalf("High of a new segment = %d, %v; want 0", h, err)
		}
		if _, err := other.Reserve(t.Context(), snapshottest.ID, 40, 3); err != nil {
			t.Fatal(err)
		}
		if h, err := a.High(t.Context(), snapshottest.ID); err != nil || h != 42 {
			t.Fatalf("High after another replica reserved 40..42 = %d, %v; want 42", h, err)
		}
	})
}
