package source

import "context"

// ReasonErased is the exclusion reason of a key erased from its
// environment (cohortsync erase): a sync never adds it back.
const ReasonErased = "erased"

// Without returns src without the keys of drop: each is reported as an
// exclusion with reason, in place of being emitted, so that it shows in
// the run's counts and exclusion report. Its Row is the record's position
// counting every emit and exclusion of src (each record of the sources of
// this module yields exactly one), and it has no Line. A nil or empty drop
// returns src itself.
func Without[V any](src Source, drop map[string]V, reason string) Source {
	if len(drop) == 0 {
		return src
	}
	return &without[V]{Source: src, drop: drop, reason: reason}
}

type without[V any] struct {
	Source
	drop   map[string]V
	reason string
}

func (w *without[V]) Read(ctx context.Context, emit func(string) error, exclude func(Exclusion) error) (Stats, error) {
	var rows, dropped int64
	st, err := w.Source.Read(ctx, func(key string) error {
		rows++
		if _, ok := w.drop[key]; ok {
			dropped++
			return exclude(Exclusion{Row: rows, Value: key, Reason: w.reason})
		}
		return emit(key)
	}, func(ex Exclusion) error {
		rows++
		return exclude(ex)
	})
	if dropped > 0 {
		st.Keys -= dropped
		if st.Excluded == nil {
			st.Excluded = map[string]int64{}
		}
		st.Excluded[w.reason] += dropped
	}
	return st, err
}
