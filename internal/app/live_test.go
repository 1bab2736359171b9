package app

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/progress/progresstest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// TestLiveRunsRecordARunWhileItGoes: a destination's sync is recorded
// running once it has a run id, rewritten as it moves, waiting once it
// ended; after stop nothing is written, so the final record stays; a run
// whose process stopped rewriting reads interrupted.
func TestLiveRunsRecordARunWhileItGoes(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			h, err := runstore.New(b.Client, runstore.Config{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			m := catalog.Mapping{Name: "beta", Segment: "beta-users", Generation: 2, ContextKind: "user"}
			l := startLive(ctx, h, slog.New(slog.NewTextHandler(io.Discard, nil)), m, "manual", nil)
			defer l.stop()
			meter := &progresstest.Meter{}
			l.add("production", meter)
			started := time.Now().Truncate(time.Millisecond)
			run := producer.NewRunID(started)
			progressOf := func() *runstore.Record {
				rs, err := h.List(ctx, runstore.Filter{Mapping: "beta"})
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) == 0 {
					return nil
				}
				return &rs[0]
			}
			time.Sleep(3 * l.poll)
			if r := progressOf(); r != nil {
				t.Fatalf("a sync without a run id yet was recorded: %+v", r)
			}
			meter.Set(producer.Progress{Run: run, Started: started, Phase: producer.PhaseReading, Done: 10})
			testenv.Eventually(t, 5*time.Second, "the run recorded running", func() bool {
				r := progressOf()
				return r != nil && r.Progress != nil && r.Progress.Phase == "reading"
			})
			r := progressOf()
			if r.ID != run || r.Destination != "production" || r.Trigger != "manual" || r.Status() != "running" ||
				r.Summary.Segment != "beta-users" || r.Summary.Generation != 2 || !r.Summary.Started.Equal(started) {
				t.Fatalf("running record %+v (status %q)", r, r.Status())
			}
			if got, err := h.Get(ctx, run); err != nil || len(got) != 1 {
				t.Fatalf("Get(%s) of the running run = %v, %v", run, got, err)
			}
			if line := progressLine(*r); !strings.HasPrefix(line, "  progress    reading 10 (updated ") {
				t.Fatalf("runs show's progress line: %q", line)
			}
			meter.Set(producer.Progress{Run: run, Started: started, Phase: producer.PhasePublishing, Done: 4, Total: 9})
			testenv.Eventually(t, 5*time.Second, "the new phase recorded", func() bool {
				r := progressOf()
				return r.Progress.Phase == "publishing" && r.Progress.Done == 4 && r.Progress.Total == 9
			})
			if line := progressLine(*progressOf()); !strings.HasPrefix(line, "  progress    publishing 4/9 (updated ") {
				t.Fatalf("runs show's progress line: %q", line)
			}
			// Within a phase, rewritten about every interval with the
			// counts of the moment.
			meter.Set(producer.Progress{Run: run, Started: started, Phase: producer.PhasePublishing, Done: 8, Total: 9})
			testenv.Eventually(t, 3*runstore.ProgressInterval, "the counts rewritten within the phase", func() bool {
				return progressOf().Progress.Done == 8
			})
			meter.Set(producer.Progress{Run: run, Started: started, Phase: producer.PhaseEnded, Done: 9, Total: 9})
			testenv.Eventually(t, 5*time.Second, "the ended sync recorded waiting", func() bool {
				return progressOf().Progress.Phase == runstore.PhaseWaiting
			})
			l.stop()
			final := *progressOf()
			final.Progress, final.Summary.Outcome = nil, producer.Succeeded
			if err := h.Add(ctx, final); err != nil {
				t.Fatal(err)
			}
			meter.Set(producer.Progress{Run: run, Started: started, Phase: producer.PhaseReading, Done: 1})
			time.Sleep(3 * l.poll)
			if r := progressOf(); r.Progress != nil || r.Status() != "succeeded" || progressLine(*r) != "" {
				t.Fatalf("after stop and the final record: %+v, status %q; want the final record kept", r, r.Status())
			}
			l.stop() // idempotent
		})
	}
}
