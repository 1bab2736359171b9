package consumer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer/rewind"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// TestRedisDataLossIsNotReportedCurrent pins issue 11, item 1: after the
// destination's Redis lost everything (FLUSHALL, an empty replacement, a
// failover to an empty replica) under a running consumer, the consumer
// used to stamp big_segments_synchronized_on again within a sync interval,
// so SDKs read an empty store as current, and nothing was logged. Now the
// loss is detected (the store id it wrote is gone), synchronized_on is not
// written again, readiness fails naming the destination, Stats counts it,
// and a consumer started afterwards does not claim the store either (until
// the rebuild's last step deletes the lost mark); a second member of the
// group adopts the store id instead of seeing a loss.
func TestRedisDataLossIsNotReportedCurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 2)
		ke.produce(t, messages(ev("staging", "seg", 1, "alice", schema.OpAdd, 1), ev("staging", "seg", 1, "bob", schema.OpAdd, 2))...)
		cfg := testConfig(t, ke)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		ctx := testenv.Context(t, time.Minute)
		syncKey := bigsegments.SyncTimeKey(cfg.RedisPrefix)
		if rdb.Exists(ctx, bigsegments.StoreIDKey(cfg.RedisPrefix)).Val() != 1 {
			t.Fatal("no store id written by the consumer")
		}
		second := launch(t, mustNew(t, cfg, rdb, ke))
		second.waitCaughtUp(t)
		time.Sleep(5 * cfg.SyncInterval) // several stamps by both members
		for _, m := range []*running{c, second} {
			if err := m.Ready(); err != nil || m.Stats().StoresLost != 0 {
				t.Fatalf("before any loss: Ready %v, StoresLost %d", err, m.Stats().StoresLost)
			}
		}

		emptyPrefix(t, rdb, cfg.RedisPrefix) // every key of the destination gone
		// Each member checks at its own pace: the first to stamp finds it.
		var detector *running
		testenv.Eventually(t, 30*time.Second, "the loss detected", func() bool {
			for _, m := range []*running{c, second} {
				if m.Stats().StoresLost == 1 {
					detector = m
				}
			}
			return detector != nil
		})
		// A stamp racing the loss may land; the next check takes it back.
		testenv.Eventually(t, 10*time.Second, "synchronized_on taken back", func() bool { return rdb.Exists(ctx, syncKey).Val() == 0 })
		time.Sleep(5 * cfg.SyncInterval)
		if n := rdb.Exists(ctx, syncKey).Val(); n != 0 {
			t.Fatalf("big_segments_synchronized_on written again over the emptied store")
		}
		err := detector.Ready()
		if err == nil || !strings.Contains(err.Error(), "lost its data") || !strings.Contains(err.Error(), cfg.RedisPrefix) {
			t.Fatalf("Ready after the loss = %v, want it to name the prefix", err)
		}
		if err := detector.Health(); err != nil {
			t.Fatalf("Health after the loss = %v: a liveness probe would restart the process, which would forget the loss", err)
		}
		// New events are still applied (the destination is not abandoned),
		// but the store is still not claimed current.
		ke.produce(t, messages(ev("staging", "seg", 1, "carol", schema.OpAdd, 3))...)
		testenv.Eventually(t, 30*time.Second, "carol applied", func() bool {
			n, err := rdb.HLen(ctx, bigsegments.MembersKey(cfg.RedisPrefix, "seg.g1")).Result()
			return err == nil && n == 1
		})
		time.Sleep(5 * cfg.SyncInterval)
		if n := rdb.Exists(ctx, syncKey).Val(); n != 0 {
			t.Fatalf("big_segments_synchronized_on written after new events on the emptied store")
		}

		// Every member restarted: the loss is not forgotten.
		for _, m := range []*running{c, second} {
			if err := m.stop(); err != nil {
				t.Fatal(err)
			}
		}
		third := launch(t, mustNew(t, cfg, rdb, ke))
		third.waitCaughtUp(t)
		time.Sleep(5 * cfg.SyncInterval)
		if n := rdb.Exists(ctx, syncKey).Val(); n != 0 || third.Stats().StoresLost != 1 {
			t.Fatalf("a consumer started after the loss marked the store current (StoresLost %d)", third.Stats().StoresLost)
		}
		// The rebuild (README, "Redis lost its data"): the group rewound
		// once its consumers are stopped, the lost mark deleted; the next
		// consumer replays the topic and claims the store.
		if _, err := rewind.Rewind(ctx, ke.client, cfg.Topic, cfg.GroupID); !errors.Is(err, rewind.ErrGroupActive) {
			t.Fatalf("rewind of a group with a running consumer = %v, want ErrGroupActive", err)
		}
		if err := third.stop(); err != nil {
			t.Fatal(err)
		}
		var to map[int]int64
		testenv.Eventually(t, 60*time.Second, "the group empty and rewound", func() bool {
			var err error
			to, err = rewind.Rewind(ctx, ke.client, cfg.Topic, cfg.GroupID)
			return err == nil // the stopped member may take a moment to leave
		})
		if len(to) != 2 || to[0] != 0 || to[1] != 0 {
			t.Fatalf("rewound to %v, want offset 0 of both partitions", to)
		}
		if err := rdb.Del(ctx, bigsegments.StoreLostKey(cfg.RedisPrefix)).Err(); err != nil {
			t.Fatal(err)
		}
		fourth := launch(t, mustNew(t, cfg, rdb, ke))
		fourth.waitCaughtUp(t)
		if n := rdb.Exists(ctx, syncKey).Val(); n != 1 || fourth.Ready() != nil {
			t.Fatalf("after the rebuild: synchronized_on exists %d, Ready %v", n, fourth.Ready())
		}
		if n := rdb.HLen(ctx, bigsegments.MembersKey(cfg.RedisPrefix, "seg.g1")).Val(); n != 3 {
			t.Fatalf("after the replay the segment has %d members, want alice, bob and carol", n)
		}
	})
}

func mustNew(t *testing.T, cfg Config, rdb redis.UniversalClient, ke *kafkaEnv) *Consumer {
	t.Helper()
	c, err := New(cfg, rdb, ke.kf)
	if err != nil {
		t.Fatal(errors.Join(errors.New("New"), err))
	}
	return c
}

// emptyPrefix deletes every key under prefix now, as a FLUSHALL would.
func emptyPrefix(t *testing.T, rdb redis.UniversalClient, prefix string) {
	t.Helper()
	if err := testenv.DeletePrefix(testenv.Context(t, 30*time.Second), rdb, prefix); err != nil {
		t.Fatalf("empty prefix %s: %v", prefix, err)
	}
}

// TestStoreLostMarkHoldsFreshnessBack: the store-lost mark is honoured at
// every check, whatever the store id says: cohortsync rebuild writes it
// (segmentstore.HoldFreshness) to keep a store it refills from being
// stamped current, so a consumer started by mistake during a rebuild, with
// the store id intact, stops stamping and takes synchronized_on back.
func TestStoreLostMarkHoldsFreshnessBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 1)
		ke.produce(t, messages(ev("staging", "seg", 1, "alice", schema.OpAdd, 1))...)
		cfg := testConfig(t, ke)
		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		ctx := testenv.Context(t, time.Minute)
		syncKey := bigsegments.SyncTimeKey(cfg.RedisPrefix)
		testenv.Eventually(t, 10*time.Second, "synchronized_on written", func() bool { return rdb.Exists(ctx, syncKey).Val() == 1 })

		if err := segmentstore.HoldFreshness(ctx, rdb, cfg.RedisPrefix, "rebuild under way"); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "the mark seen", func() bool { return c.Stats().StoresLost == 1 })
		time.Sleep(5 * cfg.SyncInterval)
		if rdb.Exists(ctx, syncKey).Val() != 0 {
			t.Fatal("synchronized_on written over a store whose store_lost mark is set")
		}
		if rdb.Exists(ctx, bigsegments.StoreIDKey(cfg.RedisPrefix)).Val() != 1 {
			t.Fatal("the store id was touched")
		}
	})
}

// TestStoreIDClaimedBeforeTheFirstWrite pins a bug the chaos suite found
// (its Redis data-loss row, run beside other rows): the store id was
// written only with the first synchronized_on stamp, so a FLUSHALL after a
// backlog was applied and committed, but before the consumer caught up and
// stamped, went unseen: the emptied store was claimed as new and marked
// current. The applier now claims the id before its first write to a
// prefix; the stamp's check then finds it gone.
func TestStoreIDClaimedBeforeTheFirstWrite(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			prefix := testenv.Name(t)
			dropPrefix(t, b.Client, prefix)
			ids := newStoreIDs(testLogger(t))
			a := newApplier(time.Now, 1)
			a.ids = ids
			routes := staticRoutes(b.Client, prefix, nil)
			e := ev("staging", "seg", 1, "alice", schema.OpAdd, 1)
			if _, err := a.apply(ctx, routes.cur, []*schema.Event{&e}, 0); err != nil {
				t.Fatal(err)
			}
			if b.Client.Exists(ctx, bigsegments.StoreIDKey(prefix)).Val() != 1 {
				t.Fatal("a member written before the store id")
			}
			if b.Client.Exists(ctx, bigsegments.SyncTimeKey(prefix)).Val() != 0 {
				t.Fatal("synchronized_on written by the apply alone")
			}

			emptyPrefix(t, b.Client, prefix) // the loss, before any stamp
			if err := (syncTime{routes: routes, ids: ids}).SetSynchronizedOn(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			if ids.count() != 1 || ids.ready() == nil {
				t.Fatalf("the loss before the first stamp not detected: count %d, ready %v", ids.count(), ids.ready())
			}
			if b.Client.Exists(ctx, bigsegments.SyncTimeKey(prefix)).Val() != 0 {
				t.Fatal("synchronized_on written over the emptied store")
			}
		})
	}
}

// TestConcurrentFirstChecksAgreeOnTheStoreID pins a race found when the
// consumer began applying in several streams at once: two first checks of
// one prefix (two streams' first batches, or a batch and the freshness
// tracker's stamp) each read no store id; the slower one, deciding after
// the faster had recorded the id it wrote, took its own stale read for a
// store whose id had vanished, and reported the brand-new store lost.
func TestConcurrentFirstChecksAgreeOnTheStoreID(t *testing.T) {
	testenv.ForEachRedis(t, time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		for round := range 20 {
			p := prefix + "-" + strconv.Itoa(round)
			ids := newStoreIDs(testLogger(t))
			changes := []segmentstore.Change{{Prefix: p, Segment: "seg", ContextKey: "alice"}}
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { errs[i] = ids.claimUnseen(ctx, b.Client, changes, "default") })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("round %d: claimUnseen: %v", round, err)
			}
			if n := ids.count(); n != 0 {
				t.Fatalf("round %d: %d stores reported lost by concurrent first checks of a new store, want 0", round, n)
			}
		}
	})
}
