package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

// segmentWorld is a stored mapping of a CSV file into one destination,
// with a consumer applying the topic, for the segments commands.
type segmentWorld struct {
	t      *testing.T
	ctx    context.Context
	env    map[string]string
	rb     testenv.RedisBackend
	prefix string
	cohort string
	cons   *consumer.Consumer
	kf     *kafkax.Factory
	name   string
	// stopConsumer stops the consumer; it is idempotent.
	stopConsumer func()
}

func newSegmentWorld(t *testing.T) *segmentWorld {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	rb := testenv.Redis(t)
	w := &segmentWorld{t: t, ctx: testenv.Context(t, 3*time.Minute), rb: rb, prefix: name + "-prod", cohort: filepath.Join(t.TempDir(), "beta.csv")}
	file := filepath.Join(t.TempDir(), "mappings.yaml")
	yaml := fmt.Sprintf("destinations:\n  - name: production\n    redis: {url: %q}\n    prefix: %s\nmappings:\n  - name: beta\n    source: {csv: %q}\n    segment: beta-users\n    destinations: [production]\n    schedule: hourly\n",
		rb.URL, w.prefix, w.cohort)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	w.env = map[string]string{
		"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC": name, "PRODUCER_TOPIC_PARTITIONS": "2",
		"PRODUCER_STATE_DIR": t.TempDir(), "REDIS_URL": rb.URL, "CONTROL_PREFIX": name + ":",
		"PRODUCER_REBUILD_WAIT": "30s", "LOG_LEVEL": "error",
	}
	w.ok("mappings", "apply", "-f", file)
	kf := kafkaxtest.Factory(t, brokers...)
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions = name, 2
	if err := publish.EnsureTopics(w.ctx, pcfg.Config, kf); err != nil {
		t.Fatal(err)
	}
	w.kf, w.name = kf, name
	w.startConsumer()
	return w
}

// startConsumer starts the consumer group's member; stopConsumer stops it.
func (w *segmentWorld) startConsumer() {
	w.t.Helper()
	cons, err := consumer.New(consumer.Config{Topic: w.name, GroupID: w.name, EnvPrefixes: map[string]string{"production": w.prefix},
		SyncInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, w.rb.Client, w.kf)
	if err != nil {
		w.t.Fatal(err)
	}
	w.cons = cons
	cctx, stop := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := cons.Run(cctx); err != nil {
			w.t.Errorf("consumer: %v", err)
		}
	})
	w.stopConsumer = func() { stop(); wg.Wait() }
	w.t.Cleanup(w.stopConsumer)
}

// ok runs a command that must succeed, waits for the consumer, and
// returns its output.
func (w *segmentWorld) ok(args ...string) string {
	w.t.Helper()
	code, stdout, stderr := run(w.t, w.ctx, args, w.env)
	if code != ExitOK {
		w.t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
	}
	if w.cons != nil {
		if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
			w.t.Fatal(err)
		}
	}
	return stdout
}

// refused runs a command that must fail with an error saying want.
func (w *segmentWorld) refused(want string, args ...string) {
	w.t.Helper()
	code, stdout, stderr := run(w.t, w.ctx, args, w.env)
	if code == ExitOK || !strings.Contains(stderr, want) {
		w.t.Fatalf("%s: exit %d, want an error saying %q\n%s%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
}

// sync makes members the cohort and runs the mapping.
func (w *segmentWorld) sync(members ...string) {
	w.t.Helper()
	w.setCohort(members...)
	w.ok("sync", "--mapping", "beta")
}

func (w *segmentWorld) setCohort(members ...string) {
	w.t.Helper()
	if err := os.WriteFile(w.cohort, []byte("user_id\n"+strings.Join(members, "\n")+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// want checks generation gen of the segment as the SDKs read it: its
// member index and each member's include set.
func (w *segmentWorld) want(what string, gen int, want ...string) {
	w.t.Helper()
	ref := bigsegments.Ref("beta-users", gen)
	var got []string
	if err := segmentstore.Members(w.ctx, w.rb.Client, w.prefix, ref, func(k string) error { got = append(got, k); return nil }); err != nil {
		w.t.Fatal(err)
	}
	for _, k := range append(slices.Clone(want), "u1", "u2", "u3", "u4", "u5", "u6", "u7") {
		inc, _, err := segmentstore.Membership(w.ctx, w.rb.Client, w.prefix, k)
		if err != nil {
			w.t.Fatal(err)
		}
		if slices.Contains(inc, ref) != slices.Contains(want, k) {
			w.t.Errorf("%s: %q's include set is %q (%s)", what, k, inc, ref)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		w.t.Fatalf("%s: generation %d holds %q, want %q", what, gen, got, want)
	}
}

// runIDs lists the runs of the mapping, newest first, with their triggers.
func (w *segmentWorld) runIDs() (ids, triggers []string) {
	w.t.Helper()
	lines := strings.Split(strings.TrimSpace(w.ok("runs", "list", "--mapping", "beta")), "\n")[1:]
	for _, l := range lines {
		f := strings.Fields(l)
		ids, triggers = append(ids, f[0]), append(triggers, f[3])
	}
	return ids, triggers
}

func TestSegmentsRollbackCommand(t *testing.T) {
	w := newSegmentWorld(t)
	w.sync("u1", "u2", "u3")
	w.sync("u2", "u4", "u5")
	ids, _ := w.runIDs()
	a, b := ids[1], ids[0]

	out := w.ok("segments", "rollback", "beta-users", "--to-run", a)
	for _, want := range []string{"mapping beta paused", "removed     2\n", "added       2\n", "membership of run " + a + " published"} {
		if !strings.Contains(out, want) {
			t.Errorf("rollback output lacks %q:\n%s", want, out)
		}
	}
	w.want("rolled back to A", 1, "u1", "u2", "u3")
	if _, triggers := w.runIDs(); triggers[0] != "rollback" {
		t.Errorf("the newest run's trigger is %q, want rollback", triggers[0])
	}
	// The paused mapping is not run again by sync --mapping either.
	w.refused("paused", "sync", "--mapping", "beta")

	// A replica with no state directory rolls back as well.
	if err := os.RemoveAll(w.env["PRODUCER_STATE_DIR"]); err != nil {
		t.Fatal(err)
	}
	w.ok("segments", "rollback", "beta-users", "--to-run", b, "--destination", "production")
	w.want("rolled back to B without state", 1, "u2", "u4", "u5")

	w.refused("not in the run history", "segments", "rollback", "beta-users", "--to-run", "20200101T000000Z-00000000")
	// A run past the history's retention: its record expired.
	if err := w.rb.Client.Del(w.ctx, w.env["CONTROL_PREFIX"]+"{runs}:run:"+a+" production").Err(); err != nil {
		t.Fatal(err)
	}
	w.refused("run "+a+" is not in the run history: never recorded, or older than its retention", "segments", "rollback", "beta-users", "--to-run", a)
	w.refused("did not write destination", "segments", "rollback", "beta-users", "--to-run", b, "--destination", "staging")
	w.refused("no stored mapping syncs it", "segments", "rollback", "gamma", "--to-run", b)
	w.refused("--to-run", "segments", "rollback", "beta-users")
	w.want("after the refusals", 1, "u2", "u4", "u5")
}

func TestSegmentsGenerationCommands(t *testing.T) {
	w := newSegmentWorld(t)
	w.sync("u1", "u2", "u3")
	if out := w.ok("segments", "generation", "show", "beta-users"); !strings.Contains(out, "generation 1 (never bumped)") {
		t.Errorf("show before the bump: %s", out)
	}
	w.setCohort("u2", "u3", "u6", "u7")
	// A bump that fails is resumed by running it again.
	w.ok("mappings", "pause", "beta")
	w.refused("generation 2 of segment beta-users is not built (generation 1 is untouched); run the bump again", "segments", "generation", "bump", "beta-users")
	if out := w.ok("segments", "generation", "show", "beta-users"); !strings.Contains(out, "bump to 2 started") {
		t.Errorf("show after the failed bump: %s", out)
	}
	w.refused("not built yet", "segments", "generation", "finish", "beta-users", "--confirm-evaluators-moved")
	w.ok("mappings", "resume", "beta")
	// With the consumer down, the new generation is published, not applied:
	// the bump says so and the finish waits for it.
	w.stopConsumer()
	code, out, stderr := run(t, w.ctx, []string{"segments", "generation", "bump", "beta-users", "--wait", "1s"}, w.env)
	if code == ExitOK || !strings.Contains(out, "mapping beta now runs into generation 2; generation 1 is untouched") ||
		!strings.Contains(out, "destination production: generation 2 published, not yet applied (4 members") || !strings.Contains(stderr, "published, not yet applied (is the consumer running?)") {
		t.Fatalf("bump with the consumer down: exit %d\n%s%s", code, out, stderr)
	}
	w.refused("destination production has not applied generation 2 yet", "segments", "generation", "finish", "beta-users", "--confirm-evaluators-moved")
	w.startConsumer()
	out = w.ok("segments", "generation", "bump", "beta-users", "--wait", "30s")
	for _, want := range []string{"generation 2, built beside 1", "generation finish beta-users --confirm-evaluators-moved"} {
		if !strings.Contains(out, want) {
			t.Errorf("bump output lacks %q:\n%s", want, out)
		}
	}
	w.want("generation 1 after the bump", 1, "u1", "u2", "u3")
	w.want("generation 2 after the bump", 2, "u2", "u3", "u6", "u7")
	if out := w.ok("mappings", "show", "beta"); !strings.Contains(out, "generation: 2") || !strings.Contains(out, "# generation 2, built beside 1") {
		t.Errorf("the stored mapping after the bump:\n%s", out)
	}
	if out := w.ok("segments", "generation", "show", "beta-users"); !strings.Contains(out, "generation 2, built beside 1") {
		t.Errorf("show after the bump: %s", out)
	}
	// Running the bump again reports it.
	if out := w.ok("segments", "generation", "bump", "beta-users"); !strings.Contains(out, "generation 2, built beside 1") ||
		!strings.Contains(out, "destination production: generation 2 applied") {
		t.Errorf("a second bump:\n%s", out)
	}

	// The mapping's runs now keep generation 2 current; 1 stays as it was.
	w.sync("u2", "u6", "u7")
	w.want("generation 2 after a run", 2, "u2", "u6", "u7")
	w.want("generation 1 after a run", 1, "u1", "u2", "u3")

	w.refused("--confirm-evaluators-moved", "segments", "generation", "finish", "beta-users")
	w.want("generation 1 after the refused finish", 1, "u1", "u2", "u3")
	out = w.ok("segments", "generation", "finish", "beta-users", "--confirm-evaluators-moved")
	if !strings.Contains(out, "generation 1 removed from every destination") || !strings.Contains(out, "removed     3\n") {
		t.Errorf("finish output:\n%s", out)
	}
	w.want("generation 1 after the finish", 1)
	// On the compacted topic each membership's last event is the live
	// generation's: a replay of what compaction keeps rebuilds generation 2.
	last := map[string]schema.Event{}
	for _, m := range testenv.ReadTopic(t, strings.Split(w.env["KAFKA_BROKERS"], ","), w.env["TOPIC"], 2) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		last[ev.ContextKey] = ev
	}
	for k, ev := range last {
		live := slices.Contains([]string{"u2", "u6", "u7"}, k)
		if (ev.Op == schema.OpAdd) != live || (live && ev.Generation != 2) {
			t.Errorf("the last event of %q is %s of generation %d (source %s)", k, ev.Op, ev.Generation, ev.Source)
		}
	}
	w.want("generation 2 after the finish", 2, "u2", "u6", "u7")
	if out := w.ok("segments", "generation", "show", "beta-users"); !strings.Contains(out, "generation 2; generation 1 removed") {
		t.Errorf("show after the finish: %s", out)
	}
	w.refused("the bump from generation 1 to 2 finished at", "segments", "generation", "finish", "beta-users", "--confirm-evaluators-moved")
	ids, triggers := w.runIDs()
	if !slices.Contains(triggers, "generation-bump") || !slices.Contains(triggers, "generation-finish") {
		t.Fatalf("run triggers %q lack the bump and the finish", triggers)
	}
	// The run that built generation 2 can be rolled back to: the finish's
	// republication of its members changed none of them.
	w.ok("segments", "rollback", "beta-users", "--to-run", ids[slices.Index(triggers, "generation-bump")])
	w.want("generation 2 rolled back to its build", 2, "u2", "u3", "u6", "u7")
	w.refused("wrote generation 1, the segment is at generation 2", "segments", "rollback", "beta-users", "--to-run", ids[len(ids)-1])
}
