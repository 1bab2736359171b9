package rollback

import (
	"errors"
	"fmt"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
)

// Target is a membership to restore: the one Segment had right after Run.
type Target struct {
	Segment snapshot.SegmentID
	Run     string
	// Boundary ends Run's reserved sequence range: the segment's events
	// numbered above it came after Run.
	Boundary uint64
	// Started is when Run started: every event after it was produced
	// later.
	Started time.Time
}

// ErrNotRestorable is wrapped by TargetOf's error for a run whose
// membership cannot be restored.
var ErrNotRestorable = errors.New("run cannot be rolled back to")

// TargetOf is the target of the run sum reported, which must have written
// the segment want (the mapping's segment, at its current generation).
func TargetOf(sum producer.Summary, want snapshot.SegmentID) (Target, error) {
	id := snapshot.SegmentID{Env: sum.Env, Segment: sum.Segment, Generation: sum.Generation, ContextKind: sum.ContextKind}
	t := Target{Segment: id, Run: sum.Run, Boundary: sum.SeqReserved, Started: sum.Started}
	if t.Boundary == 0 {
		// Runs recorded before SeqReserved existed: their last event marks
		// their place as well, if they had one.
		t.Boundary = sum.LastSeq
	}
	switch {
	case sum.Outcome != producer.Succeeded:
		return t, fmt.Errorf("run %s %s: only a run that succeeded left a membership to return to: %w", sum.Run, sum.Outcome, ErrNotRestorable)
	case id.Env != want.Env || id.Segment != want.Segment || id.ContextKind != want.ContextKind:
		return t, fmt.Errorf("run %s wrote segment %q of environment %q (context kind %q), not %q of %q (%q): %w",
			sum.Run, id.Segment, id.Env, id.ContextKind, want.Segment, want.Env, want.ContextKind, ErrNotRestorable)
	case id.Generation != want.Generation:
		return t, fmt.Errorf("run %s wrote generation %d, the segment is at generation %d now: %w", sum.Run, id.Generation, want.Generation, ErrNotRestorable)
	case t.Boundary == 0:
		return t, fmt.Errorf("run %s changed nothing and was recorded before runs kept their sequence range: roll back to the run before it: %w", sum.Run, ErrNotRestorable)
	}
	return t, nil
}
