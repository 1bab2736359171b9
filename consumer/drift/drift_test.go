package drift

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	"github.com/launchdarkly/go-sdk-common/v3/ldreason"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/consumer/rewind"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/ldstore"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// fixture is a topic with events of two environments, one of them
// compared, and the consumer configuration that applies it.
type fixture struct {
	kf    *kafkax.Factory
	kc    *kafka.Client
	topic string
	rdb   redis.UniversalClient
	cons  consumer.Config
	cfg   Config
	// sdk, when set, evaluates a flag on segment seg as an application
	// would (sdkStatus).
	sdk func(key string) (ldreason.BigSegmentsStatus, bool)
}

func newFixture(t *testing.T, ctx context.Context, rdb redis.UniversalClient, prefix string) *fixture {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	f := &fixture{kf: kafkaxtest.Factory(t, brokers...), kc: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second},
		topic: testenv.Name(t), rdb: rdb}
	res, err := f.kc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: f.topic, NumPartitions: 2, ReplicationFactor: 1}, {Topic: f.topic + ".dlq", NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range res.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "topic visible", func() bool {
		ids, err := freshness.Partitions(ctx, f.kc, f.topic)
		return err == nil && len(ids) == 2
	})
	f.cons = consumer.Config{Topic: f.topic, DeadLetterTopic: f.topic + ".dlq", GroupID: testenv.Name(t),
		RedisPrefix: prefix + "-other", EnvPrefixes: map[string]string{"production": prefix},
		BatchSize: 500, FlushInterval: 5 * time.Millisecond, SyncInterval: 100 * time.Millisecond,
		RetryTimeout: 30 * time.Second, ShutdownTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.cfg = Config{Topic: f.topic, Destinations: []Destination{{Name: "production", Client: rdb, Prefix: prefix}},
		Route: func(env string) (int, bool) { return 0, env == "production" }, Group: f.cons.GroupID, TempDir: t.TempDir(),
		SortChunkBytes: 64 << 10}
	return f
}

// waitCommitted waits until the group has committed every event produced.
func (f *fixture) waitCommitted(t *testing.T, ctx context.Context) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "the group's offsets at the ends", func() bool {
		ends, err := freshness.Ends(ctx, f.kc, f.topic)
		if err != nil {
			return false
		}
		c, err := freshness.ReadCommitted(ctx, f.kc, f.topic, f.cons.GroupID)
		return err == nil && maps.Equal(c.Positions(), ends)
	})
}

// rebuildConfig is f.cfg with the group Rebuild requires.
func (f *fixture) rebuildConfig() Config {
	cfg := f.cfg
	cfg.Group = f.cons.GroupID
	return cfg
}

func event(env, segment, key string, op schema.Op, seq uint64) schema.Event {
	return schema.Event{Env: env, Segment: segment, Generation: 1, ContextKind: "user", ContextKey: key, Op: op,
		Run: fmt.Sprintf("run-%d", seq), Seq: seq, Source: "test", Time: time.Now().UTC()}
}

func (f *fixture) produce(t *testing.T, ctx context.Context, evs ...schema.Event) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(f.kf.Brokers()...), Topic: f.topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	msgs := make([]kafka.Message, len(evs))
	for i := range evs {
		msgs[i] = evs[i].Message()
	}
	if err := errors.Join(w.WriteMessages(ctx, msgs...), w.Close()); err != nil {
		t.Fatal(err)
	}
}

// runConsumer starts one member of the group and waits until it has
// applied everything; stop ends it and waits until the group is empty.
func (f *fixture) runConsumer(t *testing.T, ctx context.Context) (stop func()) {
	t.Helper()
	c, err := consumer.New(f.cons, f.rdb, f.kf)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = c.Run(cctx) })
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := c.WaitCaughtUp(wctx); err != nil {
		cancel()
		wg.Wait()
		t.Fatalf("WaitCaughtUp: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			if runErr != nil {
				t.Errorf("Run: %v", runErr)
			}
			testenv.Eventually(t, 60*time.Second, "the group empty", func() bool { return rewind.Stopped(ctx, f.kc, f.cons.GroupID) == nil })
		})
	}
	t.Cleanup(stop)
	return stop
}

// flagData targets the synced segment "seg" (generation 1): the flag
// serves true to its members, as Redis says.
const flagData = `{
  "flags": {"in-seg": {"key": "in-seg", "version": 1, "on": true, "salt": "s",
    "variations": [false, true], "offVariation": 0, "fallthrough": {"variation": 0},
    "rules": [{"id": "r", "variation": 1, "clauses": [{"attribute": "key", "op": "segmentMatch", "values": ["seg"]}]}]}},
  "segments": {"seg": {"key": "seg", "version": 1, "salt": "s", "unbounded": true, "generation": 1, "unboundedContextKind": "user"}}
}`

// sdkStatus starts LaunchDarkly's Go SDK on the destination (through
// pkg/ldstore, polling the store's status every 20ms) and returns what an
// evaluation of the flag for key reports: the Big Segments status
// (HEALTHY, STALE, ...) and the value.
func sdkStatus(t *testing.T, ctx context.Context, rdb redis.UniversalClient, prefix string) func(key string) (ldreason.BigSegmentsStatus, bool) {
	t.Helper()
	flags := filepath.Join(t.TempDir(), "flags.json")
	must(t, os.WriteFile(flags, []byte(flagData), 0o600))
	store := ldstore.NewStore(ctx, rdb, prefix)
	client, err := ld.MakeCustomClient("sdk-key", ld.Config{
		BigSegments: ldcomponents.BigSegments(store.Configurer()).StatusPollInterval(20 * time.Millisecond).
			ContextCacheTime(time.Millisecond),
		DataSource: ldfiledata.DataSource().FilePaths(flags), Events: ldcomponents.NoEvents(),
		DiagnosticOptOut: true, Logging: ldcomponents.NoLogging(),
	}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return func(key string) (ldreason.BigSegmentsStatus, bool) {
		v, detail, _ := client.BoolVariationDetail("in-seg", ldcontext.New(key), false)
		return detail.Reason.GetBigSegmentsStatus(), v
	}
}

func members(t *testing.T, ctx context.Context, rdb redis.UniversalClient, prefix, ref string) []string {
	t.Helper()
	var got []string
	if err := segmentstore.Members(ctx, rdb, prefix, ref, func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func segmentOf(t *testing.T, r Report, name string) Segment {
	t.Helper()
	for _, s := range r.Segments {
		if s.Segment == name {
			return s
		}
	}
	t.Fatalf("no segment %s in the report %+v", name, r)
	return Segment{}
}

// TestCheckAndRebuild: a destination the consumer filled agrees with the
// log; a member deleted from Redis, one missing only from its include set
// and one added by hand are reported per segment, with counts; rebuild,
// refused while a consumer runs, repairs exactly those while SDKs read
// the store as STALE, and the consumers started next mark it current. A
// destination emptied entirely (FLUSHALL) is refilled the same way. The
// environment not compared is left out of both.
func TestCheckAndRebuild(t *testing.T) {
	testenv.ForEachRedis(t, 4*time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		f := newFixture(t, ctx, b.Client, prefix)
		testenv.DropPrefix(t, b.Client, prefix+"-other")
		f.produce(t, ctx,
			event("production", "seg", "alice", schema.OpAdd, 1), event("production", "seg", "bob", schema.OpAdd, 2),
			event("production", "seg", "carol", schema.OpAdd, 3), event("production", "seg", "dave", schema.OpAdd, 4),
			event("production", "seg", "carol", schema.OpRemove, 5), event("production", "seg2", "erin", schema.OpAdd, 6),
			event("staging", "seg", "zoe", schema.OpAdd, 7))
		stop := f.runConsumer(t, ctx)
		f.sdk = sdkStatus(t, ctx, b.Client, prefix)
		testenv.Eventually(t, 10*time.Second, "the SDK reading the store HEALTHY", func() bool {
			st, in := f.sdk("alice")
			return st == ldreason.BigSegmentsHealthy && in
		})

		// While Check reads Redis, the running consumer applies events
		// produced after the group's offsets it read the log up to: alice
		// leaves, frank joins. They differ from the log as read, but are
		// changing, not drift.
		live := f.cfg
		live.Progress = func(step string) {
			if !strings.HasPrefix(step, "reading the segments of") {
				return
			}
			f.produce(t, ctx, event("production", "seg", "alice", schema.OpRemove, 8), event("production", "seg", "frank", schema.OpAdd, 9))
			testenv.Eventually(t, 30*time.Second, "alice and frank applied", func() bool {
				got := members(t, ctx, b.Client, prefix, "seg.g1")
				return slices.Contains(got, "frank") && !slices.Contains(got, "alice")
			})
		}
		rep, err := Check(ctx, f.kf, live)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Drifted != 0 || len(rep.Segments) != 2 || rep.Log.Events != 6 || rep.Log.OtherEnvironments != 1 || len(rep.Log.Incomplete) != 0 {
			t.Fatalf("Check of an intact store = %+v, want no drift in 2 segments from 6 events", rep)
		}
		if s := segmentOf(t, rep, "seg"); s.LogMembers != 3 || s.RedisMembers != 3 || s.Changing != 2 {
			t.Fatalf("seg: %+v, want 3 members on both sides, 2 changing", s)
		}
		// Back to the membership the rest of the test expects.
		f.produce(t, ctx, event("production", "seg", "alice", schema.OpAdd, 10), event("production", "seg", "frank", schema.OpRemove, 11))
		testenv.Eventually(t, 30*time.Second, "alice back, frank gone", func() bool {
			return slices.Equal(members(t, ctx, b.Client, prefix, "seg.g1"), []string{"alice", "bob", "dave"})
		})
		f.waitCommitted(t, ctx)
		other := f.cfg
		other.Group = testenv.Name(t)
		if _, err := Check(ctx, f.kf, other); !errors.Is(err, ErrNoCommits) {
			t.Fatalf("Check with a group that never committed = %v, want ErrNoCommits", err)
		}

		// Drift: bob deleted, alice's include set emptied, mallory added.
		must(t, b.Client.HDel(ctx, bigsegments.MembersKey(prefix, "seg.g1"), "bob").Err())
		must(t, b.Client.SRem(ctx, bigsegments.IncludeKey(prefix, "bob"), "seg.g1").Err())
		must(t, b.Client.SRem(ctx, bigsegments.IncludeKey(prefix, "alice"), "seg.g1").Err())
		must(t, b.Client.HSet(ctx, bigsegments.MembersKey(prefix, "seg.g1"), "mallory", "1").Err())
		must(t, b.Client.SAdd(ctx, bigsegments.IncludeKey(prefix, "mallory"), "seg.g1").Err())
		rep, err = Check(ctx, f.kf, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := segmentOf(t, rep, "seg")
		if rep.Drifted != 1 || s.Missing != 2 || s.Extra != 1 || s.NotInLog != 1 || s.LogMembers != 3 || s.RedisMembers != 3 ||
			!slices.Equal(s.MissingExamples, []string{"alice", "bob"}) || !slices.Equal(s.ExtraExamples, []string{"mallory"}) {
			t.Fatalf("Check after the drift: %+v", rep)
		}
		if s := segmentOf(t, rep, "seg2"); s.Drifted() {
			t.Fatalf("seg2 drifted: %+v", s)
		}

		if _, err := Rebuild(ctx, f.kf, f.cfg); !errors.Is(err, rewind.ErrGroupActive) {
			t.Fatalf("Rebuild with a running consumer = %v, want ErrGroupActive", err)
		}
		stop()
		rebuilt := rebuild(t, ctx, f, prefix)
		if rebuilt.Added != 2 || rebuilt.Removed != 1 || rebuilt.Before.Drifted != 1 || rebuilt.After.Drifted != 0 {
			t.Fatalf("Rebuild = %+v", rebuilt)
		}
		if got := members(t, ctx, b.Client, prefix, "seg.g1"); !slices.Equal(got, []string{"alice", "bob", "dave"}) {
			t.Fatalf("after the rebuild seg holds %v", got)
		}
		if in, ex, err := segmentstore.Membership(ctx, b.Client, prefix, "alice"); err != nil || !slices.Equal(in, []string{"seg.g1"}) || len(ex) != 0 {
			t.Fatalf("alice's include set after the rebuild: %v %v %v", in, ex, err)
		}
		stop = f.runConsumer(t, ctx)
		testenv.Eventually(t, 10*time.Second, "the SDK reading the store HEALTHY again", func() bool {
			st, in := f.sdk("bob")
			return st == ldreason.BigSegmentsHealthy && in
		})
		if at, ok, err := segmentstore.SyncTime(ctx, b.Client, prefix); err != nil || !ok || time.Since(at) > time.Minute {
			t.Fatalf("freshness did not resume after the rebuild: %v %v %v", at, ok, err)
		}

		// Redis lost everything under the prefix: the consumer finds the
		// store id gone; rebuild refills it, and the next consumers mark it
		// current again.
		must(t, testenv.DeletePrefix(ctx, b.Client, prefix))
		testenv.Eventually(t, 30*time.Second, "the loss found", func() bool {
			return b.Client.Exists(ctx, bigsegments.StoreLostKey(prefix)).Val() == 1
		})
		stop()
		rebuilt = rebuild(t, ctx, f, prefix)
		if rebuilt.Added != 4 || rebuilt.Removed != 0 {
			t.Fatalf("Rebuild of an emptied store = %+v, want alice, bob, dave and erin added", rebuilt)
		}
		f.runConsumer(t, ctx)
		if got := members(t, ctx, b.Client, prefix, "seg.g1"); !slices.Equal(got, []string{"alice", "bob", "dave"}) {
			t.Fatalf("after the rebuild of the emptied store seg holds %v", got)
		}
		if _, ok, err := segmentstore.SyncTime(ctx, b.Client, prefix); err != nil || !ok {
			t.Fatalf("freshness did not resume after the rebuild of the emptied store: %v %v", ok, err)
		}
		rep, err = Check(ctx, f.kf, f.cfg)
		if err != nil || rep.Drifted != 0 {
			t.Fatalf("Check after the rebuilds: %+v %v", rep, err)
		}
	})
}

// rebuild runs Rebuild, checking at every step after the hold that an SDK
// reading the store finds no synchronized_on (pkg/ldstore, what
// LaunchDarkly's Go SDK calls) and, when the fixture has one, that the Go
// SDK evaluates with STALE: never a half-filled store as current.
func rebuild(t *testing.T, ctx context.Context, f *fixture, prefix string) Rebuilt {
	t.Helper()
	store := ldstore.NewStore(ctx, f.rdb, prefix)
	held, steps := false, 0
	cfg := f.cfg
	cfg.Progress = func(step string) {
		if strings.HasPrefix(step, "freshness held back") {
			held = true
			if f.sdk != nil { // the SDK polls the store's status: give it a poll
				testenv.Eventually(t, 10*time.Second, "the SDK reporting STALE", func() bool {
					st, _ := f.sdk("alice")
					return st == ldreason.BigSegmentsStale
				})
			}
		}
		if !held || strings.HasPrefix(step, "rebuilt;") {
			return
		}
		steps++
		md, err := store.GetMetadata()
		if err != nil || md.LastUpToDate != 0 {
			t.Errorf("during the rebuild (%s) the store has synchronized_on %v (%v), want none: STALE", step, md.LastUpToDate, err)
		}
		if f.sdk != nil {
			if st, _ := f.sdk("bob"); st != ldreason.BigSegmentsStale {
				t.Errorf("during the rebuild (%s) the SDK evaluates with %s, want STALE", step, st)
			}
		}
	}
	res, err := Rebuild(ctx, f.kf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !held || steps < 3 {
		t.Fatalf("Rebuild held freshness back %v, then reported %d steps", held, steps)
	}
	if n := f.rdb.Exists(ctx, bigsegments.StoreLostKey(prefix)).Val(); n != 0 {
		t.Fatal("the hold was not released")
	}
	md, err := store.GetMetadata()
	if err != nil || md.LastUpToDate != 0 {
		t.Fatalf("after the rebuild, before any consumer: synchronized_on %v (%v), want none until the consumers caught up", md.LastUpToDate, err)
	}
	if f.sdk != nil {
		if st, in := f.sdk("bob"); st != ldreason.BigSegmentsStale || !in {
			t.Fatalf("after the rebuild, before any consumer, the SDK evaluates bob with %s (member %v), want STALE and member", st, in)
		}
	}
	return res
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckSortsOnDisk: with a sort budget far below the size of the log
// and of the member index (the smallest chunk: many run files, merged),
// the comparison of tens of thousands of members still finds exactly the
// members deleted and added, and a rebuild repairs exactly those.
func TestCheckSortsOnDisk(t *testing.T) {
	testenv.ForEachRedis(t, 4*time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		f := newFixture(t, ctx, b.Client, prefix)
		f.cfg.Group = "" // no consumer: Check compares with the whole log

		f.cfg.SortChunkBytes = snapshot.MinChunkBytes
		const n = 12000
		evs := make([]schema.Event, 0, n+n/10)
		var changes []segmentstore.Change
		for i := range n {
			ev := event("production", "big", fmt.Sprintf("user-%06d", i), schema.OpAdd, uint64(i+1))
			evs = append(evs, ev)
			changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "big", Generation: 1, ContextKind: "user", ContextKey: ev.ContextKey, Seq: ev.Seq, Run: ev.Run})
		}
		for i := 0; i < n; i += 10 { // every tenth member removed again
			ev := event("production", "big", fmt.Sprintf("user-%06d", i), schema.OpRemove, uint64(n+i+1))
			evs = append(evs, ev)
			changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "big", Generation: 1, ContextKind: "user", ContextKey: ev.ContextKey, Remove: true, Seq: ev.Seq, Run: ev.Run})
		}
		f.produce(t, ctx, evs...)
		w := segmentstore.NewWriter(b.Client, nil)
		for len(changes) > 0 {
			k := min(len(changes), 5000)
			if _, err := w.Apply(ctx, changes[:k]); err != nil {
				t.Fatal(err)
			}
			changes = changes[k:]
		}
		must(t, b.Client.HDel(ctx, bigsegments.MembersKey(prefix, "big.g1"), "user-000001", "user-011999").Err())
		must(t, b.Client.HSet(ctx, bigsegments.MembersKey(prefix, "big.g1"), "user-000010", "1", "stranger", "1").Err())

		rep, err := Check(ctx, f.kf, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := segmentOf(t, rep, "big")
		if s.LogMembers != n-n/10 || s.RedisMembers != n-n/10 || s.Missing != 2 || s.Extra != 2 || s.NotInLog != 1 ||
			!slices.Equal(s.MissingExamples, []string{"user-000001", "user-011999"}) || !slices.Equal(s.ExtraExamples, []string{"stranger", "user-000010"}) {
			t.Fatalf("Check = %+v (log %+v)", s, rep.Log)
		}
		res, err := Rebuild(ctx, f.kf, f.rebuildConfig())
		if err != nil || res.Added != 2 || res.Removed != 2 || res.After.Drifted != 0 {
			t.Fatalf("Rebuild = %+v, %v", res, err)
		}
	})
}

// TestCompactedGenerationIsNotDrift: a member of generations 1 and 2
// whose generation-1 event compaction removed (the log keeps one event per
// membership key, generation-2's) is counted apart, not as drift, and a
// rebuild keeps it; a member of generation 1 with no event of its key at
// all is extra.
func TestCompactedGenerationIsNotDrift(t *testing.T) {
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		f := newFixture(t, ctx, b.Client, prefix)
		f.cfg.Group = "" // no consumer: Check compares with the whole log

		xavier2 := event("production", "seg", "xavier", schema.OpAdd, 2)
		xavier2.Generation = 2
		f.produce(t, ctx, xavier2) // xavier's generation-1 add was compacted away
		var changes []segmentstore.Change
		for _, c := range []struct {
			key string
			gen int
		}{{"xavier", 1}, {"xavier", 2}, {"yolanda", 1}} {
			changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "seg", Generation: c.gen, ContextKind: "user", ContextKey: c.key, Seq: 1, Run: "run-1"})
		}
		if _, err := segmentstore.NewWriter(b.Client, nil).Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		rep, err := Check(ctx, f.kf, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		g1 := rep.Segments[0]
		if len(rep.Segments) != 2 || g1.Generation != 1 || g1.OtherGeneration != 1 || g1.Extra != 1 || g1.NotInLog != 1 ||
			!slices.Equal(g1.ExtraExamples, []string{"yolanda"}) || rep.Segments[1].Drifted() || rep.Drifted != 1 {
			t.Fatalf("Check = %+v", rep)
		}
		res, err := Rebuild(ctx, f.kf, f.rebuildConfig())
		if err != nil || res.Removed != 1 || res.Added != 0 {
			t.Fatalf("Rebuild = %+v, %v", res, err)
		}
		if got := members(t, ctx, b.Client, prefix, "seg.g1"); !slices.Equal(got, []string{"xavier"}) {
			t.Fatalf("after the rebuild generation 1 holds %v, want xavier kept", got)
		}
	})
}

// TestRetentionRemovedEvents: on a log whose head retention removed (no
// partition starts at offset 0 any more), check says the log is
// incomplete and counts the members it holds no event of; rebuild writes
// what the surviving events say (an add, a removal) and keeps those
// members rather than remove them.
func TestRetentionRemovedEvents(t *testing.T) {
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		f := newFixture(t, ctx, b.Client, prefix)
		f.cfg.Group = "" // no consumer: Check compares with the whole log

		alice, bob := event("production", "seg", "alice", schema.OpAdd, 1), event("production", "seg", "bob", schema.OpAdd, 2)
		f.produce(t, ctx, alice, bob)
		var changes []segmentstore.Change
		for _, ev := range []schema.Event{alice, bob} {
			changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "seg", Generation: 1, ContextKind: "user", ContextKey: ev.ContextKey, Seq: ev.Seq, Run: ev.Run})
		}
		if _, err := segmentstore.NewWriter(b.Client, nil).Apply(ctx, changes); err != nil {
			t.Fatal(err)
		}
		testenv.DeleteRecords(t, ctx, f.kf.Brokers(), f.topic, 2)
		f.produce(t, ctx, event("production", "seg", "alice", schema.OpRemove, 3), event("production", "seg", "carol", schema.OpAdd, 4))

		rep, err := Check(ctx, f.kf, f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := segmentOf(t, rep, "seg")
		if len(rep.Log.Incomplete) != 2 || s.LogMembers != 1 || s.RedisMembers != 2 || s.Missing != 1 || s.Extra != 2 || s.NotInLog != 1 {
			t.Fatalf("Check = %+v", rep)
		}
		res, err := Rebuild(ctx, f.kf, f.rebuildConfig())
		if err != nil || res.Added != 1 || res.Removed != 1 || res.Kept != 1 {
			t.Fatalf("Rebuild = %+v, %v", res, err)
		}
		if got := members(t, ctx, b.Client, prefix, "seg.g1"); !slices.Equal(got, []string{"bob", "carol"}) {
			t.Fatalf("after the rebuild seg holds %v, want bob kept and carol added", got)
		}
	})
}
