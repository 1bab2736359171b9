package mappingrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun/mappingruntest"
	"github.com/cohortsync/cohortsync/producer/source"
)

// world is one deployment under test: a Kafka topic, a Redis holding the
// control keys and two destinations (a custom prefix, and an
// environment's client-side ID as LaunchDarkly's own writer uses), and a
// consumer applying the topic to both.
type world struct {
	t       testing.TB
	ctx     context.Context
	kf      *kafkax.Factory
	rdb     redis.UniversalClient
	topic   string
	control string
	dests   mapDests
	pcfg    producer.Config // the topic's, created
	cons    *consumer.Consumer
}

type mapDests map[string]catalog.Destination

func (m mapDests) Destination(_ context.Context, name string) (catalog.Destination, error) {
	d, ok := m[name]
	if !ok {
		return catalog.Destination{}, fmt.Errorf("destination %q: no such destination", name)
	}
	return d, nil
}

func newWorld(t testing.TB, rb testenv.RedisBackend) *world {
	t.Helper()
	return newWorldFor(t, rb, 3*time.Minute)
}

// newWorldFor is newWorld whose context ends after d.
func newWorldFor(t testing.TB, rb testenv.RedisBackend, d time.Duration) *world {
	t.Helper()
	ctx := testenv.Context(t, d)
	kf := kafkaxtest.Kafka(t)
	name := testenv.Name(t)
	w := &world{t: t, ctx: ctx, kf: kf, rdb: rb.Client, topic: name, control: name + ":control:",
		dests: mapDests{
			"production": {Name: "production", Environment: "production", PrefixMode: catalog.PrefixCustom, CustomPrefix: name + "-prod"},
			"staging":    {Name: "staging", Environment: "staging", PrefixMode: catalog.PrefixClientSideID, ClientSideID: "5f0c3a1b2c3d4e5f60718293"},
		}}
	for _, d := range w.dests {
		testenv.DropPrefix(t, rb.Client, d.Prefix())
	}
	testenv.DropPrefix(t, rb.Client, strings.TrimSuffix(w.control, ":")) // DropPrefix adds the ":"
	w.pcfg = mappingruntest.Producer(t, ctx, kf, w.topic)
	prefixes := map[string]string{}
	for _, d := range w.dests {
		prefixes[d.Environment] = d.Prefix()
	}
	w.cons = mappingruntest.Consume(t, ctx, kf, rb.Client, w.topic, prefixes)
	return w
}

// producerConfig is the test's producer config with state in stateDir.
func (w *world) producerConfig(stateDir string) producer.Config {
	cfg := w.pcfg
	cfg.StateDir = stateDir
	return cfg
}

// runner is one replica: its own state directory, the shared Redis.
func (w *world) runner(stateDir string) *Runner {
	w.t.Helper()
	return w.runnerWith(stateDir, w.dests, nil)
}

// runnerWith is a runner finding destinations (and maybe Amplitude
// projects) in dests, its Config changed by change when not nil.
func (w *world) runnerWith(stateDir string, dests Destinations, change func(*Config)) *Runner {
	w.t.Helper()
	cfg := Config{Producer: w.producerConfig(stateDir), Lease: segmentlease.Config{Prefix: w.control}, RebuildWait: 30 * time.Second}
	if change != nil {
		change(&cfg)
	}
	r, err := New(cfg, w.kf, w.rdb, dests,
		func(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
			if d.Redis.URL != "" { // a destination of its own (down, in TestUnreachableDestination)
				return redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(d.Redis.URL, "redis://"), MaxRetries: -1}), nil
			}
			return w.rdb, nil
		},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// csv writes a cohort file of members (user_id column) and returns its path.
func csvFile(t testing.TB, members ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cohort.csv")
	if err := os.WriteFile(path, []byte("user_id\n"+strings.Join(members, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mapping(loc string, dests ...string) catalog.Mapping {
	return catalog.Mapping{Name: "beta", Source: catalog.Source{Kind: catalog.SourceCSV, Location: loc}, Segment: "beta-users",
		Destinations: dests, IDProperty: "user_id", ContextKind: "user", Generation: 1, Enabled: true,
		Schedule: catalog.Schedule{Kind: catalog.ScheduleHourly}}
}

// run runs m and fails the test on any destination's error.
func (w *world) run(r *Runner, m catalog.Mapping) []Result {
	w.t.Helper()
	res, err := r.Run(w.ctx, m)
	if err != nil {
		w.t.Fatalf("Run: %v", err)
	}
	if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return res
}

// members is what the destination's Redis holds of the segment, checked
// the way the SDKs read it too (each member's include set).
func (w *world) members(dest string) []string {
	w.t.Helper()
	return w.membersOf(dest, "beta-users")
}

// membersOf is the members of segment (generation 1) in dest.
func (w *world) membersOf(dest, segment string) []string {
	w.t.Helper()
	prefix := w.dests[dest].Prefix()
	ref := bigsegments.Ref(segment, 1)
	var got []string
	if err := segmentstore.Members(w.ctx, w.rdb, prefix, ref, func(k string) error { got = append(got, k); return nil }); err != nil {
		w.t.Fatal(err)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	for _, k := range got {
		inc, _, err := segmentstore.Membership(w.ctx, w.rdb, prefix, k)
		if err != nil {
			w.t.Fatal(err)
		}
		if !slices.Contains(inc, ref) {
			w.t.Errorf("%s: %q is in the member index but its include set is %q", dest, k, inc)
		}
	}
	return got
}

func (w *world) wantMembers(dest string, want ...string) {
	w.t.Helper()
	if got := w.members(dest); !slices.Equal(got, want) {
		w.t.Fatalf("%s holds %q, want %q", dest, got, want)
	}
}

// TestFanOutSurvivesALostStateDirectory is issue 7's acceptance test of
// item 5: sync, lose the state directory, sync a smaller cohort, and Redis
// is exact, in both destinations of a fanned-out mapping (one under an
// environment's client-side ID).
func TestFanOutSurvivesALostStateDirectory(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			w := newWorld(t, rb)
			res := w.run(w.runner(t.TempDir()), mapping(csvFile(t, "a", "b", "c", "d"), "production", "staging"))
			if len(res) != 2 || res[0].Summary.Added != 4 || res[1].Summary.Added != 4 || res[0].Summary.Env != "production" || res[1].Summary.Env != "staging" {
				t.Fatalf("first run: %+v", res)
			}
			w.wantMembers("production", "a", "b", "c", "d")
			w.wantMembers("staging", "a", "b", "c", "d")

			lost := w.runner(t.TempDir()) // a new disk: nothing of the first run
			res = w.run(lost, mapping(csvFile(t, "b", "e"), "production", "staging"))
			for _, r := range res {
				if r.Summary.Rebuilt == nil || r.Summary.Removed != 3 || r.Summary.Added != 1 {
					t.Fatalf("%s after a lost state directory: rebuilt %+v, +%d -%d; want a rebuild, +1 -3",
						r.Destination, r.Summary.Rebuilt, r.Summary.Added, r.Summary.Removed)
				}
			}
			w.wantMembers("production", "b", "e")
			w.wantMembers("staging", "b", "e")
		})
	}
}

// TestReplicasTakeTurns: two replicas with their own disks run one mapping
// in turn; each follows the other's runs.
func TestReplicasTakeTurns(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	replicas := []*Runner{w.runner(t.TempDir()), w.runner(t.TempDir())}
	for i, cohort := range [][]string{{"a", "b", "c"}, {"b", "c", "d"}, {"a", "d"}, {"a", "d"}} {
		w.run(replicas[i%2], mapping(csvFile(t, cohort...), "production"))
		w.wantMembers("production", cohort...)
	}
}

// TestARunningSegmentIsLocked: a second run of a segment another replica
// holds fails at once with ErrLocked, leaving the segment to the holder.
func TestARunningSegmentIsLocked(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	locker, err := segmentlease.NewLocker(w.rdb, segmentlease.Config{Prefix: w.control})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := locker.Lock(w.ctx, snapshot.SegmentID{Env: "production", Segment: "beta-users", Generation: 1, ContextKind: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock()
	res, err := w.runner(t.TempDir()).Run(w.ctx, mapping(csvFile(t, "a"), "production"))
	if !errors.Is(err, snapshot.ErrLocked) || len(res) != 1 || res[0].Summary.Outcome != producer.Failed {
		t.Fatalf("Run of a locked segment = %+v, %v; want ErrLocked", res, err)
	}
}

// TestNotRunnable: what cannot run is refused before anything is read or
// published, with the reason.
func TestNotRunnable(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	paused := mapping(csvFile(t, "a"), "production")
	paused.Enabled = false
	push := mapping("", "production")
	push.Source = catalog.Source{Kind: catalog.SourcePush}
	amp := mapping("", "production")
	amp.Source = catalog.Source{Kind: catalog.SourceAmplitude, Location: "1a2b3c", Project: "main"}
	noProject := amp
	noProject.Source.Project = ""
	withProjects := w.runnerWith(t.TempDir(), projectDests{w.dests, nil}, nil)
	for _, tc := range []struct {
		r    *Runner
		m    catalog.Mapping
		want string
	}{
		{w.runner(t.TempDir()), paused, `mapping "beta" is paused (cohortsync mappings resume beta)`},
		{w.runner(t.TempDir()), push, `mapping "beta" is fed by pushes, it has nothing to pull`},
		{w.runner(t.TempDir()), amp, `mapping "beta": this runner finds no Amplitude projects`},
		{withProjects, noProject, `mapping "beta": amplitude cohort 1a2b3c names no project`},
	} {
		res, err := tc.r.Run(w.ctx, tc.m)
		if !errors.Is(err, ErrNotRunnable) || !strings.Contains(err.Error(), tc.want) || res != nil {
			t.Errorf("Run = %v, %v; want ErrNotRunnable: %s", res, err, tc.want)
		}
	}
	w.wantMembers("production")
}

// TestCSVURLAndAMissingDestination: a cohort at a URL is fetched for each
// destination; a destination that does not exist fails alone, named, and
// the others still sync.
func TestCSVURLAndAMissingDestination(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(rw, "user_id,amplitude_id\nalice,1\nbob,2\n")
	}))
	defer srv.Close()
	res, err := w.runner(t.TempDir()).Run(w.ctx, mapping(srv.URL+"/cohort.csv?sig=secret", "gone", "production"))
	if err == nil || !strings.Contains(err.Error(), `mapping "beta", destination "gone": destination "gone": no such destination`) {
		t.Fatalf("Run = %v, want the missing destination named", err)
	}
	if len(res) != 2 || res[0].Err == nil || res[1].Err != nil || res[1].Summary.Input != srv.URL+"/cohort.csv?..." {
		t.Fatalf("results %+v: want gone failed, production synced from the redacted URL", res)
	}
	if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.wantMembers("production", "alice", "bob")
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		cfg := producer.DefaultConfig()
		cfg.Topic = "t"
		return Config{Producer: cfg}
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[Config]{
		{Name: "defaults are valid", Change: func(*Config) {}},
		{Name: "a fixed exclusions file is refused", Change: func(c *Config) { c.Producer.ExclusionsFile = "/tmp/x.csv" },
			Want: `--exclusions-file="/tmp/x.csv": want nothing with a mapping: each segment keeps its reports in its state directory`},
		{Name: "negative rebuild wait", Change: func(c *Config) { c.RebuildWait = -time.Second },
			Want: `--rebuild-wait="-1s": want a positive duration`},
		{Name: "lease prefix with braces", Change: func(c *Config) { c.Lease.Prefix = "a{b}" },
			Want: `--control-prefix="a{b}": want a key prefix without '{' or '}'`},
		{Name: "producer settings are checked", Change: func(c *Config) { c.Producer.StateDir = "" },
			Want: "--state-dir: required, want a directory path"},
	})
}

// TestPurgeRemovesEveryMember: a purge (mappings delete --purge) removes
// the segment's members from every destination through events, from a
// replica that never ran the mapping, and even when the mapping is paused.
func TestPurgeRemovesEveryMember(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	m := mapping(csvFile(t, "a", "b", "c"), "production", "staging")
	w.run(w.runner(t.TempDir()), m)
	w.wantMembers("staging", "a", "b", "c")
	m.Enabled = false
	m.MaxShrink = 0.1 // a purge is meant to empty the segment: no guard
	res, err := w.runner(t.TempDir()).Purge(w.ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Summary.Removed != 3 || r.Summary.Source != PurgeSource || r.Summary.Keys != 0 {
			t.Fatalf("%s: purge removed %d (source %q, %d members left in the snapshot), want 3 removed by %q",
				r.Destination, r.Summary.Removed, r.Summary.Source, r.Summary.Keys, PurgeSource)
		}
	}
	if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.wantMembers("production")
	w.wantMembers("staging")
}

// TestUnreachableDestination: a destination whose Redis cannot be reached
// fails its part of the run before anything is published for it, with an
// error naming it; the mapping's other destinations sync.
func TestUnreachableDestination(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	w.dests["down"] = catalog.Destination{Name: "down", Environment: "down", PrefixMode: catalog.PrefixDefault,
		Redis: redisx.Config{URL: "redis://" + testenv.ClosedAddr(t)}}
	res, err := w.runner(t.TempDir()).Run(w.ctx, mapping(csvFile(t, "a", "b"), "down", "production"))
	if err == nil || !strings.Contains(err.Error(), `mapping "beta", destination "down": `) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v, want the unreachable destination named with its error", err)
	}
	if len(res) != 2 || res[0].Err == nil || res[0].Summary.Events != 0 || res[1].Err != nil {
		t.Fatalf("results %+v: want down failed with nothing published, production synced", res)
	}
	if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.wantMembers("production", "a", "b")
}

// TestGapIsRepairedByTheNextRun: a consumer that set aside events of a
// destination while it was down records a gap; the next run of each
// segment there reads it back from Redis instead of trusting its
// snapshot, so the missed changes are published again, once.
func TestGapIsRepairedByTheNextRun(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	r := w.runner(t.TempDir())
	m := mapping(csvFile(t, "a", "b", "c"), "production")
	w.run(r, m)
	// The destination missed c's add (set aside while it was down).
	prefix, ref := w.dests["production"].Prefix(), bigsegments.Ref("beta-users", 1)
	if err := w.rdb.HDel(w.ctx, bigsegments.MembersKey(prefix, ref), "c").Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.rdb.SRem(w.ctx, bigsegments.IncludeKey(prefix, "c"), ref).Err(); err != nil {
		t.Fatal(err)
	}
	gaps, err := segmentlease.NewGaps(w.rdb, segmentlease.Config{Prefix: w.control})
	if err != nil {
		t.Fatal(err)
	}
	if err := gaps.Record(w.ctx, "production"); err != nil {
		t.Fatal(err)
	}
	res := w.run(r, m)
	if res[0].Summary.Rebuilt == nil || res[0].Summary.Added != 1 {
		t.Fatalf("run after a gap: rebuilt %+v, +%d; want a read-back and c added again", res[0].Summary.Rebuilt, res[0].Summary.Added)
	}
	w.wantMembers("production", "a", "b", "c")
	if res := w.run(r, m); res[0].Summary.Rebuilt != nil {
		t.Fatalf("run after the repair read back again: %+v", res[0].Summary.Rebuilt)
	}
}

// TestErasedKeysStayOut: a key erased from an environment (cohortsync
// erase) is excluded from every later run into it with reason "erased",
// shown in the run's exclusions, and never added back; other environments
// still get it.
func TestErasedKeysStayOut(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	erased, err := segmentlease.NewErased(w.rdb, segmentlease.Config{Prefix: w.control})
	if err != nil {
		t.Fatal(err)
	}
	if err := erased.Add(w.ctx, "production", "b", "receipt-1"); err != nil {
		t.Fatal(err)
	}
	res := w.run(w.runner(t.TempDir()), mapping(csvFile(t, "a", "b", "c"), "production", "staging"))
	w.wantMembers("production", "a", "c")
	w.wantMembers("staging", "a", "b", "c")
	if sum := res[0].Summary; sum.Excluded[source.ReasonErased] != 1 || sum.Keys != 2 || sum.Added != 2 {
		t.Errorf("production's summary %+v: want b excluded as erased, 2 members added", sum)
	}
	if sum := res[1].Summary; sum.ExcludedTotal() != 0 || sum.Added != 3 {
		t.Errorf("staging's summary %+v: want nothing excluded", sum)
	}
}
