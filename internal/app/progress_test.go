package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/progress"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestSyncShowsProgress: sync --csv shows its progress on stderr as the
// mode says, ending with the run's last state, and the summary on stdout
// is untouched.
func TestSyncShowsProgress(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	noEnv := func(string) (string, bool) { return "", false }
	csv := filepath.Join(t.TempDir(), "cohort.csv")
	if err := os.WriteFile(csv, []byte("user_id\na\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode      progress.Mode
		want, not string
	}{
		{progress.Log, `msg="sync progress" segment=seg run=`, "\r"},
		{progress.Bar, "\rseg ended      [####################] 100%  3/3 events\x1b[K\n", "sync progress"},
		{progress.None, "", "seg"},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			proc := DefaultProcess()
			proc.Progress = c.mode
			pcfg := producer.DefaultConfig()
			pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = testenv.Name(t), t.TempDir(), 2
			req := producer.SyncRequest{Env: "staging", Segment: "seg", Generation: 1, ContextKind: "user", Source: "csv"}
			var stdout, stderr bytes.Buffer
			if err := Sync(ctx, proc, noEnv, kafkax.Config{Brokers: brokers}, pcfg, req, csv, csvfile.Options{IDColumn: "user_id"}, &stdout, &stderr); err != nil {
				t.Fatalf("Sync = %v\n%s", err, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "sync run ") || strings.Contains(stdout.String(), "\r") {
				t.Fatalf("summary:\n%q", stdout.String())
			}
			got := stderr.String()
			if !strings.Contains(got, c.want) || (c.not != "" && strings.Contains(got, c.not)) {
				t.Fatalf("stderr %q: want %q in it and not %q", got, c.want, c.not)
			}
			if c.mode == progress.Log && !strings.Contains(got, "phase=ended done=3 total=3") {
				t.Fatalf("stderr %q: want the last line to say the run ended with 3 of 3 events", got)
			}
		})
	}
}
