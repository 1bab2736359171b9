package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// lockers are the Locker implementations the conformance tests run against.
var lockers = []struct {
	name string
	new  func(t *testing.T) Locker
}{
	{"file", func(t *testing.T) Locker { return FileLocker{StateDir: t.TempDir()} }},
}

// TestLockerConformance pins what Store relies on from any Locker.
func TestLockerConformance(t *testing.T) {
	other := testID
	other.Generation = 2
	tests := []struct {
		name string
		run  func(t *testing.T, l Locker)
	}{
		{"second lock on the same segment fails at once with ErrLocked", func(t *testing.T, l Locker) {
			unlock := mustLock(t, l, testID)
			defer unlock()
			start := time.Now()
			if _, err := l.Lock(context.Background(), testID); !errors.Is(err, ErrLocked) {
				t.Fatalf("second Lock = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("second Lock took %v; it must not wait", d)
			}
		}},
		{"another segment is not locked", func(t *testing.T, l Locker) {
			unlock := mustLock(t, l, testID)
			defer unlock()
			mustLock(t, l, other)()
		}},
		{"unlock frees the segment", func(t *testing.T, l Locker) {
			if err := mustLock(t, l, testID)(); err != nil {
				t.Fatalf("unlock: %v", err)
			}
			mustLock(t, l, testID)()
		}},
		{"unlock is idempotent and does not free a later holder", func(t *testing.T, l Locker) {
			unlock := mustLock(t, l, testID)
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
			later := mustLock(t, l, testID)
			defer later()
			if err := unlock(); err != nil {
				t.Fatalf("second unlock: %v", err)
			}
			if _, err := l.Lock(context.Background(), testID); !errors.Is(err, ErrLocked) {
				t.Fatalf("Lock after a stale unlock = %v, want ErrLocked: the later holder lost its lock", err)
			}
		}},
		{"a cancelled context takes no lock", func(t *testing.T, l Locker) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := l.Lock(ctx, testID); !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock with a cancelled context = %v, want context.Canceled", err)
			}
			mustLock(t, l, testID)()
		}},
		{"Open with the locker fails with ErrLocked while another Store holds the segment", func(t *testing.T, l Locker) {
			dir := t.TempDir()
			s1, err := Open(context.Background(), dir, testID, WithLocker(l))
			if err != nil {
				t.Fatal(err)
			}
			defer s1.Close()
			if _, err := Open(context.Background(), dir, testID, WithLocker(l)); !errors.Is(err, ErrLocked) {
				t.Fatalf("second Open = %v, want ErrLocked", err)
			}
		}},
	}
	for _, impl := range lockers {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) { tt.run(t, impl.new(t)) })
		}
	}
}

func mustLock(t *testing.T, l Locker, id SegmentID) Unlock {
	t.Helper()
	unlock, err := l.Lock(context.Background(), id)
	if err != nil {
		t.Fatalf("Lock(%v): %v", id, err)
	}
	return unlock
}

// TestFileLockerNamesTheHolder: the local lock's message says which process
// holds the segment, and where the lock file is.
func TestFileLockerNamesTheHolder(t *testing.T) {
	l := FileLocker{StateDir: t.TempDir()}
	defer mustLock(t, l, testID)()
	_, err := l.Lock(context.Background(), testID)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("holder pid %d", os.Getpid())) ||
		!strings.Contains(err.Error(), testID.dirName()) {
		t.Fatalf("Lock = %v, want ErrLocked naming pid %d and the lock file", err, os.Getpid())
	}
}
