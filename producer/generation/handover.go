package generation

import (
	"context"
	"fmt"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/source"
)

// SourceKind is the source label of a handover's events.
const SourceKind = "handover"

// Handover is generation Segment.Generation's members, as the destination
// holds them, republished in full; see the package comment. Give it to
// mappingrun.Runner.RunSource, which applies its StateOptions.
type Handover struct {
	Segment snapshot.SegmentID
	// From is the generation whose removal the handover follows.
	From int
	// Destination reads the members once the consumer has applied
	// everything published before.
	Destination segmentstore.Rebuilder
}

// Name says what is republished.
func (h *Handover) Name() string {
	return fmt.Sprintf("members of %s, republished after the removal of generation %d", bigsegments.Ref(h.Segment.Segment, h.Segment.Generation), h.From)
}

// Kind is SourceKind.
func (h *Handover) Kind() string { return SourceKind }

// Read emits every member the destination holds.
func (h *Handover) Read(ctx context.Context, emit func(string) error, _ func(source.Exclusion) error) (source.Stats, error) {
	var st source.Stats
	err := h.Destination.Members(ctx, h.Segment, func(k string) error {
		st.Rows++
		return emit(k)
	})
	st.Keys = st.Rows
	return st, err
}

// StateOptions make the run diff against an empty snapshot, so that every
// member is published.
func (h *Handover) StateOptions(seq snapshot.SharedSeq, rebuilder snapshot.Rebuilder) []snapshot.Option {
	return []snapshot.Option{
		snapshot.WithSharedState(seq, emptyBaseline{rebuilder}),
		snapshot.WithRebuild(fmt.Sprintf("republishing every member after the removal of generation %d", h.From)),
	}
}

// emptyBaseline is a Rebuilder reading back no member: the snapshot a
// handover diffs against.
type emptyBaseline struct{ snapshot.Rebuilder }

func (emptyBaseline) Members(context.Context, snapshot.SegmentID, func(string) error) error {
	return nil
}
