package rollback

import (
	"errors"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
)

func TestTargetOf(t *testing.T) {
	want := snapshot.SegmentID{Env: "production", Segment: "beta", Generation: 2, ContextKind: "user"}
	ok := producer.Summary{Run: "20261125T200000Z-1a2b3c4d", Env: "production", Segment: "beta", Generation: 2, ContextKind: "user",
		Outcome: producer.Succeeded, FirstSeq: 10, LastSeq: 12, SeqReserved: 20}
	for _, tc := range []struct {
		name     string
		change   func(*producer.Summary)
		boundary uint64 // 0: refused
	}{
		{name: "the reserved range's end is the boundary", change: func(*producer.Summary) {}, boundary: 20},
		{name: "a run recorded without its reserved range ends at its last event", change: func(s *producer.Summary) { s.SeqReserved = 0 }, boundary: 12},
		{name: "a run that changed nothing marks its place by its reservation", change: func(s *producer.Summary) { s.FirstSeq, s.LastSeq = 0, 0 }, boundary: 20},
		{name: "a run with no place in the history is refused", change: func(s *producer.Summary) { s.FirstSeq, s.LastSeq, s.SeqReserved = 0, 0, 0 }},
		{name: "a failed run is refused", change: func(s *producer.Summary) { s.Outcome = producer.Failed }},
		{name: "a refused run is refused", change: func(s *producer.Summary) { s.Outcome = producer.Refused }},
		{name: "an earlier generation is refused", change: func(s *producer.Summary) { s.Generation = 1 }},
		{name: "another segment is refused", change: func(s *producer.Summary) { s.Segment = "alpha" }},
		{name: "another environment is refused", change: func(s *producer.Summary) { s.Env = "staging" }},
		{name: "another context kind is refused", change: func(s *producer.Summary) { s.ContextKind = "account" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := ok
			tc.change(&sum)
			got, err := TargetOf(sum, want)
			if tc.boundary == 0 {
				if !errors.Is(err, ErrNotRestorable) {
					t.Fatalf("TargetOf: %v, want ErrNotRestorable", err)
				}
				return
			}
			if err != nil || got.Boundary != tc.boundary || got.Run != sum.Run || got.Segment != want {
				t.Fatalf("TargetOf: %+v, %v; want boundary %d", got, err, tc.boundary)
			}
		})
	}
}
