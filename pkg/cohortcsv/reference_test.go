package cohortcsv

import (
	"context"
	"fmt"
	"io"
)

// readReference is Read as it was before the fast path: every record through
// encoding/csv, which reads the decompressed input itself. The differential
// tests and benchmarks hold Read to it.
func readReference(ctx context.Context, r io.Reader, opts Options, onKey func(key string) error, onExclusion func(Exclusion) error) (Stats, error) {
	st := Stats{Excluded: map[string]int64{}}
	in, err := decompress(r)
	if err != nil {
		return st, err
	}
	recs, err := newCSVRecords(in, opts, &st, onKey, onExclusion)
	if err != nil {
		return st, err
	}
	for {
		if st.Rows%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("after %d rows: %w", st.Rows, err)
			}
		}
		if err := recs.next(0); err == io.EOF {
			return st, nil
		} else if err != nil {
			return st, err
		}
	}
}
