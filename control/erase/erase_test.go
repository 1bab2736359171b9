package erase

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/control/catalog/catalogtest"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/mappingrun/mappingruntest"
	"github.com/cohortsync/cohortsync/producer/source"
)

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "zero takes the defaults", Change: func(*Config) {}},
		{Name: "a negative wait", Change: func(c *Config) { c.LockWait = -time.Second }, Want: `--lock-wait="-1s": want a duration >= 0 (0 for the default 2m0s)`},
		{Name: "a busy poll", Change: func(c *Config) { c.LockPoll = time.Millisecond }, Want: `--lock-poll="1ms": want a duration of at least 10ms`},
	})
}

// world is a destination on the test's Redis, a CSV mapping (beta-users)
// and a list segment (vips) in it, a consumer applying the topic, and an
// Eraser.
type world struct {
	t       *testing.T
	ctx     context.Context
	rdb     segmentstore.Client
	prefix  string
	cohort  string
	cat     *catalogtest.Catalog
	runner  *mappingrun.Runner
	editor  *segments.Editor
	eraser  *Eraser
	locker  *segmentlease.Locker
	history *runstore.Store
}

func newWorld(t *testing.T, rb testenv.RedisBackend) *world {
	cw := mappingruntest.NewCSVWorld(t, rb, "beta", "beta-users")
	w := &world{t: t, ctx: cw.Ctx, rdb: rb.Client, prefix: cw.Prefix, cohort: cw.Cohort, cat: cw.Catalog}
	wr, pcfg := cw.Writers, cw.Producer
	var err error
	w.runner, err = mappingrun.New(mappingrun.Config{Producer: pcfg, Lease: wr.Lease, RebuildWait: 30 * time.Second}, cw.Kafka, rb.Client, w.cat, cw.Connect, nil, cw.Log)
	must(t, err)
	w.locker = wr.Locker
	receipts, err := NewStore(rb.Client, wr.Lease)
	must(t, err)
	w.history, err = runstore.New(rb.Client, runstore.Config{Prefix: cw.Control})
	must(t, err)
	w.editor = &segments.Editor{Catalog: w.cat, Connect: cw.Connect, Locker: wr.Locker, Seq: wr.Seq, Streams: wr.Streams, Importer: w.runner,
		History: w.history, Topic: pcfg.Topic, Log: cw.Log}
	kc := cw.Kafka.Client(10 * time.Second)
	w.eraser = &Eraser{Catalog: w.cat, Connect: cw.Connect, Locker: wr.Locker, Seq: wr.Seq, Streams: wr.Streams, Topic: pcfg.Topic,
		Ends:   func(ctx context.Context) (map[int]int64, error) { return freshness.Ends(ctx, kc, pcfg.Topic) },
		Erased: wr.Erased, Receipts: receipts, History: w.history, Log: cw.Log, Config: Config{LockPoll: 20 * time.Millisecond}}
	cw.Consume(t, rb.Client)
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sync runs the beta mapping with members.
func (w *world) sync(members ...string) producer.Summary {
	w.t.Helper()
	must(w.t, os.WriteFile(w.cohort, []byte("user_id\n"+strings.Join(members, "\n")+"\n"), 0o644))
	res, err := w.runner.Run(w.ctx, w.cat.Mappings[0])
	must(w.t, err)
	return res[0].Summary
}

func (w *world) waitMembers(segment string, want ...string) {
	w.t.Helper()
	testenv.Eventually(w.t, time.Minute, segment+" holds "+strings.Join(want, ","), func() bool {
		var got []string
		must(w.t, segmentstore.Members(w.ctx, w.rdb, w.prefix, bigsegments.Ref(segment, 1), func(k string) error { got = append(got, k); return nil }))
		slices.Sort(got)
		// And indexed: the consumer's pipeline writes the index after the
		// members (another client may read in between).
		var indexed bool
		must(w.t, segmentstore.Segments(w.ctx, w.rdb, w.prefix, func(ref string) error {
			indexed = indexed || ref == bigsegments.Ref(segment, 1)
			return nil
		}))
		return slices.Equal(got, want) && indexed
	})
}

// TestErase: an erase removes the key from every segment through the
// event path (synced and list segments alike), returns and stores a
// receipt with each event's sequence number and a barrier, and sticks:
// the next sync of the synced segment excludes the key as "erased".
func TestErase(t *testing.T) {
	testenv.ForEachRedis(t, 3*time.Minute, func(t *testing.T, _ context.Context, rb testenv.RedisBackend, _ string) {
		w := newWorld(t, rb)
		w.sync("alice", "bob")
		_, err := w.editor.Add(w.ctx, segments.Target{Segment: "vips", Destination: "production"}, []string{"alice", "carol"})
		must(t, err)
		w.waitMembers("beta-users", "alice", "bob")
		w.waitMembers("vips", "alice", "carol")

		rec, err := w.eraser.Erase(w.ctx, "production", "alice")
		must(t, err)
		if rec.ID == "" || rec.Environment != "production" || rec.ContextKey != "alice" || !rec.Listed || rec.Barrier == nil ||
			rec.Published.IsZero() || rec.Error != "" || !slices.Equal(rec.RemovedFrom(), []string{"beta-users.g1", "vips.g1"}) {
			t.Fatalf("receipt %+v", rec)
		}
		w.waitMembers("beta-users", "bob")
		w.waitMembers("vips", "carol")
		for _, r := range rec.Segments { // applied in order, after the segment's earlier events
			info, err := segmentstore.Info(w.ctx, w.rdb, w.prefix, r.Ref)
			if err != nil || info.LastSeq != r.Seq || info.LastRun != rec.ID {
				t.Errorf("%s: last applied %d of %s (%v), want the erase's seq %d", r.Ref, info.LastSeq, info.LastRun, err, r.Seq)
			}
		}
		stored, err := w.eraser.Receipts.Get(w.ctx, rec.ID)
		if err != nil || stored.ID != rec.ID || len(stored.Segments) != 2 || stored.Segments[0].Seq != rec.Segments[0].Seq {
			t.Errorf("stored receipt %+v, %v; want the returned one", stored, err)
		}
		shown, err := w.eraser.Show(w.ctx, rec.ID, w.history)
		if err != nil || len(shown.StillIncluded) != 0 || !shown.Listed || shown.RunStatus == "" || shown.Unreadable != "" {
			t.Errorf("Show = %+v, %v; want applied, listed, with its run", shown, err)
		}
		l := &membership.Lookup{Catalog: w.cat, Connect: catalogtest.Connector(rb.Client)}
		if res, err := l.Lookup(w.ctx, membership.Query{Env: "production", ContextKey: "alice"}); err != nil || res.In() {
			t.Errorf("lookup after the erase = %+v, %v; want in no segment", res, err)
		}

		// The cohort still has alice: the next sync leaves her out.
		sum := w.sync("alice", "bob", "dave")
		if sum.Excluded[source.ReasonErased] != 1 || sum.Added != 1 {
			t.Errorf("the sync after the erase: %+v; want alice excluded as erased and dave added", sum)
		}
		w.waitMembers("beta-users", "bob", "dave")

		// Forgotten, the key may come back.
		if ok, err := w.eraser.Forget(w.ctx, "production", "alice"); err != nil || !ok {
			t.Fatalf("Forget = %v, %v", ok, err)
		}
		w.sync("alice", "bob", "dave")
		w.waitMembers("beta-users", "alice", "bob", "dave")

		if _, err := w.eraser.Receipts.Get(w.ctx, "20260101T000000Z-00000000"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of an unknown receipt = %v, want ErrNotFound", err)
		}
		if _, err := w.eraser.Erase(w.ctx, "nowhere", "alice"); !errors.Is(err, membership.ErrUnknownEnvironment) {
			t.Errorf("Erase in an unknown environment = %v", err)
		}
	})
}

// TestEraseWaitsForARun: an erase waits while a run holds a segment's
// lease, and gives up after LockWait with a receipt saying how far it got.
func TestEraseWaitsForARun(t *testing.T) {
	w := newWorld(t, testenv.Redis(t))
	w.sync("alice")
	w.waitMembers("beta-users", "alice")
	id := snapshot.SegmentID{Env: "production", Segment: "beta-users", Generation: 1, ContextKind: "user"}
	lease, err := w.locker.Lock(w.ctx, id)
	must(t, err)
	go func() { time.Sleep(300 * time.Millisecond); _ = lease.Unlock() }()
	if rec, err := w.eraser.Erase(w.ctx, "production", "alice"); err != nil || len(rec.RemovedFrom()) != 1 {
		t.Fatalf("Erase while a run held the lease for 300ms = %+v, %v", rec, err)
	}
	w.waitMembers("beta-users")

	lease, err = w.locker.Lock(w.ctx, id)
	must(t, err)
	defer func() { _ = lease.Unlock() }()
	w.eraser.Config.LockWait = 200 * time.Millisecond
	rec, err := w.eraser.Erase(w.ctx, "production", "bob")
	if !errors.Is(err, snapshot.ErrLocked) || !strings.Contains(err.Error(), "a run held the segment for 200ms") || rec.Error == "" || !rec.Listed {
		t.Fatalf("Erase while a run holds the lease = %+v, %v", rec, err)
	}
	if stored, err := w.eraser.Receipts.Get(w.ctx, rec.ID); err != nil || stored.Error != rec.Error {
		t.Errorf("the partial receipt was not stored: %+v, %v", stored, err)
	}
}
