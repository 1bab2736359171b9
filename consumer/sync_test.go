package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// fakeOffsets is an offsetsClient serving fixed offsets of one topic.
type fakeOffsets struct {
	topic     string
	first     map[int]int64 // default 0
	ends      map[int]int64 // the partitions
	committed map[int]int64 // absent: nothing committed
	err       error         // returned by ListOffsets when set
}

func (f *fakeOffsets) Metadata(_ context.Context, _ *kafka.MetadataRequest) (*kafka.MetadataResponse, error) {
	t := kafka.Topic{Name: f.topic}
	for p := range f.ends {
		t.Partitions = append(t.Partitions, kafka.Partition{Topic: f.topic, ID: p})
	}
	return &kafka.MetadataResponse{Topics: []kafka.Topic{t}}, nil
}

func (f *fakeOffsets) ListOffsets(_ context.Context, _ *kafka.ListOffsetsRequest) (*kafka.ListOffsetsResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []kafka.PartitionOffsets
	for p, end := range f.ends {
		out = append(out, kafka.PartitionOffsets{Partition: p, FirstOffset: f.first[p], LastOffset: end})
	}
	return &kafka.ListOffsetsResponse{Topics: map[string][]kafka.PartitionOffsets{f.topic: out}}, nil
}

func (f *fakeOffsets) OffsetFetch(_ context.Context, _ *kafka.OffsetFetchRequest) (*kafka.OffsetFetchResponse, error) {
	var out []kafka.OffsetFetchPartition
	for p, c := range f.committed {
		out = append(out, kafka.OffsetFetchPartition{Partition: p, CommittedOffset: c})
	}
	return &kafka.OffsetFetchResponse{Topics: map[string][]kafka.OffsetFetchPartition{f.topic: out}}, nil
}

// TestSyncOnceWatermarks drives syncOnce through sequences of checks with
// scripted offsets and clock: synchronized_on moves to the newest watermark
// (check start) whose listed end offsets the group has since committed.
func TestSyncOnceWatermarks(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	type check struct {
		now             int // seconds after base
		first           map[int]int64
		ends, committed map[int]int64
		kafkaDown       bool
		pastEnd         bool  // committed beyond the log's end: a sync error
		wantLag         int64 // ignored when kafkaDown or pastEnd
		wantSync        int   // seconds after base of synchronized_on; -1: not written yet
	}
	for _, tc := range []struct {
		name   string
		checks []check
	}{
		{"a check finding no lag writes its own start", []check{
			{now: 1, ends: map[int]int64{0: 5, 1: 0}, committed: map[int]int64{0: 5}, wantLag: 0, wantSync: 1},
			{now: 2, ends: map[int]int64{0: 5, 1: 0}, committed: map[int]int64{0: 5}, wantLag: 0, wantSync: 2},
		}},
		{"steady trickle: every check reaches the previous one's watermark", []check{
			{now: 1, ends: map[int]int64{0: 10, 1: 10}, committed: map[int]int64{0: 8, 1: 10}, wantLag: 2, wantSync: -1},
			{now: 2, ends: map[int]int64{0: 20, 1: 12}, committed: map[int]int64{0: 18, 1: 10}, wantLag: 4, wantSync: 1},
			{now: 3, ends: map[int]int64{0: 30, 1: 15}, committed: map[int]int64{0: 20, 1: 14}, wantLag: 11, wantSync: 2},
			{now: 4, ends: map[int]int64{0: 31, 1: 16}, committed: map[int]int64{0: 30, 1: 15}, wantLag: 2, wantSync: 3},
		}},
		{"a watermark not reached is kept, not replaced by newer ones", []check{
			{now: 1, ends: map[int]int64{0: 10}, committed: map[int]int64{0: 5}, wantLag: 5, wantSync: -1},
			{now: 2, ends: map[int]int64{0: 20}, committed: map[int]int64{0: 9}, wantLag: 11, wantSync: -1},
			{now: 3, ends: map[int]int64{0: 30}, committed: map[int]int64{0: 10}, wantLag: 20, wantSync: 1},
			{now: 4, ends: map[int]int64{0: 40}, committed: map[int]int64{0: 29}, wantLag: 11, wantSync: 1},
			{now: 5, ends: map[int]int64{0: 40}, committed: map[int]int64{0: 30}, wantLag: 10, wantSync: 3},
		}},
		{"one partition behind its recorded end holds the watermark", []check{
			{now: 1, ends: map[int]int64{0: 10, 1: 10}, committed: map[int]int64{0: 5, 1: 5}, wantLag: 10, wantSync: -1},
			{now: 2, ends: map[int]int64{0: 50, 1: 10}, committed: map[int]int64{0: 50, 1: 9}, wantLag: 1, wantSync: -1},
		}},
		{"a group that never committed reaches empty partitions only", []check{
			{now: 1, ends: map[int]int64{0: 3, 1: 0}, wantLag: 3, wantSync: -1},
			{now: 2, ends: map[int]int64{0: 4, 1: 0}, committed: map[int]int64{0: 3}, wantLag: 1, wantSync: 1},
		}},
		{"messages deleted by retention below the watermark do not hold it", []check{
			{now: 1, ends: map[int]int64{0: 10}, committed: map[int]int64{0: 2}, wantLag: 8, wantSync: -1},
			{now: 2, first: map[int]int64{0: 10}, ends: map[int]int64{0: 12}, committed: map[int]int64{0: 2}, wantLag: 2, wantSync: 1},
		}},
		{"partitions added: the pending watermark is replaced", []check{
			{now: 1, ends: map[int]int64{0: 10}, committed: map[int]int64{0: 5}, wantLag: 5, wantSync: -1},
			{now: 2, ends: map[int]int64{0: 10, 1: 4}, committed: map[int]int64{0: 10}, wantLag: 4, wantSync: -1},
			{now: 3, ends: map[int]int64{0: 11, 1: 5}, committed: map[int]int64{0: 10, 1: 4}, wantLag: 2, wantSync: 2},
		}},
		{"a failed check keeps the pending watermark", []check{
			{now: 1, ends: map[int]int64{0: 10}, committed: map[int]int64{0: 5}, wantLag: 5, wantSync: -1},
			{now: 2, kafkaDown: true, wantSync: -1},
			{now: 3, ends: map[int]int64{0: 20}, committed: map[int]int64{0: 10}, wantLag: 10, wantSync: 1},
		}},
		{"a commit past the end of the log (topic re-created) stops synchronized_on", []check{
			{now: 1, ends: map[int]int64{0: 5}, committed: map[int]int64{0: 5}, wantLag: 0, wantSync: 1},
			{now: 2, ends: map[int]int64{0: 3}, committed: map[int]int64{0: 5}, pastEnd: true, wantSync: 1},
			{now: 3, ends: map[int]int64{0: 3}, committed: map[int]int64{0: 5}, pastEnd: true, wantSync: 1},
		}},
		{"a clock stepping back never moves synchronized_on backwards", []check{
			{now: 10, ends: map[int]int64{0: 5}, committed: map[int]int64{0: 5}, wantLag: 0, wantSync: 10},
			{now: 4, ends: map[int]int64{0: 6}, committed: map[int]int64{0: 6}, wantLag: 0, wantSync: 10},
			{now: 11, ends: map[int]int64{0: 6}, committed: map[int]int64{0: 6}, wantLag: 0, wantSync: 11},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := testenv.Redis(t).Client
			prefix := testenv.Name(t)
			dropPrefix(t, rdb, prefix)
			ctx := testenv.Context(t, 30*time.Second)
			c, err := New(Config{Brokers: []string{"127.0.0.1:9"}, Topic: "membership", RedisPrefix: prefix, Logger: testLogger(t)}, rdb)
			if err != nil {
				t.Fatal(err)
			}
			fake := &fakeOffsets{topic: "membership"}
			c.kc = fake
			var clock time.Time
			c.now = func() time.Time { return clock }
			var errs int64
			for i, ck := range tc.checks {
				clock = at(ck.now)
				fake.first, fake.ends, fake.committed, fake.err = ck.first, ck.ends, ck.committed, nil
				if ck.kafkaDown {
					fake.ends = map[int]int64{0: 0}
					fake.err = errors.New("broker unavailable")
					errs++
				}
				if ck.pastEnd {
					errs++
				}
				c.syncOnce(ctx)
				s := c.Stats()
				if s.SyncErrors != errs {
					t.Errorf("check %d: %d sync errors, want %d", i+1, s.SyncErrors, errs)
				}
				if !ck.kafkaDown && !ck.pastEnd && (s.Lag != ck.wantLag || s.CaughtUp != (ck.wantLag == 0)) {
					t.Errorf("check %d: lag %d caught up %v, want lag %d", i+1, s.Lag, s.CaughtUp, ck.wantLag)
				}
				got, ok, err := segmentstore.SyncTime(ctx, rdb, prefix)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case ck.wantSync < 0 && ok:
					t.Errorf("check %d: synchronized_on = %v, want none", i+1, got.UTC())
				case ck.wantSync >= 0 && (!ok || !got.Equal(at(ck.wantSync))):
					t.Errorf("check %d: synchronized_on = %v (set %v), want %v", i+1, got.UTC(), ok, at(ck.wantSync))
				}
			}
		})
	}
}

// slowApply is a go-redis hook delaying apply pipelines (those carrying
// SADD or SREM) by d: injected latency, not synchronisation.
type slowApply time.Duration

func (slowApply) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (slowApply) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (d slowApply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Name() == "sadd" || c.Name() == "srem" }) {
			t := time.NewTimer(time.Duration(d))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmds)
	}
}

// acked is an event and when the broker acknowledged it: it was appended
// to the log before that instant.
type acked struct {
	ev  schema.Event
	ack time.Time
}

// TestSynchronizedOnAdvancesUnderSteadyTrickle is the regression test of
// synchronized_on starvation: a steady trickle of events keeps lag above 0
// at most instants, which used to keep synchronized_on from ever being
// written, and SDKs reported STALE although the consumer kept up. It must
// advance while the trickle runs, and every value written must be true:
// each event acknowledged before it is in Redis when the value is read.
func TestSynchronizedOnAdvancesUnderSteadyTrickle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, real bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, real, 3)
		cfg := testConfig(t, ke)
		cfg.SyncInterval = 150 * time.Millisecond
		// Every apply takes a realistic 20ms (a loaded or distant Redis), so
		// events keep arriving while a batch is applied and the check after
		// its commit, like any other, rarely finds the lag at 0.
		rdb.AddHook(slowApply(20 * time.Millisecond))
		c := start(t, cfg, rdb)
		c.waitCaughtUp(t) // an empty topic: synchronized_on is written once
		ctx := testenv.Context(t, 60*time.Second)

		const trickle = 3 * time.Second
		var (
			mu     sync.Mutex
			events []acked // in acknowledgement order
			wg     sync.WaitGroup
		)
		// Several producers, each waiting for its acknowledgement.
		const producers = 4
		produced := make(chan struct{})
		trickleStart := time.Now()
		var pwg sync.WaitGroup
		for p := range producers {
			pwg.Go(func() {
				w := &kafka.Writer{
					Addr: kafka.TCP(ke.brokers...), Topic: ke.topic, Balancer: &kafka.Hash{},
					RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
				}
				defer func() {
					if err := w.Close(); err != nil {
						t.Errorf("close writer: %v", err)
					}
				}()
				tick := time.NewTicker(8 * time.Millisecond) // a few hundred events a second in all
				defer tick.Stop()
				for i := 0; time.Since(trickleStart) < trickle; i++ {
					select {
					case <-ctx.Done():
						t.Errorf("trickle: %v", ctx.Err())
						return
					case <-tick.C:
					}
					e := ev("staging", "trickle", 1, fmt.Sprintf("user-%d-%d", p, i), schema.OpAdd, uint64(i+1))
					if err := w.WriteMessages(ctx, e.Message()); err != nil {
						t.Errorf("trickle: produce event %d: %v", i, err)
						return
					}
					ack := time.Now()
					mu.Lock()
					// Appended under the lock in acknowledgement order:
					// times from the monotonic clock never decrease.
					events = append(events, acked{ev: e, ack: ack})
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			pwg.Wait()
			close(produced)
		})
		defer wg.Wait()

		// Read synchronized_on as an SDK would, and check each new value.
		var (
			values   []time.Time // distinct values read during the trickle
			last     time.Time
			verified int // events[:verified] were found in Redis
		)
		check := func(syncOn time.Time) {
			mu.Lock()
			due := slices.Clone(events[verified:])
			mu.Unlock()
			n, _ := slices.BinarySearchFunc(due, syncOn, func(a acked, t time.Time) int { return a.ack.Compare(t) })
			due = due[:n] // acknowledged strictly before syncOn
			pipe := rdb.Pipeline()
			cmds := make([]*redis.BoolCmd, len(due))
			for i := range due {
				cmds[i] = pipe.SIsMember(ctx, bigsegments.IncludeKey(cfg.RedisPrefix, due[i].ev.ContextKey), due[i].ev.Ref())
			}
			if _, err := pipe.Exec(ctx); err != nil && len(due) > 0 {
				t.Fatalf("read memberships: %v", err)
			}
			for i, cmd := range cmds {
				if !cmd.Val() {
					t.Fatalf("synchronized_on %s, but %s (acknowledged at %s, %v before) is not in Redis",
						syncOn.UTC().Format(time.RFC3339Nano), due[i].ev.ContextKey, due[i].ack.UTC().Format(time.RFC3339Nano), syncOn.Sub(due[i].ack))
				}
			}
			verified += len(due)
		}
		poll := time.NewTicker(10 * time.Millisecond)
		defer poll.Stop()
		for trickling := true; trickling; {
			select {
			case <-produced:
				trickling = false
			case <-poll.C:
			}
			got, ok, err := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix)
			switch {
			case err != nil:
				t.Fatal(err)
			case !ok:
				t.Fatal("synchronized_on missing")
			case got.Before(last):
				t.Fatalf("synchronized_on moved backwards from %v to %v", last, got)
			case got.After(time.Now()):
				t.Fatalf("synchronized_on %v is in the future", got)
			case got.After(last):
				check(got)
				last = got
				if got.After(trickleStart) {
					values = append(values, got)
				}
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		mu.Lock()
		n := len(events)
		mu.Unlock()
		// With a 150ms interval over 3s, a healthy consumer writes about 20
		// values; starvation writes none.
		if len(values) < 3 {
			t.Errorf("synchronized_on advanced %d times during a %v trickle of %d events (stats %+v), want at least 3",
				len(values), trickle, n, c.Stats())
		}
		t.Logf("%d events, synchronized_on advanced %d times, final lag behind the last read: %v", n, len(values), time.Since(last))

		// Once the trickle stops, everything is applied and vouched for.
		c.waitCaughtUp(t)
		final, _, err := segmentstore.SyncTime(ctx, rdb, cfg.RedisPrefix)
		if err != nil {
			t.Fatal(err)
		}
		check(final)
		if verified != n {
			t.Errorf("after catching up, synchronized_on %v vouches for %d of %d events", final, verified, n)
		}
	})
}
