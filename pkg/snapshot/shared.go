package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// SharedSeq is a SeqAllocator whose counter every replica shares and can
// read: High is the last number reserved for id by anyone (0 if none).
type SharedSeq interface {
	SeqAllocator
	High(ctx context.Context, id SegmentID) (uint64, error)
}

// Rebuilder reads back what the destination holds of a segment: the ground
// truth a committed snapshot stands for, once every published event is
// applied.
type Rebuilder interface {
	// LastSeq is the highest sequence number applied to id's segment (0 if
	// none). It need not wait for the consumer.
	LastSeq(ctx context.Context, id SegmentID) (uint64, error)
	// Members calls add with every member of id's segment, after every
	// event published before the call is applied (or fails: a snapshot read
	// before that would miss changes still in flight).
	Members(ctx context.Context, id SegmentID, add func(key string) error) error
}

// WithSharedState makes the local directory a cache rather than the truth:
// before each Sync the store checks its state against the shared sequence
// counter and what the destination applied, and rebuilds the committed
// snapshot from r when the local state is missing or stale (another
// replica synced since, or the directory was lost). seq also becomes the
// store's SeqAllocator.
func WithSharedState(seq SharedSeq, r Rebuilder) Option {
	return func(o *options) { o.seq, o.shared, o.rebuilder = seq, seq, r }
}

// WithRebuild makes the next Sync rebuild the committed snapshot from the
// Rebuilder (WithSharedState) even if the local state looks current, for
// reason: the destination is known to have missed events (a consumer set
// them aside while it was down), so only what it holds is the truth.
func WithRebuild(reason string) Option {
	return func(o *options) { o.rebuildReason = reason }
}

// RebuildResult says why and how Sync rebuilt the committed snapshot.
type RebuildResult struct {
	// Reason says what the local state lacked.
	Reason string
	// Members is the number of keys of the rebuilt snapshot.
	Members int64
	// DroppedPending is the run whose pending snapshot was dropped (its
	// events, if any were published, are in the destination already), ""
	// if none was pending.
	DroppedPending string
	Sort           SortStats
}

// localHigh is the last sequence number this directory knows reserved.
func (s *Store) localHigh() uint64 {
	if p := s.st.Pending; p != nil {
		return p.ReservedUpto
	}
	return s.st.NextSeq - 1
}

// reconcile trusts the local state only if nobody reserved a number since
// it was written (the shared counter ends where it does) and the
// destination applied nothing beyond it; otherwise it replaces the state
// with a committed snapshot read from the destination. Diffing against
// anything else could resurrect members another replica removed, or miss
// removing members it added.
func (s *Store) reconcile(ctx context.Context, chunkBytes int64) (*RebuildResult, error) {
	if s.shared == nil {
		return nil, nil
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	high, err := s.shared.High(ctx, s.id)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: read the shared sequence counter: %w", err)
	}
	applied, err := s.rebuilder.LastSeq(ctx, s.id)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: read the last applied sequence number: %w", err)
	}
	local := s.localHigh()
	var reason string
	switch {
	case s.rebuildReason != "":
		reason = s.rebuildReason
	case high == local && applied <= high:
		return nil, nil
	case applied > high:
		// The counter was lost (a new control Redis) while the
		// destination kept its data: number above what it applied.
		reason = fmt.Sprintf("the destination applied sequence %d, beyond the shared counter %d", applied, high)
	case local == 0:
		reason = fmt.Sprintf("no local state (the shared counter is at %d)", high)
	case high > local:
		reason = fmt.Sprintf("local state ends at sequence %d, the shared counter at %d (another replica synced since)", local, high)
	default:
		reason = fmt.Sprintf("local state ends at sequence %d, beyond the shared counter %d", local, high)
	}
	res := &RebuildResult{Reason: reason, DroppedPending: s.PendingRun()}
	sorter, err := s.NewSorter(chunkBytes)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sorter.Close() }() // Finish owns the output; Close only frees spill files
	if err := s.rebuilder.Members(ctx, s.id, sorter.Add); err != nil {
		return nil, fmt.Errorf("snapshot store: rebuild from the destination (%s): %w", reason, err)
	}
	run := "rebuilt-" + strconv.FormatUint(high, 10)
	name := snapPrefix + run + snapSuffix
	tmp := filepath.Join(s.dir, tmpDirName, name)
	res.Sort, err = sorter.Finish(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: rebuild: sort: %w", err)
	}
	res.Members = res.Sort.Unique
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return nil, fmt.Errorf("snapshot store: rebuild: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	next := s.st
	next.Committed = &snapshotRef{File: name, Run: run, Count: res.Members}
	next.Pending = nil
	next.NextSeq = max(high, local, applied) + 1
	if err := s.writeState(next); err != nil {
		return nil, err
	}
	if err := s.removeGarbage(); err != nil {
		return res, err
	}
	return res, nil
}

// announcingLease is the part of a Lease that announces its loss while a run
// goes on (segmentlease's does); a Store whose Lease has it stops the run
// at once rather than at its commit.
type announcingLease interface {
	Lost() <-chan struct{}
	Err() error
}

// leaseContext returns ctx cancelled, with the lease's error as cause, as
// soon as the lease is known lost. stop releases the watcher.
func (s *Store) leaseContext(ctx context.Context) (context.Context, func()) {
	l, ok := s.lease.(announcingLease)
	if !ok {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-l.Lost():
			cancel(l.Err())
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-finished
		cancel(nil)
	}
}

// leaseError adds the lease's loss to err when it is why the run stopped,
// so the caller sees ErrLockLost and not a bare context.Canceled.
func leaseError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, cause) || !errors.Is(cause, ErrLockLost) {
		return err
	}
	return errors.Join(err, cause)
}
