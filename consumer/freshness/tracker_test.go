package freshness

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// storeSync writes synchronized_on of one prefix through the layout's
// writer, as the consumer's adapter does for all of its prefixes.
type storeSync struct {
	w      *segmentstore.Writer
	prefix string
}

func (s storeSync) SetSynchronizedOn(ctx context.Context, t time.Time) error {
	return s.w.SetSynchronizedOn(ctx, []string{s.prefix}, t)
}

// newTracker returns a Tracker over kc writing prefix's synchronized_on to
// rdb, on clock now.
func newTracker(t *testing.T, kc Offsets, rdb redis.UniversalClient, prefix string, now func() time.Time) *Tracker {
	t.Helper()
	tr, err := New(Config{Topic: "membership", GroupID: "group", SyncInterval: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Deps{Offsets: kc, SyncTime: storeSync{segmentstore.NewWriter(rdb, now), prefix}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fakeOffsets is an Offsets serving fixed offsets of one topic.
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

// TestCheckWatermarks drives Check through sequences of checks with
// scripted offsets and clock: synchronized_on moves to the newest watermark
// (check start) whose listed end offsets the group has since committed.
func TestCheckWatermarks(t *testing.T) {
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
			testenv.DropPrefix(t, rdb, prefix)
			ctx := testenv.Context(t, 30*time.Second)
			fake := &fakeOffsets{topic: "membership"}
			var clock time.Time
			c := newTracker(t, fake, rdb, prefix, func() time.Time { return clock })
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
				c.Check(ctx)
				if got := c.SyncErrors(); got != errs {
					t.Errorf("check %d: %d sync errors, want %d", i+1, got, errs)
				}
				if lag := c.Lag(); !ck.kafkaDown && !ck.pastEnd && lag != ck.wantLag {
					t.Errorf("check %d: lag %d, want lag %d", i+1, lag, ck.wantLag)
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

func TestConfigValidate(t *testing.T) {
	valid := Config{Topic: "t", GroupID: "g", SyncInterval: time.Second}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"minimal config", func(*Config) {}, ""},
		{"retry timeout set", func(c *Config) { c.RetryTimeout = time.Minute }, ""},
		{"no topic", func(c *Config) { c.Topic = "" }, "--topic: required, want the membership topic"},
		{"no group", func(c *Config) { c.GroupID = "" }, "--group-id: required, want the consumer group"},
		{"zero sync interval", func(c *Config) { c.SyncInterval = 0 }, `--sync-interval="0s": want a positive duration`},
		{"negative retry timeout", func(c *Config) { c.RetryTimeout = -time.Second }, `--retry-timeout="-1s": want a positive duration`},
		{"every problem reported", func(c *Config) { *c = Config{} },
			"--topic: required, want the membership topic\n--group-id: required, want the consumer group\n" + `--sync-interval="0s": want a positive duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.modify(&c)
			err := c.Validate()
			if got := testenv.ErrText(err); got != tc.want {
				t.Fatalf("%s = %q\nwant %q", `c.Validate()`, got, tc.want)
			}
		})
	}
	if _, err := New(valid, Deps{}); err == nil {
		t.Error("New without Offsets and SyncTime succeeded")
	}
}

// TestHealth: healthy before Run (the consumer's preflight, with retries of
// its own, runs first: a liveness probe must not restart it), just after
// Run started and after a recent check; unhealthy when no check has
// succeeded within 3 intervals plus a tenth of the retry timeout of Run's
// start or of the last success.
func TestHealth(t *testing.T) {
	rdb := testenv.Redis(t).Client
	prefix := testenv.Name(t)
	testenv.DropPrefix(t, rdb, prefix)
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeOffsets{topic: "membership", ends: map[int]int64{0: 0}}
	c := newTracker(t, fake, rdb, prefix, func() time.Time { return clock })
	clock = clock.Add(time.Hour)
	if err := c.Health(); err != nil {
		t.Errorf("Health an hour after New, before Run = %v", err)
	}
	stopped, cancel := context.WithCancel(testenv.Context(t, 10*time.Second))
	cancel()
	if err := c.Run(stopped); err != nil { // starts the health clock, checks nothing
		t.Fatal(err)
	}
	if err := c.Health(); err != nil {
		t.Errorf("Health just after start = %v", err)
	}
	clock = clock.Add(3*time.Second + time.Millisecond) // limit: 3 x 1s
	if err := c.Health(); err == nil || err.Error() != "no successful lag check since start" {
		t.Errorf("Health with no check = %v", err)
	}
	c.Check(testenv.Context(t, 10*time.Second))
	if err := c.Health(); err != nil {
		t.Errorf("Health after a check = %v", err)
	}
	clock = clock.Add(time.Hour)
	if err := c.Health(); err == nil || err.Error() != "last successful lag check 1h0m0s ago" {
		t.Errorf("Health with an hour-old check = %v", err)
	}
}

// TestWaitCaughtUp: the barrier returns once a check after the call has
// reached a watermark, not before; Committed asks for a check once the
// pending watermark may be reached; once Run has returned, WaitCaughtUp
// returns ErrStopped.
func TestWaitCaughtUp(t *testing.T) {
	rdb := testenv.Redis(t).Client
	prefix := testenv.Name(t)
	testenv.DropPrefix(t, rdb, prefix)
	ctx := testenv.Context(t, 30*time.Second)
	fake := &lockedOffsets{f: fakeOffsets{topic: "membership", ends: map[int]int64{0: 10}, committed: map[int]int64{0: 5}}}
	c, err := New(Config{Topic: "membership", GroupID: "group", SyncInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Deps{Offsets: fake, SyncTime: storeSync{segmentstore.NewWriter(rdb, time.Now), prefix}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()

	// Lagging: the wait's own check (kicked) does not release it.
	short, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = c.WaitCaughtUp(short)
	scancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCaughtUp while lagging = %v, want the deadline", err)
	}
	if c.Lag() != 5 {
		t.Errorf("lag %d, want 5", c.Lag())
	}
	// The group commits the rest. The apply path's reports ask for a check
	// (the ticker is an hour away) only once they may cover the 5 messages
	// the pending watermark waits for.
	fake.set(map[int]int64{0: 10})
	c.Committed(4)
	time.Sleep(200 * time.Millisecond) // a check, were one asked for, would run now
	if !c.LastSync().IsZero() {
		t.Fatalf("synchronized_on written at %v before the apply path reported enough commits", c.LastSync())
	}
	c.Committed(1)
	testenv.Eventually(t, 10*time.Second, "a check after the apply path reported the watermark's messages", func() bool { return !c.LastSync().IsZero() })
	if _, ok, err := segmentstore.SyncTime(ctx, rdb, prefix); !ok || err != nil {
		t.Errorf("synchronized_on not written (%v)", err)
	}
	if err := c.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp after catching up = %v", err)
	}
	if err := c.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v", err)
	}
	runErr <- nil // for the deferred stop
	if err := c.WaitCaughtUp(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("WaitCaughtUp after Run returned = %v, want ErrStopped", err)
	}
}

// lockedOffsets lets a test change the committed offsets while Run checks.
type lockedOffsets struct {
	mu sync.Mutex
	f  fakeOffsets
}

func (l *lockedOffsets) set(committed map[int]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.committed = committed
}

func (l *lockedOffsets) Metadata(ctx context.Context, req *kafka.MetadataRequest) (*kafka.MetadataResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Metadata(ctx, req)
}

func (l *lockedOffsets) ListOffsets(ctx context.Context, req *kafka.ListOffsetsRequest) (*kafka.ListOffsetsResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.ListOffsets(ctx, req)
}

func (l *lockedOffsets) OffsetFetch(ctx context.Context, req *kafka.OffsetFetchRequest) (*kafka.OffsetFetchResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.OffsetFetch(ctx, req)
}

// TestAliveThroughAnOutage: while Kafka (or Redis) cannot be reached,
// checks fail and Health says so, but Alive does not: the checks still
// end. Alive fails once no check has ended for three intervals plus a
// check's bound.
func TestAliveThroughAnOutage(t *testing.T) {
	rdb := testenv.Redis(t).Client
	prefix := testenv.Name(t)
	testenv.DropPrefix(t, rdb, prefix)
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fake := &fakeOffsets{topic: "membership", ends: map[int]int64{0: 0}, err: errors.New("broker unreachable")}
	c := newTracker(t, fake, rdb, prefix, func() time.Time { return clock })
	if err := c.Alive(); err != nil {
		t.Errorf("Alive before Run = %v", err)
	}
	stopped, cancel := context.WithCancel(testenv.Context(t, 10*time.Second))
	cancel()
	if err := c.Run(stopped); err != nil {
		t.Fatal(err)
	}
	for range 5 { // 5 minutes of outage, a check a minute
		clock = clock.Add(time.Minute)
		c.Check(testenv.Context(t, 10*time.Second))
		if err := c.Health(); err == nil {
			t.Fatal("Health during the outage = nil, want the failing checks reported")
		}
		if err := c.Alive(); err != nil {
			t.Fatalf("Alive during the outage = %v, want nil: the checks still end", err)
		}
	}
	clock = clock.Add(3*time.Second + 10*time.Second) // 3 intervals and a check's bound
	if err := c.Alive(); err != nil {
		t.Fatalf("Alive at the limit = %v", err)
	}
	clock = clock.Add(time.Millisecond)
	if err := c.Alive(); err == nil || err.Error() != "no lag check has ended for 13.001s" {
		t.Fatalf("Alive with no check ended past the limit = %v", err)
	}
}
