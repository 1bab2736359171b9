package runstore

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// TestRunningRecord: a run is listed while it runs, with its progress;
// its final record replaces it; a record whose progress stopped being
// rewritten reads interrupted.
func TestRunningRecord(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			s, err := New(b.Client, Config{Prefix: prefix, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			running := record("beta", "production", now.Add(-time.Minute), "")
			running.Progress = &Progress{Phase: string(producer.PhasePublishing), Done: 40, Total: 100, Updated: now}
			if err := s.Add(ctx, running); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, running.ID)
			if err != nil || len(got) != 1 || got[0].Progress == nil || *got[0].Progress != *running.Progress {
				t.Fatalf("Get of a running run = %+v, %v; want its progress back", got, err)
			}
			if st := got[0].StatusAt(now.Add(time.Second)); st != "running" {
				t.Fatalf("status of a run updated a second ago: %q, want running", st)
			}
			final := running
			final.Progress, final.Summary.Outcome = nil, producer.Succeeded
			if err := s.Add(ctx, final); err != nil {
				t.Fatal(err)
			}
			all, err := s.List(ctx, Filter{Mapping: "beta"})
			if err != nil || len(all) != 1 || all[0].Progress != nil || all[0].StatusAt(now) != "succeeded" {
				t.Fatalf("List after the final record = %+v, %v; want the one run, succeeded, without progress", all, err)
			}
		})
	}
}

func TestRunningStatus(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(updated time.Time, outcome producer.Outcome) Record {
		r := record("beta", "production", now.Add(-time.Hour), outcome)
		r.Progress = &Progress{Phase: "reading", Updated: updated}
		return r
	}
	for _, c := range []struct {
		name string
		r    Record
		want string
	}{
		{"updated just now", at(now, ""), "running"},
		{"updated StaleAfter ago", at(now.Add(-StaleAfter), ""), "running"},
		{"not updated for longer than StaleAfter", at(now.Add(-StaleAfter-time.Second), ""), "interrupted"},
		{"a final outcome wins over a progress left in the record", at(now.Add(-time.Hour), producer.Failed), "failed"},
		{"no progress and no outcome", record("beta", "production", now, ""), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.r.StatusAt(now); got != c.want {
				t.Fatalf("StatusAt = %q, want %q", got, c.want)
			}
		})
	}
}
