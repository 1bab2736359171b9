package mappingrun

import (
	"bytes"
	"os"
	"testing"

	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestExclusionsKeptWithTheRun: with an ExclusionStore, each destination's
// run keeps its excluded rows in the run history under its run id, the
// same rows as its local report, in the same order.
func TestExclusionsKeptWithTheRun(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			w := newWorld(t, rb)
			h, err := runstore.New(rb.Client, runstore.Config{Prefix: w.control})
			if err != nil {
				t.Fatal(err)
			}
			r := w.runnerWith(t.TempDir(), w.dests, func(c *Config) { c.Exclusions = h })
			res := w.run(r, mapping(csvFile(t, "a", `""`, "b", "c,extra", `""`), "production", "staging"))
			if len(res) != 2 {
				t.Fatalf("results %+v", res)
			}
			for _, got := range res {
				if got.Err != nil || got.Exclusions == nil || *got.Exclusions != (runstore.ExclusionsKept{Kept: 3}) || got.Summary.ExcludedTotal() != 3 {
					t.Fatalf("%s: kept %+v, summary %+v, %v; want the 3 excluded rows kept", got.Destination, got.Exclusions, got.Summary, got.Err)
				}
				local, err := os.ReadFile(got.Summary.ExclusionsFile)
				if err != nil {
					t.Fatal(err)
				}
				var kept bytes.Buffer
				if err := h.WriteExclusions(w.ctx, got.Summary.Run, got.Destination, &kept); err != nil {
					t.Fatal(err)
				}
				if kept.String() != string(local) {
					t.Fatalf("%s: kept report\n%s\nlocal report\n%s", got.Destination, kept.String(), local)
				}
			}
			if res[0].Summary.Run == res[1].Summary.Run {
				t.Fatalf("both destinations' runs are %s", res[0].Summary.Run)
			}
			w.wantMembers("production", "a", "b")
		})
	}
}
