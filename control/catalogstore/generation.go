package catalogstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// ErrGenerationMoved is wrapped by SetGeneration's error when the mapping
// is no longer at the generation the caller moves it from.
var ErrGenerationMoved = errors.New("the mapping's generation changed meanwhile")

// SetGeneration moves the mapping called name from generation from to to,
// changing nothing else, so that its next runs write generation to: Updated,
// or Unchanged if it is at to already. A mapping at any other generation
// is left alone (an error wrapping ErrGenerationMoved): two bumps never
// interleave. A later Apply of a file giving another generation sets it
// back: update the file too.
func (s *Store) SetGeneration(ctx context.Context, name string, from, to int) (Change, error) {
	if to < 1 {
		return "", fmt.Errorf("catalogstore: generation %d of %q: want 1 or more", to, name)
	}
	return s.update(ctx, name, "set generation", func(m *catalog.Mapping) error {
		if m.Generation != from && m.Generation != to {
			return fmt.Errorf("catalogstore: mapping %q is at generation %d, not %d: %w", name, m.Generation, from, ErrGenerationMoved)
		}
		m.Generation = to
		return nil
	})
}
