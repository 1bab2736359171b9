package rollback

import (
	"errors"
	"testing"
	"time"
)

func TestPartitionCheckRefusesOnlyHolesThatCanHideLaterEvents(t *testing.T) {
	// The record at offset o was produced at minute o.
	at := func(o int64) time.Time { return time.Date(2026, 12, 7, 15, int(o), 0, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		first, end int64
		seen       []int64 // offsets read, in order
		lastBefore int64   // last event of the segment up to the boundary
		since      int64   // the minute the run started, less the skew; 0: before everything
		skip       int64   // the first record produced since; 0: none skipped
		refused    bool
	}{
		{name: "every offset present", end: 5, seen: []int64{0, 1, 2, 3, 4}, lastBefore: 1},
		{name: "empty partition", end: 0, lastBefore: -1},
		{name: "hole before the last event up to the boundary", end: 6, seen: []int64{0, 3, 4, 5}, lastBefore: 3},
		{name: "head removed before the last event up to the boundary", first: 2, end: 5, seen: []int64{2, 3, 4}, lastBefore: 2},
		{name: "hole after the last event up to the boundary", end: 6, seen: []int64{0, 1, 4, 5}, lastBefore: 1, refused: true},
		{name: "hole right after the last event up to the boundary", end: 4, seen: []int64{0, 2, 3}, lastBefore: 0, refused: true},
		{name: "head removed and no event up to the boundary", first: 3, end: 5, seen: []int64{3, 4}, lastBefore: -1, refused: true},
		{name: "hole and no event up to the boundary", end: 4, seen: []int64{0, 3}, lastBefore: -1, refused: true},
		{name: "tail never read", end: 6, seen: []int64{0, 1, 2}, lastBefore: 2, refused: true},
		{name: "hole of records produced before the run started", end: 8, seen: []int64{0, 1, 5, 6, 7}, lastBefore: 0, since: 6},
		{name: "head removed before the run started", first: 4, end: 8, seen: []int64{4, 5, 6, 7}, lastBefore: -1, since: 5},
		{name: "hole followed by a record produced since the run started", end: 8, seen: []int64{0, 1, 5, 6, 7}, lastBefore: 0, since: 5, refused: true},
		{name: "a removed head and holes before the first record since the run are skipped", first: 2, end: 8, skip: 5, seen: []int64{5, 6, 7}, lastBefore: -1, since: 5},
		{name: "a hole after the first record since the run", end: 8, skip: 3, seen: []int64{3, 6, 7}, lastBefore: -1, since: 3, refused: true},
		{name: "tail never read, however late the run", end: 6, seen: []int64{0, 1, 2}, lastBefore: -1, since: 59, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartition(0, tc.first, tc.end)
			p.skipTo(tc.skip)
			for _, o := range tc.seen {
				p.saw(o, at(o))
			}
			p.finish()
			p.lastBefore = tc.lastBefore
			since := time.Time{}
			if tc.since > 0 {
				since = at(tc.since)
			}
			err := p.check("topic", since)
			if refused := errors.Is(err, ErrHistoryIncomplete); refused != tc.refused || (err != nil && !refused) {
				t.Fatalf("check: %v, want refused %v", err, tc.refused)
			}
		})
	}
}
