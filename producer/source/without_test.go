package source_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestWithout: dropped keys become exclusions with the reason and their
// record's position, counted in the stats in place of keys; other keys
// and exclusions pass through.
func TestWithout(t *testing.T) {
	const csv = "user_id\nalice\nbob\n\"\"\ncarol\nbob\n"
	for _, tc := range []struct {
		name     string
		drop     map[string]string
		keys     []string
		excluded []source.Exclusion
		stats    map[string]int64
	}{
		{"nothing to drop", nil, []string{"alice", "bob", "carol", "bob"},
			[]source.Exclusion{{Row: 3, Line: 4, Reason: "empty_id"}}, map[string]int64{"empty_id": 1}},
		{"a key absent from the source", map[string]string{"dave": "r1"}, []string{"alice", "bob", "carol", "bob"},
			[]source.Exclusion{{Row: 3, Line: 4, Reason: "empty_id"}}, map[string]int64{"empty_id": 1}},
		{"a key in twice", map[string]string{"bob": "r1"}, []string{"alice", "carol"},
			[]source.Exclusion{{Row: 2, Value: "bob", Reason: "erased"}, {Row: 3, Line: 4, Reason: "empty_id"}, {Row: 5, Value: "bob", Reason: "erased"}},
			map[string]int64{"empty_id": 1, "erased": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := source.Without(csvfile.New(strings.NewReader(csv), "m.csv", csvfile.Options{}), tc.drop, source.ReasonErased)
			var keys []string
			var excl []source.Exclusion
			st, err := src.Read(context.Background(), func(k string) error { keys = append(keys, k); return nil },
				func(e source.Exclusion) error { e.Detail = ""; excl = append(excl, e); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keys, tc.keys) || !slices.Equal(excl, tc.excluded) {
				t.Errorf("keys %q, exclusions %+v; want %q, %+v", keys, excl, tc.keys, tc.excluded)
			}
			if st.Rows != 5 || st.Keys != int64(len(tc.keys)) || !maps.Equal(st.Excluded, tc.stats) {
				t.Errorf("stats %+v: want 5 rows, %d keys, excluded %v", st, len(tc.keys), tc.stats)
			}
			if src.Name() != "m.csv" || src.Kind() != "csv" {
				t.Errorf("name %q kind %q: want the source's", src.Name(), src.Kind())
			}
		})
	}
}
