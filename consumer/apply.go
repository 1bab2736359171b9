package consumer

import (
	"context"
	"errors"
	"slices"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/schema"
)

// applier hands decoded events to the layout's one writer,
// segmentstore.Writer, with each event's environment mapped to its prefix.
type applier struct {
	w      *segmentstore.Writer
	prefix func(env string) string

	changes []segmentstore.Change // reused between batches by the single apply loop
}

// apply runs one attempt at writing evs. It returns the events Redis
// rejected permanently (Failure.Index indexes evs), or an error that is
// transient (retry the batch) or marked retry.Permanent (retrying cannot
// help: stop).
func (a *applier) apply(ctx context.Context, evs []*schema.Event) ([]segmentstore.Failure, error) {
	a.changes = slices.Grow(a.changes[:0], len(evs))
	for _, ev := range evs {
		a.changes = append(a.changes, segmentstore.Change{
			Prefix:      a.prefix(ev.Env),
			Segment:     ev.Segment,
			Generation:  ev.Generation,
			ContextKind: ev.ContextKind,
			ContextKey:  ev.ContextKey,
			Remove:      ev.Op != schema.OpAdd,
			Seq:         ev.Seq,
			Run:         ev.Run,
		})
	}
	f, err := a.w.Apply(ctx, a.changes)
	if errors.Is(err, segmentstore.ErrFatal) {
		return nil, retry.Permanent(err)
	}
	return f, err
}
