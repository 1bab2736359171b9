package snapshot

import (
	"context"
	"fmt"
	"math"
)

// SeqRange is the sequence numbers First..Last, both included, reserved for
// the events of one phase.
type SeqRange struct {
	First, Last uint64
}

// SeqAllocator reserves the sequence numbers of a phase's events. Numbers
// must only grow per segment, across runs, crashes and recoveries: the
// consumer keeps the last event of a membership by sequence number.
//
// Reserve returns n >= 1 consecutive numbers for segment id, none below
// floor and none that an earlier Reserve for id returned. The Store passes
// as floor one above every number its state records as reserved, and records
// the returned range in its state file before any number of it is published;
// a range lost to a crash before that was never used. An allocator whose
// counter lives elsewhere (shared by replicas) returns a range above both
// floor and its own counter. Commit needs nothing from the allocator: the
// next floor already moves past the committed range.
type SeqAllocator interface {
	Reserve(ctx context.Context, id SegmentID, floor, n uint64) (SeqRange, error)
}

// StateSeq is the default SeqAllocator: the store's state file is the
// counter. It returns the n numbers from floor, which the state file makes
// durable; it fits stores that one machine owns, as a FileLocker's are.
type StateSeq struct{}

// Reserve returns floor..floor+n-1.
func (StateSeq) Reserve(ctx context.Context, id SegmentID, floor, n uint64) (SeqRange, error) {
	if err := ctx.Err(); err != nil {
		return SeqRange{}, fmt.Errorf("reserve sequence numbers: %w", err)
	}
	if floor < 1 || n < 1 || n-1 > math.MaxUint64-floor {
		return SeqRange{}, fmt.Errorf("reserve sequence numbers of %s: %d from %d does not fit", id, n, floor)
	}
	return SeqRange{First: floor, Last: floor + n - 1}, nil
}
