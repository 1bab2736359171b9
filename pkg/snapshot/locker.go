package snapshot

import (
	"context"
	"errors"
)

// ErrLocked is wrapped by the error of Open (and of Locker.Lock) when another
// process, or another Store in this process, holds the segment.
var ErrLocked = errors.New("segment is locked by another sync")

// Unlock releases a lock taken by a Locker. It is idempotent.
type Unlock func() error

// Locker makes a segment's sync exclusive: while one Store holds the lock of
// a segment, Lock of the same segment fails at once with an error wrapping
// ErrLocked instead of waiting, so a second sync fails fast rather than
// interleaving with the first. Locks of different segments are independent.
// A holder that dies must not leave the segment locked for ever.
//
// FileLocker, the default, is local to one machine; replicas sharing
// segments need a Locker they all see.
type Locker interface {
	Lock(ctx context.Context, id SegmentID) (Unlock, error)
}
