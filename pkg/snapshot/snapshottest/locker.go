package snapshottest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// ID is the segment the conformance tests lock and reserve numbers for.
var ID = snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}

// LockerConformance runs the contract Store relies on from any Locker as
// subtests; newLocker returns a fresh Locker whose segments nobody holds.
func LockerConformance(t *testing.T, newLocker func(t *testing.T) snapshot.Locker) {
	other := ID
	other.Generation = 2
	tests := []struct {
		name string
		run  func(t *testing.T, l snapshot.Locker)
	}{
		{"second lock on the same segment fails at once with ErrLocked", func(t *testing.T, l snapshot.Locker) {
			defer unlock(t, MustLock(t, l, ID))
			start := time.Now()
			if _, err := l.Lock(t.Context(), ID); !errors.Is(err, snapshot.ErrLocked) {
				t.Fatalf("second Lock = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("second Lock took %v; it must not wait", d)
			}
		}},
		{"another segment is not locked", func(t *testing.T, l snapshot.Locker) {
			defer unlock(t, MustLock(t, l, ID))
			unlock(t, MustLock(t, l, other))
		}},
		{"unlock frees the segment", func(t *testing.T, l snapshot.Locker) {
			unlock(t, MustLock(t, l, ID))
			unlock(t, MustLock(t, l, ID))
		}},
		{"a held lease checks out", func(t *testing.T, l snapshot.Locker) {
			lease := MustLock(t, l, ID)
			defer unlock(t, lease)
			if err := lease.Check(t.Context()); err != nil {
				t.Fatalf("Check of a held lease = %v", err)
			}
		}},
		{"unlock is idempotent and does not free a later holder", func(t *testing.T, l snapshot.Locker) {
			first := MustLock(t, l, ID)
			unlock(t, first)
			later := MustLock(t, l, ID)
			defer unlock(t, later)
			if err := first.Unlock(); err != nil {
				t.Fatalf("second unlock: %v", err)
			}
			if _, err := l.Lock(t.Context(), ID); !errors.Is(err, snapshot.ErrLocked) {
				t.Fatalf("Lock after a stale unlock = %v, want ErrLocked: the later holder lost its lock", err)
			}
		}},
		{"a cancelled context takes no lock", func(t *testing.T, l snapshot.Locker) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := l.Lock(ctx, ID); !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock with a cancelled context = %v, want context.Canceled", err)
			}
			unlock(t, MustLock(t, l, ID))
		}},
		{"Open with the locker fails with ErrLocked while another Store holds the segment", func(t *testing.T, l snapshot.Locker) {
			dir := t.TempDir()
			s1, err := snapshot.Open(t.Context(), dir, ID, snapshot.WithLocker(l))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s1.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			if _, err := snapshot.Open(t.Context(), t.TempDir(), ID, snapshot.WithLocker(l)); !errors.Is(err, snapshot.ErrLocked) {
				t.Fatalf("second Open = %v, want ErrLocked", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newLocker(t)) })
	}
}

// MustLock locks id or fails the test.
func MustLock(t *testing.T, l snapshot.Locker, id snapshot.SegmentID) snapshot.Lease {
	t.Helper()
	lease, err := l.Lock(t.Context(), id)
	if err != nil {
		t.Fatalf("Lock(%v): %v", id, err)
	}
	return lease
}

func unlock(t *testing.T, l snapshot.Lease) {
	t.Helper()
	if err := l.Unlock(); err != nil {
		t.Errorf("unlock: %v", err)
	}
}
