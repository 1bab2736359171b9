package mappingrun

import (
	"slices"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// TestObservedRunnerMetersEachDestination: an observed run hands the
// observer a meter per destination before its sync, which the sync keeps
// up to date; the Runner it came from stays unobserved.
func TestObservedRunnerMetersEachDestination(t *testing.T) {
	rb := testenv.RedisBackends(t)[0]
	w := newWorld(t, rb)
	r := w.runner(t.TempDir())
	var dests []string
	meters := map[string]*producer.Meter{}
	observed := r.Observed(func(dest string, m *producer.Meter) {
		if got := m.Read(); got.Run != "" {
			t.Errorf("%s: the observer was called after the sync started (%+v)", dest, got)
		}
		dests = append(dests, dest)
		meters[dest] = m
	})
	res := w.run(observed, mapping(csvFile(t, "a", "b", "c"), "production", "staging"))
	if !slices.Equal(dests, []string{"production", "staging"}) {
		t.Fatalf("observed destinations %q, want both in order", dests)
	}
	for _, x := range res {
		got := meters[x.Destination].Read()
		want := producer.Progress{Run: x.Summary.Run, Started: x.Summary.Started, Phase: producer.PhaseEnded, Done: 3, Total: 3}
		if !got.Started.Equal(want.Started) || got.Run != want.Run || got.Phase != want.Phase || got.Done != want.Done || got.Total != want.Total {
			t.Fatalf("%s: meter reads %+v after the run, want %+v", x.Destination, got, want)
		}
	}
	dests = nil
	w.run(r, mapping(csvFile(t, "a"), "production"))
	if len(dests) != 0 {
		t.Fatalf("the unobserved runner called the observer for %q", dests)
	}
}
