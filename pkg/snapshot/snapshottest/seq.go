package snapshottest

import (
	"context"
	"errors"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// SeqAllocatorConformance runs the contract Store relies on from any
// SeqAllocator as subtests. newAlloc returns a fresh allocator that has
// reserved nothing yet; floors are passed as Store passes them, one above
// the last number it recorded.
func SeqAllocatorConformance(t *testing.T, newAlloc func(t *testing.T) snapshot.SeqAllocator) {
	for _, tt := range []struct {
		name     string
		floor, n uint64
	}{
		{"one number from 1", 1, 1},
		{"a range from a high floor", 1 << 40, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mustReserve(t, newAlloc(t), tt.floor, tt.n)
			if r.First < tt.floor || r.Last-r.First+1 != tt.n {
				t.Fatalf("Reserve(floor %d, n %d) = %d..%d", tt.floor, tt.n, r.First, r.Last)
			}
		})
	}
	t.Run("successive ranges grow and never overlap", func(t *testing.T) {
		a := newAlloc(t)
		prev := mustReserve(t, a, 1, 5)
		for i, n := range []uint64{1, 3, 100, 2} {
			r := mustReserve(t, a, prev.Last+1, n)
			if r.First <= prev.Last || r.Last-r.First+1 != n {
				t.Fatalf("reservation %d of %d after %d..%d = %d..%d", i+1, n, prev.First, prev.Last, r.First, r.Last)
			}
			prev = r
		}
	})
	t.Run("zero numbers are refused", func(t *testing.T) {
		if r, err := newAlloc(t).Reserve(t.Context(), ID, 1, 0); err == nil {
			t.Fatalf("Reserve of 0 numbers = %d..%d", r.First, r.Last)
		}
	})
	t.Run("a cancelled context reserves nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := newAlloc(t).Reserve(ctx, ID, 1, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve = %v, want context.Canceled", err)
		}
	})
}

func mustReserve(t *testing.T, a snapshot.SeqAllocator, floor, n uint64) snapshot.SeqRange {
	t.Helper()
	r, err := a.Reserve(t.Context(), ID, floor, n)
	if err != nil {
		t.Fatalf("Reserve(floor %d, n %d): %v", floor, n, err)
	}
	return r
}
