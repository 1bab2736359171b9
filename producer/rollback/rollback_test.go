package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/generation"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/mappingrun/mappingruntest"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/rollback"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/schema"
)

// env is a topic, a Redis holding the control keys and one destination,
// and a consumer applying the topic there.
type env struct {
	t       *testing.T
	ctx     context.Context
	kf      *kafkax.Factory
	rdb     redis.UniversalClient
	topic   string
	control string
	dest    catalog.Destination
	cons    *consumer.Consumer
	compact bool
}

func (e *env) Destination(_ context.Context, name string) (catalog.Destination, error) {
	if name != e.dest.Name {
		return catalog.Destination{}, fmt.Errorf("no destination %q", name)
	}
	return e.dest, nil
}

func newEnv(t *testing.T, rb testenv.RedisBackend) *env { return newEnvWith(t, rb, true) }

// newEnvWith is newEnv whose topic is compacted or, if not, keeps records
// for a retention time (which DeleteRecords can stand for).
func newEnvWith(t *testing.T, rb testenv.RedisBackend, compact bool) *env {
	name := testenv.Name(t)
	e := &env{t: t, compact: compact, ctx: testenv.Context(t, 3*time.Minute), kf: kafkaxtest.Kafka(t), rdb: rb.Client, topic: name, control: name + ":control:",
		dest: catalog.Destination{Name: "production", Environment: "production", PrefixMode: catalog.PrefixCustom, CustomPrefix: name + "-prod"}}
	testenv.DropPrefix(t, rb.Client, e.dest.Prefix())
	testenv.DropPrefix(t, rb.Client, strings.TrimSuffix(e.control, ":"))
	if err := publish.EnsureTopics(e.ctx, e.producerConfig(t.TempDir()).Config, e.kf); err != nil {
		t.Fatal(err)
	}
	e.cons = mappingruntest.Consume(t, e.ctx, e.kf, rb.Client, name, map[string]string{"production": e.dest.Prefix()})
	return e
}

func (e *env) producerConfig(stateDir string) producer.Config {
	cfg := producer.DefaultConfig()
	cfg.Topic, cfg.StateDir, cfg.TopicPartitions, cfg.TopicCompact = e.topic, stateDir, 3, e.compact
	return cfg
}

// replica is a runner with its own state directory.
func (e *env) replica(stateDir string) *mappingrun.Runner {
	r, err := mappingrun.New(mappingrun.Config{Producer: e.producerConfig(stateDir), Lease: segmentlease.Config{Prefix: e.control}, RebuildWait: 30 * time.Second},
		e.kf, e.rdb, e, func(context.Context, catalog.Destination) (redis.UniversalClient, error) { return e.rdb, nil },
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) mapping(members ...string) catalog.Mapping {
	path := filepath.Join(e.t.TempDir(), "cohort.csv")
	if err := os.WriteFile(path, []byte("user_id\n"+strings.Join(members, "\n")+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return catalog.Mapping{Name: "beta", Source: catalog.Source{Kind: catalog.SourceCSV, Location: path}, Segment: "beta-users",
		Destinations: []string{"production"}, IDProperty: "user_id", ContextKind: "user", Generation: 1, Enabled: true,
		Schedule: catalog.Schedule{Kind: catalog.ScheduleHourly}}
}

// settle waits until the consumer applied everything published.
func (e *env) settle() {
	e.t.Helper()
	if err := e.cons.WaitCaughtUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// sync runs the mapping with members and returns the run's summary.
func (e *env) sync(r *mappingrun.Runner, members ...string) producer.Summary {
	e.t.Helper()
	res, err := r.Run(e.ctx, e.mapping(members...))
	if err != nil {
		e.t.Fatal(err)
	}
	e.settle()
	return res[0].Summary
}

// rollback restores the membership after the run of sum through r.
func (e *env) rollback(r *mappingrun.Runner, sum producer.Summary, topic string) (producer.Summary, error) {
	e.t.Helper()
	m := e.mapping()
	target, err := rollback.TargetOf(sum, snapshot.SegmentID{Env: "production", Segment: m.Segment, Generation: m.Generation, ContextKind: m.ContextKind})
	if err != nil {
		e.t.Fatal(err)
	}
	// One clock produced every event: the read starts at the run's own
	// records, skipping the older ones.
	res, err := r.RunSource(e.ctx, m, nil, func(_ context.Context, d catalog.Destination, c redis.UniversalClient) (source.Source, error) {
		return &rollback.Source{Target: target, Kafka: e.kf, Topic: topic, Idle: 2 * time.Second, ClockSkew: time.Millisecond,
			Destination: segmentstore.Rebuilder{Client: c, Prefix: d.Prefix(), Wait: 30 * time.Second}}, nil
	})
	e.settle()
	if len(res) != 1 {
		e.t.Fatalf("rollback: %d results, %v", len(res), err)
	}
	return res[0].Summary, err
}

// members reads the segment the way the SDKs do: each member of the index
// must have the segment's ref in its include set.
func (e *env) members() []string {
	e.t.Helper()
	prefix, ref := e.dest.Prefix(), bigsegments.Ref("beta-users", 1)
	var got []string
	if err := segmentstore.Members(e.ctx, e.rdb, prefix, ref, func(k string) error { got = append(got, k); return nil }); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(got)
	for _, k := range got {
		inc, _, err := segmentstore.Membership(e.ctx, e.rdb, prefix, k)
		if err != nil {
			e.t.Fatal(err)
		}
		if !slices.Contains(inc, ref) {
			e.t.Errorf("%q is in the member index, its include set is %q", k, inc)
		}
	}
	return got
}

func (e *env) want(what string, want ...string) {
	e.t.Helper()
	slices.Sort(want)
	if got := e.members(); !slices.Equal(got, want) {
		e.t.Fatalf("%s: members %q, want %q", what, got, want)
	}
}

func TestRollbackRestoresTheMembershipOfAnEarlierRun(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			e := newEnv(t, rb)
			first := e.replica(t.TempDir())
			a := e.sync(first, "u1", "u2", "u3", "u4")
			b := e.sync(first, "u2", "u3", "u5", "u6")
			if a.SeqReserved < a.LastSeq || b.FirstSeq <= a.SeqReserved {
				t.Fatalf("run A reserved up to %d (events %d..%d), run B's events start at %d: want B above A's reservation", a.SeqReserved, a.FirstSeq, a.LastSeq, b.FirstSeq)
			}
			e.want("after B", "u2", "u3", "u5", "u6")

			sum, err := e.rollback(first, a, e.topic)
			if err != nil {
				t.Fatal(err)
			}
			e.want("rolled back to A", "u1", "u2", "u3", "u4")
			if !strings.Contains(sum.Input, "after run "+a.Run) {
				t.Errorf("rollback input %q does not name run A", sum.Input)
			}
			if sum.Source != rollback.SourceKind || sum.Added != 2 || sum.Removed != 2 || sum.Keys != 4 {
				t.Errorf("rollback summary: source %q, +%d -%d, %d members; want rollback, +2 -2, 4", sum.Source, sum.Added, sum.Removed, sum.Keys)
			}

			// Another replica, whose state directory is empty (lost), goes
			// back to B, then to A again: the history is in the topic, not
			// on any disk.
			other := e.replica(t.TempDir())
			if _, err := e.rollback(other, b, e.topic); err != nil {
				t.Fatal(err)
			}
			e.want("rolled back to B by a replica without state", "u2", "u3", "u5", "u6")
			c := e.sync(first, "u7")
			e.want("after C", "u7")
			if _, err := e.rollback(e.replica(t.TempDir()), a, e.topic); err != nil {
				t.Fatal(err)
			}
			e.want("rolled back to A after a rollback and C", "u1", "u2", "u3", "u4")
			if _, err := e.rollback(first, c, e.topic); err != nil {
				t.Fatal(err)
			}
			e.want("rolled back to C", "u7")
		})
	}
}

func TestRollbackRefusesWhenTheTopicLostTheHistory(t *testing.T) {
	e := newEnv(t, testenv.Redis(t))
	r := e.replica(t.TempDir())
	a := e.sync(r, "u1", "u2")
	e.sync(r, "u3")
	// A topic re-created under another name holds none of the events the
	// destination applied.
	empty := testenv.Name(t)
	cfg := e.producerConfig(t.TempDir())
	cfg.Topic = empty
	if err := publish.EnsureTopics(e.ctx, cfg.Config, e.kf); err != nil {
		t.Fatal(err)
	}
	_, err := e.rollback(r, a, empty)
	if !errors.Is(err, rollback.ErrHistoryIncomplete) {
		t.Fatalf("rollback against an empty topic: %v, want ErrHistoryIncomplete", err)
	}
	e.want("after the refused rollback", "u3")
}

func TestRollbackNeedsTheTopicToHoldTheHistoryAfterTheRun(t *testing.T) {
	// Kafka refuses DeleteRecords on a compacted topic: this one keeps
	// records for a time, as retention would.
	e := newEnvWith(t, testenv.Redis(t), false)
	r := e.replica(t.TempDir())
	a := e.sync(r, "u1", "u2")
	e.sync(r, "u3")
	testenv.DeleteRecords(t, e.ctx, e.kf.Brokers(), e.topic, 3)
	_, err := e.rollback(r, a, e.topic)
	if !errors.Is(err, rollback.ErrHistoryIncomplete) || !strings.Contains(err.Error(), "removed by compaction or retention") {
		t.Fatalf("rollback after the records were deleted: %v, want ErrHistoryIncomplete", err)
	}
	e.want("after the refused rollback", "u3")

	// History removed before a run does not matter to it: B's events (in
	// every partition) and C's are all there.
	var many []string
	for i := range 30 {
		many = append(many, fmt.Sprintf("m%02d", i))
	}
	b := e.sync(r, many...)
	e.sync(r, "u3", "m00")
	if _, err := e.rollback(r, b, e.topic); err != nil {
		t.Fatal(err)
	}
	e.want("rolled back to B, whose history is whole", many...)
}

func TestHandoverRepublishesEveryMemberAndRollbackSeesThroughIt(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			e := newEnv(t, rb)
			r := e.replica(t.TempDir())
			a := e.sync(r, "u1", "u2", "u3")
			e.sync(r, "u2", "u4")
			m := e.mapping()
			res, err := r.RunSource(e.ctx, m, nil, func(_ context.Context, d catalog.Destination, c redis.UniversalClient) (source.Source, error) {
				return &generation.Handover{Segment: snapshot.SegmentID{Env: d.Environment, Segment: m.Segment, Generation: 1, ContextKind: m.ContextKind},
					From: 0, Destination: segmentstore.Rebuilder{Client: c, Prefix: d.Prefix(), Wait: 30 * time.Second}}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			e.settle()
			if s := res[0].Summary; s.Added != 2 || s.Removed != 0 || s.Source != generation.SourceKind {
				t.Errorf("handover: +%d -%d from %q, want +2 -0 from handover", s.Added, s.Removed, s.Source)
			}
			e.want("after the handover", "u2", "u4")
			last := map[string]schema.Event{}
			for _, msg := range testenv.ReadTopic(t, e.kf.Brokers(), e.topic, 3) {
				ev, err := schema.Decode(&msg)
				if err != nil {
					t.Fatal(err)
				}
				last[ev.ContextKey] = ev
			}
			for _, k := range []string{"u2", "u4"} {
				if ev := last[k]; ev.Op != schema.OpAdd || ev.Source != generation.SourceKind {
					t.Errorf("the last event of %s is %s from %q, want the handover's add", k, ev.Op, ev.Source)
				}
			}
			if _, err := e.rollback(r, a, e.topic); err != nil {
				t.Fatal(err)
			}
			e.want("rolled back to A across the handover", "u1", "u2", "u3")
		})
	}
}
