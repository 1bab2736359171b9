package progresstest_test

import (
	"testing"

	"github.com/cohortsync/cohortsync/internal/progress"
	"github.com/cohortsync/cohortsync/internal/progress/progresstest"
	"github.com/cohortsync/cohortsync/producer"
)

// TestMeterReadsWhatWasSet: a fresh meter reads zero, then each reading
// set, as the progress.Reader the reporter takes.
func TestMeterReadsWhatWasSet(t *testing.T) {
	m := &progresstest.Meter{}
	var r progress.Reader = m
	if got := r.Read(); got != (producer.Progress{}) {
		t.Fatalf("a fresh meter reads %+v, want zero", got)
	}
	for _, p := range []producer.Progress{
		{Run: "20261207T120000Z-0a1b2c3d", Phase: producer.PhaseReading, Done: 10},
		{Run: "20261207T120000Z-0a1b2c3d", Phase: producer.PhasePublishing, Done: 4, Total: 9},
	} {
		m.Set(p)
		if got := r.Read(); got != p {
			t.Fatalf("after Set(%+v), Read = %+v", p, got)
		}
	}
}
