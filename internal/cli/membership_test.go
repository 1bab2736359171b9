package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// serveWorld is a destination "production" on the test's Redis, the
// mapping beta (a CSV cohort into segment beta-users) synced once and
// paused (serve's scheduler leaves it to the test), the test's Kafka, and
// serve running until the test ends.
type serveWorld struct {
	ctx                         context.Context
	name, dir, cohort, redisURL string
	env                         map[string]string
	t                           *testing.T
}

func newServeWorld(t *testing.T, members ...string) *serveWorld {
	brokers, _ := testenv.Kafka(t)
	w := &serveWorld{t: t, name: testenv.Name(t), dir: t.TempDir(), redisURL: testenv.RedisURL(t)}
	w.cohort = filepath.Join(w.dir, "beta.csv")
	if err := os.WriteFile(w.cohort, []byte("user_id\n"+strings.Join(members, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(w.dir, "mappings.yaml")
	yaml := fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    prefix: %s-prod
mappings:
  - name: beta
    source: {csv: %q}
    segment: beta-users
    destinations: [production]
    schedule: hourly
`, w.redisURL, w.name, w.cohort)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t).Client // the same server as redisURL with real backends
	testenv.DropPrefix(t, rdb, w.name+"-prod")
	testenv.DropPrefix(t, rdb, w.name)
	w.env = map[string]string{
		"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC": w.name, "PRODUCER_TOPIC_PARTITIONS": "2",
		"PRODUCER_STATE_DIR": t.TempDir(), "REDIS_URL": w.redisURL, "CONTROL_PREFIX": w.name + ":",
		"CONSUMER_GROUP_ID": w.name, "CONSUMER_SYNC_INTERVAL": "100ms", "SERVE_APPLY_CHECK_INTERVAL": "200ms", "LOG_LEVEL": "error",
	}
	w.ctx = testenv.Context(t, 3*time.Minute)
	w.must("apply", "mappings", "apply", "-f", file)
	w.must("sync --mapping", "sync", "--mapping", "beta") // creates the topics serve requires
	// Paused, the mapping still owns its segment; serve's scheduler (whose
	// watcher marks runs applied) leaves it alone.
	w.must("pause", "mappings", "pause", "beta")
	sctx, stop := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, _, stderr := run(t, sctx, []string{"serve"}, w.env); code != ExitOK {
			t.Errorf("serve: exit %d\n%s", code, stderr)
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })
	return w
}

// must runs a command that must succeed and returns its stdout.
func (w *serveWorld) must(what string, args ...string) string {
	w.t.Helper()
	code, stdout, stderr := run(w.t, w.ctx, args, w.env)
	if code != ExitOK {
		w.t.Fatalf("%s: exit %d\n%s%s", what, code, stdout, stderr)
	}
	return stdout
}

// TestMembershipCommands runs segments lookup, status and erase end to end
// against the test's Kafka and Redis with serve applying the topic: a
// lookup says since which run a key is in a segment, status reports the
// destination available and fresh, an erase removes the key everywhere
// with a receipt that erase show reads back, and the next sync of the
// mapping leaves the key out as "erased".
func TestMembershipCommands(t *testing.T) {
	w := newServeWorld(t, "alice", "bob")
	env, must := w.env, w.must
	var lookup struct {
		Segments []struct {
			Segment, Source, Mapping string
			Included                 bool
			Since                    *struct {
				Known bool
				Seq   uint64
				Run   string
			}
		}
	}
	testenv.Eventually(t, time.Minute, "alice in beta-users", func() bool {
		out := must("lookup", "segments", "lookup", "--env", "production", "--context", "alice", "--output", "json")
		if err := json.Unmarshal([]byte(out), &lookup); err != nil {
			t.Fatalf("lookup --output json: %v\n%s", err, out)
		}
		return len(lookup.Segments) == 1
	})
	if s := lookup.Segments[0]; s.Segment != "beta-users" || s.Source != "csv" || s.Mapping != "beta" || !s.Included || s.Since == nil ||
		!s.Since.Known || s.Since.Seq == 0 || s.Since.Run == "" {
		t.Errorf("lookup of alice: %+v", lookup.Segments)
	}
	out := must("lookup table", "segments", "lookup", "--env", "production", "--context", "alice", "--segment", "beta-users")
	if !strings.Contains(out, "SINCE-RUN") || !strings.Contains(out, lookup.Segments[0].Since.Run) || !strings.Contains(out, "manual") {
		t.Errorf("segments lookup table:\n%s", out)
	}
	if out := must("lookup elsewhere", "segments", "lookup", "--env", "production", "--context", "nobody"); !strings.Contains(out, "in no segment") {
		t.Errorf("lookup of nobody:\n%s", out)
	}

	testenv.Eventually(t, time.Minute, "status available and fresh", func() bool {
		var rep struct {
			Destinations []struct {
				Name             string
				Available        bool
				PotentiallyStale bool `json:"potentially_stale"`
				Segments         []struct {
					Key     string
					Members int64
					SeqLag  uint64 `json:"seq_lag"`
				}
			}
		}
		out := must("status --json", "status", "--json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		d := rep.Destinations
		return len(d) == 1 && d[0].Available && !d[0].PotentiallyStale && len(d[0].Segments) == 1 && d[0].Segments[0].Members == 2 && d[0].Segments[0].SeqLag == 0
	})
	if out := must("status", "status"); !strings.Contains(out, "POTENTIALLY-STALE") || !strings.Contains(out, "beta-users") {
		t.Errorf("status:\n%s", out)
	}

	var receipt struct {
		ID       string
		Segments []struct {
			Ref       string
			WasMember bool `json:"was_member"`
			Seq       uint64
		}
	}
	out = must("erase", "erase", "--env", "production", "--context", "alice", "--json")
	if err := json.Unmarshal([]byte(out), &receipt); err != nil || receipt.ID == "" || len(receipt.Segments) != 1 || !receipt.Segments[0].WasMember {
		t.Fatalf("erase --json: %+v, %v\n%s", receipt, err, out)
	}
	testenv.Eventually(t, time.Minute, "the erase applied", func() bool {
		out = must("erase show", "erase", "show", receipt.ID)
		return strings.Contains(out, "still in      none") && strings.Contains(out, "run status    applied")
	})
	if !strings.Contains(out, "removed from  beta-users.g1") || !strings.Contains(out, "erased list   listed") {
		t.Errorf("erase show:\n%s", out)
	}
	must("resume", "mappings", "resume", "beta")
	out = must("sync after the erase", "sync", "--mapping", "beta")
	if !strings.Contains(out, "erased 1") {
		t.Errorf("the sync after the erase does not exclude alice as erased:\n%s", out)
	}
	if out = must("forget", "erase", "forget", "--env", "production", "--context", "alice"); !strings.Contains(out, "off the erased-keys list") {
		t.Errorf("erase forget: %s", out)
	}

	runCases(t, []commandCase{
		{name: "lookup needs an environment and a key", args: []string{"segments", "lookup"}, env: env, code: ExitUsage,
			wantStderr: []string{"--env: required", "--context: required"}},
		{name: "lookup in an unknown environment", args: []string{"segments", "lookup", "--env", "nowhere", "--context", "a"}, env: env, code: ExitError,
			wantStderr: []string{`environment "nowhere": no destination serves this environment`}},
		{name: "status's staleAfter", args: []string{"status", "--stale-after", "1ms"}, env: env, code: ExitUsage,
			wantStderr: []string{`--stale-after="1ms": want a duration of at least 1s`}},
		{name: "erase needs a key", args: []string{"erase", "--env", "production"}, env: env, code: ExitUsage,
			wantStderr: []string{"--context: required"}},
		{name: "show of an unknown receipt", args: []string{"erase", "show", "20260101T000000Z-00000000"}, env: env, code: ExitError,
			wantStderr: []string{"no such erase receipt"}},
	})
}
