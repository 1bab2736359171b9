package consumer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// fakeCommitter records commits, as "partition@next offset" strings, sorted,
// one per call.
type fakeCommitter struct {
	commits []string
	err     error // returned by every call, if set
}

func (f *fakeCommitter) CommitOffsets(offsets map[string]map[int]int64) error {
	var parts []string
	for topic, ps := range offsets {
		for p, o := range ps {
			parts = append(parts, fmt.Sprintf("%s:%d@%d", topic, p, o))
		}
	}
	f.commits = append(f.commits, strings.Join(sorted(parts), " "))
	return f.err
}

// items makes a batch of decoded messages on one partition at the given
// offsets, adding context "user-<offset>".
func items(partition int, offsets ...int64) []item {
	out := make([]item, len(offsets))
	for i, o := range offsets {
		e := ev("staging", "seg", 1, fmt.Sprintf("user-%d", o), schema.OpAdd, uint64(o+1))
		m := e.Message()
		m.Topic, m.Partition, m.Offset = "membership", partition, o
		out[i] = item{msg: m}
		out[i].ev, out[i].err = schema.Decode(&m)
	}
	return out
}

// TestStaleRedeliveryIsDroppedAndNotCommitted covers the guard against a
// message redelivered within a generation (none is expected: each partition
// is read once per generation): it must be neither re-applied nor
// committed, which would move the group's offset backwards.
func TestStaleRedeliveryIsDroppedAndNotCommitted(t *testing.T) {
	rdb := testenv.Redis(t).Client
	cfg := Config{RedisPrefix: testenv.Name(t), Logger: testLogger(t)}
	c, err := New(cfg, rdb, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 10*time.Second)
	cm := &fakeCommitter{}
	dlq := &fakeWriter{}

	if _, err := c.process(ctx, ctx, c.streams[0], items(0, 0, 1, 2, 3, 4), cm, dlq); err != nil {
		t.Fatal(err)
	}
	if _, err := c.process(ctx, ctx, c.streams[0], append(items(0, 2, 3, 4, 5, 6), items(1, 0)...), cm, dlq); err != nil {
		t.Fatal(err)
	}
	if _, err := c.process(ctx, ctx, c.streams[0], items(0, 1, 6), cm, dlq); err != nil { // only stale
		t.Fatal(err)
	}
	// The next offsets to read are committed, under the consumer's topic.
	got, topic := cm.commits, c.cfg.Topic
	if want := []string{topic + ":0@5", topic + ":0@7 " + topic + ":1@1"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("commits %q, want %q (stale messages never committed)", got, want)
	}
	if s := c.Stats(); s.Stale != 5 || s.Applied != 8 || s.Batches != 2 {
		t.Errorf("stats = %+v, want 5 stale, 8 applied, 2 batches", s)
	}
	if len(dlq.calls) != 0 {
		t.Errorf("dead letters written: %v", dlq.calls)
	}
	info, err := segmentstore.Info(ctx, rdb, cfg.RedisPrefix, "seg.g1")
	if err != nil || info.Members != 7 {
		t.Errorf("segment info %+v %v, want 7 members", info, err)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestApplyStopsOnFatalRedisError: an error that would hit every event
// (here: the client is closed) stops the consumer rather than
// dead-lettering the stream: the applier turns the store's fatal errors
// into permanent ones for the retry loop. The store's own tests cover which
// errors are fatal.
func TestApplyStopsOnFatalRedisError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:9"})
	_ = rdb.Close()
	a := newApplier(time.Now, 1)
	e := ev("staging", "seg", 1, "k", schema.OpAdd, 1)
	r, err := a.apply(testenv.Context(t, 10*time.Second), staticRoutes(rdb, "p", nil).cur, []*schema.Event{&e}, 0)
	if !retry.IsPermanent(err) || len(r.failures)+len(r.unknown) != 0 || !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("apply = %+v, %v; want a permanent error: client is closed", r, err)
	}
}

// TestCommitAfterGenerationEnded: a commit refused because the group's
// generation is over leaves the batch applied but uncommitted and ends the
// generation's apply loop without an error (the partition's next owner
// applies the batch again); other commit errors are retried.
func TestCommitAfterGenerationEnded(t *testing.T) {
	rdb := testenv.Redis(t).Client
	for _, tc := range []struct {
		name      string
		err       error
		ended     bool
		committed bool
	}{
		{"committed", nil, false, true},
		{"rebalance in progress", kafka.RebalanceInProgress, true, false},
		{"illegal generation", fmt.Errorf("offset commit: %w", kafka.IllegalGeneration), true, false},
		{"unknown member", kafka.UnknownMemberId, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{RedisPrefix: testenv.Name(t), Logger: testLogger(t)}
			dropPrefix(t, rdb, cfg.RedisPrefix)
			c, err := New(cfg, rdb, kafkaxtest.Factory(t, "127.0.0.1:9"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := testenv.Context(t, 10*time.Second)
			cm := &fakeCommitter{err: tc.err}
			in := make(chan []item, 1)
			in <- items(0, 0, 1, 2)
			close(in)
			err = c.applyLoop(ctx, c.streams[0], in, make(chan []item, 2), cm, &fakeWriter{})
			if err != nil {
				t.Fatalf("applyLoop = %v, want nil", err)
			}
			if len(cm.commits) != 1 {
				t.Errorf("%d commit attempts, want 1 (a generation-ended error is not retried)", len(cm.commits))
			}
			if s := c.Stats(); (s.Applied == 3 && s.Batches == 1) != tc.committed {
				t.Errorf("stats = %+v, want the batch counted: %v", s, tc.committed)
			}
			info, err := segmentstore.Info(ctx, rdb, cfg.RedisPrefix, "seg.g1")
			if err != nil || info.Members != 3 {
				t.Errorf("segment info %+v %v, want 3 members: the batch is applied either way", info, err)
			}
		})
	}
}

// recordObserver records the reports of committed batches.
type recordObserver struct{ reports []BatchReport }

func (o *recordObserver) BatchCommitted(b BatchReport) { o.reports = append(o.reports, b) }

// TestObserverSeesCommittedBatches: the Observer hears of each committed
// batch, with its live messages and the produce time of its oldest one;
// a batch of stale redeliveries only commits nothing and reports nothing.
func TestObserverSeesCommittedBatches(t *testing.T) {
	rdb := testenv.Redis(t).Client
	obs := &recordObserver{}
	cfg := Config{RedisPrefix: testenv.Name(t), Logger: testLogger(t), Observer: obs}
	dropPrefix(t, rdb, cfg.RedisPrefix)
	c, err := New(cfg, rdb, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 10*time.Second)
	batch := items(0, 0, 1, 2)
	for i := range batch {
		batch[i].msg.Time = testTime.Add(time.Duration(3-i) * time.Second) // the last is the oldest
	}
	if _, err := c.process(ctx, ctx, c.streams[0], batch, &fakeCommitter{}, &fakeWriter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.process(ctx, ctx, c.streams[0], items(0, 1, 2), &fakeCommitter{}, &fakeWriter{}); err != nil { // only stale
		t.Fatal(err)
	}
	if len(obs.reports) != 1 {
		t.Fatalf("%d reports, want 1 (none for a batch that committed nothing): %+v", len(obs.reports), obs.reports)
	}
	r := obs.reports[0]
	if r.Messages != 3 || !r.OldestProduced.Equal(testTime.Add(time.Second)) || r.Took < 0 || r.Committed.IsZero() {
		t.Errorf("report %+v, want 3 messages, oldest produced at %v", r, testTime.Add(time.Second))
	}
}

// TestApplyInPipelinesMatchesOne: a batch written in several pipelines at
// once (split by context key) leaves Redis exactly as one pipeline does,
// and reports the same refused events at the same batch indexes, including
// a key that joins, leaves and joins again within the batch.
func TestApplyInPipelinesMatchesOne(t *testing.T) {
	testenv.ForEachRedis(t, 30*time.Second, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, base string) {
		var evs []*schema.Event
		for i := range 3 * minLaneChanges {
			op := schema.OpAdd
			if i%5 == 4 {
				op = schema.OpRemove
			}
			e := ev("staging", "seg"+strconv.Itoa(i%3), 1, "user-"+strconv.Itoa(i%1702), op, uint64(i+1))
			evs = append(evs, &e)
		}
		got := map[int][]int{}
		snaps := map[int]map[string]string{}
		for _, lanes := range []int{1, 3} {
			prefix := base + "-" + strconv.Itoa(lanes)
			dropPrefix(t, b.Client, prefix)
			// A foreign value at two include sets: their events are refused.
			for _, k := range []string{"user-7", "user-1000"} {
				if err := b.Client.Set(ctx, bigsegments.IncludeKey(prefix, k), "foreign", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			a := newApplier(time.Now, lanes)
			r, err := a.apply(ctx, staticRoutes(b.Client, prefix, nil).cur, evs, 0)
			if err != nil {
				t.Fatalf("pipelines=%d: apply: %v", lanes, err)
			}
			for _, f := range r.failures {
				got[lanes] = append(got[lanes], f.Index)
			}
			snap := snapshot(t, b.Client, prefix)
			for k, v := range snap { // compare across prefixes, without the time of the write
				delete(snap, k)
				v = lastApplied.ReplaceAllString(v, "")
				snap[strings.TrimPrefix(k, prefix)] = v
			}
			snaps[lanes] = snap
		}
		if len(got[1]) == 0 || !slices.Equal(got[1], got[3]) {
			t.Errorf("refused events: one pipeline %v, three %v; want the same, and some", got[1], got[3])
		}
		if d := diffSnapshots(snaps[1], snaps[3]); d != "" {
			t.Errorf("three pipelines left Redis otherwise than one:\n%s", d)
		}
	})
}

// TestSplitKeepsEachKeyInOneLaneInOrder pins what makes several pipelines
// safe: every change of a context key goes to the same lane, and a lane
// holds its changes in batch order. (Writing lanes concurrently makes a
// violation show in Redis only by chance, so the split is checked itself.)
func TestSplitKeepsEachKeyInOneLaneInOrder(t *testing.T) {
	a := newApplier(time.Now, 4)
	cb := &clientBatch{lanes: make([]lane, 4)}
	for i := range 5000 {
		cb.changes = append(cb.changes, segmentstore.Change{ContextKey: "user-" + strconv.Itoa(i%1703), Seq: uint64(i)})
	}
	a.split(cb)
	laneOf := map[string]int{}
	total := 0
	for n, l := range cb.lanes {
		if len(l.changes) == 0 {
			t.Errorf("lane %d is empty: the split does not spread keys", n)
		}
		total += len(l.changes)
		for j, ch := range l.changes {
			if prev, ok := laneOf[ch.ContextKey]; ok && prev != n {
				t.Fatalf("key %s in lanes %d and %d", ch.ContextKey, prev, n)
			}
			laneOf[ch.ContextKey] = n
			if cb.changes[l.idx[j]].Seq != ch.Seq || (j > 0 && l.idx[j] <= l.idx[j-1]) {
				t.Fatalf("lane %d change %d: index %d out of batch order or not the batch's change", n, j, l.idx[j])
			}
		}
	}
	if total != len(cb.changes) {
		t.Errorf("lanes hold %d changes, want %d", total, len(cb.changes))
	}
}

func TestDealPartitions(t *testing.T) {
	parts := func(ids ...int) []kafka.PartitionAssignment {
		as := make([]kafka.PartitionAssignment, len(ids))
		for i, id := range ids {
			as[i] = kafka.PartitionAssignment{ID: id, Offset: int64(100 + id)}
		}
		return as
	}
	for _, tc := range []struct {
		name     string
		assigned []kafka.PartitionAssignment
		n        int
		want     [][]kafka.PartitionAssignment
	}{
		{"nothing assigned makes no stream", nil, 4, [][]kafka.PartitionAssignment{}},
		{"one stream takes every partition", parts(2, 0, 1), 1, [][]kafka.PartitionAssignment{parts(0, 1, 2)}},
		{"fewer partitions than streams make one stream each", parts(5, 3), 4, [][]kafka.PartitionAssignment{parts(3), parts(5)}},
		{"partitions dealt in order", parts(11, 0, 5, 3, 8, 1), 4, [][]kafka.PartitionAssignment{parts(0, 8), parts(1, 11), parts(3), parts(5)}},
		{"twelve partitions to four streams, three each", parts(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 4,
			[][]kafka.PartitionAssignment{parts(0, 4, 8), parts(1, 5, 9), parts(2, 6, 10), parts(3, 7, 11)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.assigned)
			got := dealPartitions(in, tc.n)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("dealPartitions(%v, %d) = %v, want %v", tc.assigned, tc.n, got, tc.want)
			}
			if !reflect.DeepEqual(in, tc.assigned) {
				t.Errorf("dealPartitions reordered the generation's assignments: %v, was %v", in, tc.assigned)
			}
		})
	}
}
