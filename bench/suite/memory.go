package suite

import (
	"context"
	"fmt"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/pkg/segmentstore/memsize"
)

// memoryTarget is issue 12's target 3: Redis memory per membership at
// most this many times the bare layout's.
const memoryTarget = 1.1

// memory measures target 3 with memsize on the members cohort, after the
// phases before it deleted what they wrote.
func (r *run) memory(ctx context.Context) bench.Row {
	n := r.cfg.Members
	row := bench.Row{Target: "3", Measure: fmt.Sprintf("Redis memory per membership (INFO memory used_memory delta, %s members)", count(n)),
		Unit: bench.Ratio, Bound: bench.Bound{Max: true, Limit: memoryTarget}}
	prefix := r.name("memory")
	r.prefixes = append(r.prefixes, prefix+"-"+memsize.Bare, prefix+"-"+memsize.SetIndex, prefix+"-"+memsize.Writer)
	r.say("memory: writing %s members in each of %d layouts", count(n), len(memsize.Layouts))
	res, err := memsize.Measure(ctx, r.rdb, prefix, n)
	if err != nil {
		row.Err = err
		return row
	}
	row.Subject = fmt.Sprintf("%.1f B (segmentstore.Writer's layout)", res[memsize.Writer])
	row.Reference = fmt.Sprintf("%.1f B (bare include sets)", res[memsize.Bare])
	row.Figure = res.Ratio()
	r.say("memory: %s per membership, bare %s", row.Subject, row.Reference)
	return row
}
