package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestFileLockerNamesTheHolder: the local lock's message says which process
// holds the segment, and where the lock file is.
func TestFileLockerNamesTheHolder(t *testing.T) {
	l := FileLocker{StateDir: t.TempDir()}
	lease, err := l.Lock(context.Background(), testID)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock()
	_, err = l.Lock(context.Background(), testID)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("holder pid %d", os.Getpid())) ||
		!strings.Contains(err.Error(), testID.dirName()) {
		t.Fatalf("Lock = %v, want ErrLocked naming pid %d and the lock file", err, os.Getpid())
	}
}

// lostLocker hands out leases whose Check fails once lost is set, as a
// shared lease that expired while its holder published.
type lostLocker struct{ lost bool }

type lostLease struct{ l *lostLocker }

func (l *lostLocker) Lock(context.Context, SegmentID) (Lease, error) { return lostLease{l}, nil }

func (l lostLease) Check(context.Context) error {
	if l.l.lost {
		return fmt.Errorf("lease of the test: %w", ErrLockLost)
	}
	return nil
}

func (lostLease) Unlock() error { return nil }

// TestCommitChecksTheLease: a run whose lease is lost by the time every
// event is acknowledged does not commit; its phase stays pending and the
// next holder recovers it, ending with the right membership.
func TestCommitChecksTheLease(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash)

	l := &lostLocker{}
	s, err := Open(context.Background(), dir, testID, WithLocker(l))
	if err != nil {
		t.Fatal(err)
	}
	l.lost = true
	_, err = s.Sync(context.Background(), "r01", addAll(history[1]), samePub(&fakePub{log: &log, failAfter: -1}), SyncOptions{SendBatch: 2})
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("Sync with a lost lease = %v, want ErrLockLost", err)
	}
	if s.CommittedRun() != "r00" || s.PendingRun() != "r01" {
		t.Fatalf("after a lost lease: committed %q pending %q, want r00 and r01 pending", s.CommittedRun(), s.PendingRun())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	syncRun(t, dir, "r02", history[2], &log, noCrash)
	checkFinal(t, dir, log, history[2], "r02")
}
