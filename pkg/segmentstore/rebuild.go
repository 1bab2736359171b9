package segmentstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// ErrNotCaughtUp is wrapped by Rebuilder.Members when the consumer did not
// apply, within Rebuilder.Wait, every event published before the call. It
// is worth retrying later: the consumer may be down or behind.
var ErrNotCaughtUp = errors.New("the consumer has not caught up")

// Rebuilder defaults.
const (
	DefaultRebuildWait = 2 * time.Minute
	DefaultRebuildPoll = time.Second
)

// Rebuilder reads a segment's committed content back from one destination
// (Client and Prefix), for snapshot.WithSharedState: what the consumer has
// applied is the snapshot every replica agrees on.
//
// Members waits until big_segments_synchronized_on reaches the time of the
// call: the consumer writes it only once every message produced before it
// is applied, so events of an earlier run still in flight are in Redis
// before the members are read. That compares the consumer's clock with
// this process's, so clocks are expected to agree to well under the time
// between two runs of a segment (NTP).
type Rebuilder struct {
	Client Client
	Prefix string
	// Wait bounds how long Members waits for the consumer. Default
	// DefaultRebuildWait.
	Wait time.Duration
	// Poll is how often synchronized_on is read while waiting. Default
	// DefaultRebuildPoll.
	Poll time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

var _ snapshot.Rebuilder = Rebuilder{}

// LastSeq is the highest sequence number the consumer applied to id's
// segment, 0 if none.
func (r Rebuilder) LastSeq(ctx context.Context, id snapshot.SegmentID) (uint64, error) {
	info, err := Info(ctx, r.Client, r.Prefix, bigsegments.Ref(id.Segment, id.Generation))
	return info.LastSeq, err
}

// Members waits for the consumer to catch up (see Rebuilder), then calls
// add with every member of id's segment. A segment whose members are of
// another context kind is refused: its snapshot is not id's.
func (r Rebuilder) Members(ctx context.Context, id snapshot.SegmentID, add func(key string) error) error {
	ref := bigsegments.Ref(id.Segment, id.Generation)
	if err := r.waitCaughtUp(ctx); err != nil {
		return err
	}
	info, err := Info(ctx, r.Client, r.Prefix, ref)
	if err != nil {
		return err
	}
	if info.ContextKind != "" && info.ContextKind != id.ContextKind {
		return fmt.Errorf("segment %q under prefix %q holds context kind %q, not %q", ref, r.Prefix, info.ContextKind, id.ContextKind)
	}
	return Members(ctx, r.Client, r.Prefix, ref, add)
}

func (r Rebuilder) waitCaughtUp(ctx context.Context) error {
	now := r.Now
	if now == nil {
		now = time.Now
	}
	wait, poll := r.Wait, r.Poll
	if wait <= 0 {
		wait = DefaultRebuildWait
	}
	if poll <= 0 {
		poll = DefaultRebuildPoll
	}
	start := now()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		at, ok, err := SyncTime(ctx, r.Client, r.Prefix)
		if err != nil {
			return err
		}
		if ok && !at.Before(start) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read back prefix %q: waiting for the consumer: %w", r.Prefix, ctx.Err())
		case <-timeout.C:
			seen := "never written"
			if ok {
				seen = at.UTC().Format(time.RFC3339Nano)
			}
			return fmt.Errorf("read back prefix %q: %w: %s is %s after %v, want %s or later",
				r.Prefix, ErrNotCaughtUp, bigsegments.SyncTimeKey(r.Prefix), seen, wait, start.UTC().Format(time.RFC3339Nano))
		case <-tick.C:
		}
	}
}
