package segments

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// ErrSyncedSegment is wrapped by every direct write refused because a
// mapping owns the segment (an API answers it with 409 Conflict).
var ErrSyncedSegment = errors.New("segment is synced by a mapping")

// SyncedError is the refusal of a direct write to a synced segment: it
// names the mapping that owns it.
type SyncedError struct {
	Segment     string
	Destination string
	Mapping     string
	// Op is the refused write: add, remove, import.
	Op string
}

func (e *SyncedError) Error() string {
	return fmt.Sprintf("%s refused: segment %q in destination %q is synced by mapping %q, which owns its members "+
		"(its next run would undo the change); change the mapping's source, or delete the mapping to make the segment a list segment",
		e.Op, e.Segment, e.Destination, e.Mapping)
}

// Is makes errors.Is(err, ErrSyncedSegment) true.
func (e *SyncedError) Is(target error) bool { return target == ErrSyncedSegment }

// Owner is the mapping that names segment in destination, if any; a
// paused mapping still owns its segment. The catalog allows one mapping
// per segment, generation and destination; the one of generation wins,
// else any naming the segment there owns every generation of it (a
// generation bump leaves the old one to the mapping too).
func Owner(mappings []catalog.Mapping, segment, destination string, generation int) (catalog.Mapping, bool) {
	var (
		owner catalog.Mapping
		found bool
	)
	for _, m := range mappings {
		if m.Segment != segment || !slices.Contains(m.Destinations, destination) {
			continue
		}
		if m.Generation == generation {
			return m, true
		}
		if !found {
			owner, found = m, true
		}
	}
	return owner, found
}
