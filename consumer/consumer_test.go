package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// forEachBackend runs fn as a subtest on every Redis backend, all sharing
// one Kafka backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient)) {
	brokers, onBroker := testenv.Kafka(t)
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, brokers, onBroker, b.Client) })
	}
}

func TestConsumerAppliesAddsAndRemoves(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 3)
		cfg := testConfig(t, ke)
		prodPrefix := testenv.Name(t)
		cfg.EnvPrefixes = map[string]string{"production": prodPrefix}
		const seg, other = "amplitude-7khm89cz", "amplitude-other"
		evs := []schema.Event{
			ev("staging", seg, 1, "alice@example.com", schema.OpAdd, 101),
			ev("staging", seg, 1, "bob", schema.OpAdd, 102),
			ev("staging", seg, 1, "carol", schema.OpAdd, 103),
			ev("staging", seg, 1, "bob", schema.OpRemove, 204), // a later run removes bob
			ev("staging", seg, 1, "zoë 🙂", schema.OpAdd, 205),
			ev("staging", other, 2, "alice@example.com", schema.OpAdd, 7),
			ev("production", seg, 1, "dave", schema.OpAdd, 301),
		}
		before := time.Now()
		ke.produce(t, messages(evs...)...)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		ctx := testenv.Context(t, 10*time.Second)

		for _, tc := range []struct {
			prefix, key string
			want        []string
		}{
			{cfg.RedisPrefix, "alice@example.com", []string{"amplitude-7khm89cz.g1", "amplitude-other.g2"}},
			{cfg.RedisPrefix, "bob", nil},
			{cfg.RedisPrefix, "carol", []string{"amplitude-7khm89cz.g1"}},
			{cfg.RedisPrefix, "zoë 🙂", []string{"amplitude-7khm89cz.g1"}},
			{cfg.RedisPrefix, "dave", nil}, // production goes to its own prefix
			{prodPrefix, "dave", []string{"amplitude-7khm89cz.g1"}},
		} {
			inc, exc, err := segmentstore.Membership(ctx, rdb, tc.prefix, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inc, tc.want) || len(exc) != 0 {
				t.Errorf("membership of %q under %s: included %q excluded %q, want included %q", tc.key, tc.prefix, inc, exc, tc.want)
			}
		}

		info, err := segmentstore.Info(ctx, rdb, cfg.RedisPrefix, "amplitude-7khm89cz.g1")
		if err != nil {
			t.Fatal(err)
		}
		if info.Members != 3 || info.LastSeq != 205 || info.LastRun != "run-2" || info.ContextKind != "user" ||
			info.LastApplied.Before(before.Add(-time.Second)) || info.LastApplied.After(time.Now().Add(time.Second)) {
			t.Errorf("info = %+v, want 3 members, last_seq 205, last_run run-2, kind user, applied during the test", info)
		}
		members := sortedMembers(t, rdb, cfg.RedisPrefix, "amplitude-7khm89cz.g1")
		if want := []string{"alice@example.com", "carol", "zoë 🙂"}; !slices.Equal(members, want) {
			t.Errorf("members = %q, want %q", members, want)
		}

		for _, p := range []string{cfg.RedisPrefix, prodPrefix} {
			ts, ok, err := segmentstore.SyncTime(ctx, rdb, p)
			if err != nil || !ok || ts.Before(before.Truncate(time.Millisecond)) {
				t.Errorf("synchronized_on under %s = %v, %v, %v; want a time after the events were produced", p, ts, ok, err)
			}
		}
		s := c.Stats()
		if s.Applied != int64(len(evs)) || s.DeadLettered != 0 || s.Lag != 0 || !s.CaughtUp || s.Batches < 1 || s.LastApplied.IsZero() || s.LastSync.IsZero() {
			t.Errorf("stats = %+v, want %d applied, none dead-lettered, caught up", s, len(evs))
		}
		if err := c.stop(); err != nil {
			t.Fatalf("Run returned %v after cancellation, want nil", err)
		}
		if got, want := ke.committed(t, cfg.GroupID), ke.ends(t); !mapsEqual(got, want) {
			t.Errorf("committed offsets %v, want the end offsets %v", got, want)
		}
	})
}

func mapsEqual(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// model applies evs in order the way Redis should end up, per prefix-less
// (context key, ref).
func model(evs []schema.Event) map[string]bool {
	in := map[string]bool{}
	for _, e := range evs {
		k := e.ContextKey + " " + e.Ref()
		if e.Op == schema.OpAdd {
			in[k] = true
		} else {
			delete(in, k)
		}
	}
	return in
}

// churn generates n events over a few segments and contexts, adds and
// removes interleaved, so that order matters.
func churn(n int) []schema.Event {
	evs := make([]schema.Event, n)
	for i := range evs {
		op := schema.OpAdd
		if i%3 == 2 {
			op = schema.OpRemove
		}
		evs[i] = ev("staging", fmt.Sprintf("seg-%d", i%4), 1+i%2, fmt.Sprintf("user-%d", (i*7)%97), op, uint64(i+1))
	}
	return evs
}

// lastApplied matches the last_applied field of a snapshot's printed hash.
var lastApplied = regexp.MustCompile(`last_applied:[0-9]+ ?`)

func TestReplayAndDuplicatesLeaveRedisUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 3)
		evs := churn(600)
		// Every message twice in a row, as a producer retry leaves it.
		var msgs []kafka.Message
		for _, m := range messages(evs...) {
			msgs = append(msgs, m, m)
		}
		ke.produce(t, msgs...)

		cfg := testConfig(t, ke)
		cfg.BatchSize = 64 // many batches, duplicates straddling batch boundaries
		first := start(t, ke.kf, cfg, rdb)
		first.waitCaughtUp(t)
		if err := first.stop(); err != nil {
			t.Fatal(err)
		}
		syncKey := bigsegments.SyncTimeKey(cfg.RedisPrefix)
		before := snapshot(t, rdb, cfg.RedisPrefix, syncKey)

		// The state is the model's: duplicates changed nothing.
		want := model(evs)
		ctx := testenv.Context(t, 10*time.Second)
		for i := range 97 {
			key := fmt.Sprintf("user-%d", i)
			inc, _, err := segmentstore.Membership(ctx, rdb, cfg.RedisPrefix, key)
			if err != nil {
				t.Fatal(err)
			}
			for _, ref := range []string{"seg-0.g1", "seg-1.g2", "seg-2.g1", "seg-3.g2"} {
				if got := slices.Contains(inc, ref); got != want[key+" "+ref] {
					t.Errorf("%s in %s = %v, want %v", key, ref, got, want[key+" "+ref])
				}
			}
		}

		// Replay the whole topic with a new group: nothing changes, the
		// metadata included (its last_seq does not move backwards), but
		// for last_applied, the time of the last batch that wrote the
		// segment (issue 11 item 7).
		cfg.GroupID = testenv.Name(t)
		cfg.BatchSize = 1000
		replay := start(t, ke.kf, cfg, rdb)
		replay.waitCaughtUp(t)
		if err := replay.stop(); err != nil {
			t.Fatal(err)
		}
		if got := replay.Stats().Applied; got != int64(len(msgs)) {
			t.Errorf("replay applied %d events, want %d", got, len(msgs))
		}
		after := snapshot(t, rdb, cfg.RedisPrefix, syncKey)
		for _, s := range []map[string]string{before, after} {
			for k, v := range s {
				if strings.HasSuffix(k, ":meta") {
					s[k] = lastApplied.ReplaceAllString(v, "")
				}
			}
		}
		if d := diffSnapshots(before, after); d != "" {
			t.Errorf("replay changed Redis:\n%s", d)
		}
		if len(before) == 0 {
			t.Fatal("snapshot is empty: the test compares nothing")
		}
	})
}

func TestSynchronizedOnOnlyWhileCaughtUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 3)
		cfg := testConfig(t, ke)
		ctx := testenv.Context(t, 60*time.Second)
		ke.produce(t, messages(churn(10)...)...)

		// Nobody consumes: lag is 10 and synchronized_on is never written.
		idle, err := New(cfg, rdb, ke.kf)
		if err != nil {
			t.Fatal(err)
		}
		idle.fresh.Check(ctx)
		if s := idle.Stats(); s.Lag != 10 || s.CaughtUp || s.SyncErrors != 0 {
			t.Errorf("idle stats = %+v, want lag 10", s)
		}
		if _, ok, err := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix); ok || err != nil {
			t.Fatalf("synchronized_on written while nothing was applied (%v)", err)
		}

		// A consumer catches up and writes it.
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		if err := c.stop(); err != nil {
			t.Fatal(err)
		}
		first, ok, err := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix)
		if !ok || err != nil {
			t.Fatalf("synchronized_on not written after catching up (%v)", err)
		}

		// The consumer is down and new events arrive: checks see the lag
		// and leave synchronized_on where it was, however often they run.
		// A wrong write below must be visible: let the clock pass first's
		// millisecond.
		testenv.Eventually(t, time.Second, "the next millisecond", func() bool { return time.Now().UnixMilli() > first.UnixMilli() })
		ke.produce(t, messages(churn(15)[10:]...)...)
		down, err := New(cfg, rdb, ke.kf)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			down.fresh.Check(ctx)
		}
		if s := down.Stats(); s.Lag != 5 || s.CaughtUp {
			t.Errorf("stats while down = %+v, want lag 5", s)
		}
		if got, _, _ := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix); !got.Equal(first) {
			t.Errorf("synchronized_on moved from %v to %v while events were waiting", first, got)
		}

		// Back up: caught up again, synchronized_on moves forward.
		again := start(t, ke.kf, cfg, rdb)
		again.waitCaughtUp(t)
		if got, _, _ := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix); !got.After(first) {
			t.Errorf("synchronized_on %v did not advance past %v after catching up", got, first)
		}
		if s := again.Stats(); s.Applied != 5 {
			t.Errorf("restarted consumer applied %d events, want the 5 new ones", s.Applied)
		}
	})
}

// outage is a go-redis hook that fails apply pipelines (those carrying SADD
// or SREM) with a network error while on, as a Redis outage would.
type outage struct {
	on     atomic.Bool
	failed atomic.Int64
}

func (o *outage) DialHook(next redis.DialHook) redis.DialHook { return next }
func (o *outage) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (o *outage) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if o.on.Load() && slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "sadd" || c.Name() == "srem" }) {
			o.failed.Add(1)
			err := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("injected outage")}
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

func TestRedisOutageCommitsNothingUntilApplied(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 3)
		cfg := testConfig(t, ke)
		o := &outage{}
		rdb.AddHook(o)
		evs := churn(40)
		ke.produce(t, messages(evs[:20]...)...)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		committedBefore := ke.committed(t, cfg.GroupID)
		ctx := testenv.Context(t, 60*time.Second)
		syncBefore, _, _ := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix)

		o.on.Store(true)
		ke.produce(t, messages(evs[20:]...)...)
		producedAt := time.Now() // the new events are in the log from here on
		testenv.Eventually(t, 20*time.Second, "the consumer to hit the outage twice", func() bool { return o.failed.Load() >= 2 })
		// Sync checks keep running during the outage and see the lag.
		testenv.Eventually(t, 20*time.Second, "a lag check to see the 20 new events", func() bool { return c.Stats().Lag == 20 })
		if got := ke.committed(t, cfg.GroupID); !mapsEqual(got, committedBefore) {
			t.Errorf("offsets committed during the outage: %v, before %v", got, committedBefore)
		}
		// A check that started before the events were appended may write
		// its start time; none may claim a later time.
		if got, _, _ := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix); got.UnixMilli() > producedAt.UnixMilli() || got.Before(syncBefore) {
			t.Errorf("synchronized_on %v: after the unapplied events were produced (%v) or before %v", got, producedAt, syncBefore)
		}
		if s := c.Stats(); s.Applied != 20 || s.Retries == 0 || s.Lag != 20 {
			t.Errorf("stats during outage = %+v, want 20 applied, retries, lag 20", s)
		}

		o.on.Store(false)
		c.waitCaughtUp(t)
		if got, want := ke.committed(t, cfg.GroupID), ke.ends(t); !mapsEqual(got, want) {
			t.Errorf("after the outage committed %v, want %v", got, want)
		}
		assertModel(t, rdb, cfg.RedisPrefix, evs)
	})
}

// assertModel checks every (context, ref) the events touch against model.
func assertModel(t *testing.T, rdb redis.UniversalClient, prefix string, evs []schema.Event) {
	t.Helper()
	want := model(evs)
	ctx := testenv.Context(t, 10*time.Second)
	checked := map[string]bool{}
	for _, e := range evs {
		k := e.ContextKey + " " + e.Ref()
		if checked[k] {
			continue
		}
		checked[k] = true
		inc, _, err := segmentstore.Membership(ctx, rdb, prefix, e.ContextKey)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(inc, e.Ref()); got != want[k] {
			t.Errorf("%s in %s = %v, want %v", e.ContextKey, e.Ref(), got, want[k])
		}
	}
}

// TestRedisKilledMidRun stops a real (in-process) Redis server under the
// consumer, which needs a server this test owns: it is miniredis whatever
// the environment says.
func TestRedisKilledMidRun(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 2)
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := testConfig(t, ke)
	evs := churn(30)
	ke.produce(t, messages(evs[:10]...)...)
	c := start(t, ke.kf, cfg, rdb)
	c.waitCaughtUp(t)
	committedBefore := ke.committed(t, cfg.GroupID)

	m.Close()
	ke.produce(t, messages(evs[10:]...)...)
	testenv.Eventually(t, 20*time.Second, "retries against the dead server", func() bool { return c.Stats().Retries >= 2 })
	if got := ke.committed(t, cfg.GroupID); !mapsEqual(got, committedBefore) {
		t.Errorf("offsets committed with Redis down: %v, before %v", got, committedBefore)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	c.waitCaughtUp(t)
	assertModel(t, rdb, cfg.RedisPrefix, evs)
	if s := c.Stats(); s.Applied != 30 {
		t.Errorf("applied %d, want 30", s.Applied)
	}
}

func TestRunFailsFastOnMissingTopics(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 1)
	rdb := testenv.Redis(t).Client
	for _, tc := range []struct {
		name       string
		topic, dlq string
		want       string
	}{
		{"missing topic", "no-such-topic-" + ke.topic, ke.dlq, `--topic: topic "no-such-topic-` + ke.topic + `" does not exist`},
		{"missing dead-letter topic", ke.topic, ke.topic + ".nope", `--dead-letter-topic: topic "` + ke.topic + `.nope" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, ke)
			cfg.Topic, cfg.DeadLetterTopic = tc.topic, tc.dlq
			c, err := New(cfg, rdb, ke.kf)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(testenv.Context(t, 30*time.Second))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRunTwiceIsAnError(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 1)
	c := start(t, ke.kf, testConfig(t, ke), testenv.Redis(t).Client)
	c.waitCaughtUp(t)
	if err := c.Run(testenv.Context(t, time.Second)); err == nil || !strings.Contains(err.Error(), "Run called twice") {
		t.Fatalf("second Run = %v, want an error", err)
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCaughtUp(testenv.Context(t, time.Second)); !errors.Is(err, ErrStopped) && err != nil {
		t.Fatalf("WaitCaughtUp after stop = %v", err)
	}
}

func TestShutdownDuringOutageReturnsNilAndCommitsNothing(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 2)
	rdb := testenv.Redis(t).Client
	o := &outage{}
	rdb.AddHook(o)
	cfg := testConfig(t, ke)
	cfg.ShutdownTimeout = time.Second
	c := start(t, ke.kf, cfg, rdb)
	c.waitCaughtUp(t) // empty topic: caught up at once
	o.on.Store(true)
	ke.produce(t, messages(churn(10)...)...)
	testenv.Eventually(t, 20*time.Second, "the consumer to hit the outage", func() bool { return o.failed.Load() >= 1 })
	began := time.Now()
	if err := c.stop(); err != nil {
		t.Fatalf("Run = %v after cancellation during an outage, want nil", err)
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for p, off := range ke.committed(t, cfg.GroupID) {
		if off > 0 {
			t.Errorf("partition %d committed at %d with nothing applied", p, off)
		}
	}
	if s := c.Stats(); s.Applied != 0 {
		t.Errorf("applied %d during the outage", s.Applied)
	}
}
