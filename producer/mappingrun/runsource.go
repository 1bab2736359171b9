package mappingrun

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/source"
)

// SourceFor returns the members a destination's segment is to hold, for
// RunSource; client is the destination's Redis.
type SourceFor func(ctx context.Context, d catalog.Destination, client redis.UniversalClient) (source.Source, error)

// StateOptioner is a source of RunSource that needs more of its
// segment's snapshot store: its options come after the runner's own, and
// seq and rebuilder are the runner's shared state for the segment.
type StateOptioner interface {
	StateOptions(seq snapshot.SharedSeq, rebuilder snapshot.Rebuilder) []snapshot.Option
}

// RunSource syncs the members open gives into m's segment (at
// m.Generation) in each destination named in dests (all of m's when
// empty), through the same lease, shared state and event path as Run,
// whatever m's state (a paused mapping too) and with its max-shrink guard
// off: rollbacks and generation changes are deliberate. A destination m
// does not name is refused before anything runs.
func (r *Runner) RunSource(ctx context.Context, m catalog.Mapping, dests []string, open SourceFor) ([]Result, error) {
	for _, name := range dests {
		if !slices.Contains(m.Destinations, name) {
			return nil, fmt.Errorf("mapping %q does not write to destination %q (it writes to %v)", m.Name, name, m.Destinations)
		}
	}
	if len(dests) > 0 {
		m.Destinations = dests
	}
	m.MaxShrink = 0
	var results []Result
	var errs []error
	for _, name := range m.Destinations {
		one := m
		one.Destinations = []string{name}
		res, err := r.each(ctx, one, func() (source.Source, func() error, error) {
			d, err := r.dests.Destination(ctx, name)
			if err != nil {
				return nil, nil, err
			}
			client, err := r.connect(ctx, d)
			if err != nil {
				return nil, nil, err
			}
			s, err := open(ctx, d, client)
			return s, func() error { return nil }, err
		})
		results, errs = append(results, res...), append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}
