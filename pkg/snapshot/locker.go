package snapshot

import (
	"context"
	"errors"
)

// ErrLocked is wrapped by the error of Open (and of Locker.Lock) when another
// process, or another Store in this process, holds the segment.
var ErrLocked = errors.New("segment is locked by another sync")

// ErrLockLost is wrapped by the error of Lease.Check (and so of Store.Sync's
// commit) when the lease is no longer ours: it expired or another holder
// took the segment. Nothing of the run may be committed then; the next
// holder recovers it.
var ErrLockLost = errors.New("segment lock lost")

// Lease is a lock taken by a Locker.
type Lease interface {
	// Check returns nil if the lease is still ours, else an error (wrapping
	// ErrLockLost when it is known to be lost). Store calls it before a
	// commit moves the state, so a holder whose lease ran out while it
	// published never commits over the run of the one that took over.
	Check(ctx context.Context) error
	// Unlock releases the lease. It is idempotent, and never frees a lease
	// a later holder took.
	Unlock() error
}

// Locker makes a segment's sync exclusive: while one Store holds the lock of
// a segment, Lock of the same segment fails at once with an error wrapping
// ErrLocked instead of waiting, so a second sync fails fast rather than
// interleaving with the first. Locks of different segments are independent.
// A holder that dies must not leave the segment locked for ever.
//
// FileLocker, the default, is local to one machine; replicas sharing
// segments need a Locker they all see.
type Locker interface {
	Lock(ctx context.Context, id SegmentID) (Lease, error)
}
