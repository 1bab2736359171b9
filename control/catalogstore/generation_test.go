package catalogstore

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestSetGenerationMovesOnlyFromTheGivenGeneration(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		c := example(t)
		mustApply(t, s, c)
		ctx := t.Context()
		for _, step := range []struct {
			name     string
			from, to int
			want     Change
			moved    bool // refused: the mapping is elsewhere
			gen      int
			version  uint64
		}{
			{name: "bump", from: 1, to: 2, want: Updated, gen: 2, version: 2},
			{name: "the same bump again", from: 1, to: 2, want: Unchanged, gen: 2, version: 2},
			{name: "a bump from a generation the mapping left", from: 1, to: 3, moved: true, gen: 2, version: 2},
			{name: "the next bump", from: 2, to: 3, want: Updated, gen: 3, version: 3},
		} {
			got, err := s.SetGeneration(ctx, "power-users", step.from, step.to)
			if step.moved {
				if !errors.Is(err, ErrGenerationMoved) {
					t.Fatalf("%s: %v, %v; want ErrGenerationMoved", step.name, got, err)
				}
			} else if err != nil || got != step.want {
				t.Fatalf("%s = %v, %v; want %v", step.name, got, err, step.want)
			}
			want := c.Mappings[3]
			want.Generation = step.gen
			wantStored(t, s, want, step.version, step.name)
		}
		if _, err := s.SetGeneration(ctx, "nope", 1, 2); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetGeneration(nope) = %v, want ErrNotFound", err)
		}
	})
}

// wantStored checks the stored mapping want.Name and the store's version
// after a step.
func wantStored(t *testing.T, s *Store, want catalog.Mapping, version uint64, after string) {
	t.Helper()
	m, err := s.Get(t.Context(), want.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("after %s: %+v, want %+v", after, m, want)
	}
	if v := mustVersion(t, s); v != version {
		t.Errorf("version after %s = %d, want %d", after, v, version)
	}
}
