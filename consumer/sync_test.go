package consumer

import (
	"context"
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
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 3)
		cfg := testConfig(t, ke)
		cfg.SyncInterval = 150 * time.Millisecond
		// Every apply takes a realistic 20ms (a loaded or distant Redis), so
		// events keep arriving while a batch is applied and the check after
		// its commit, like any other, rarely finds the lag at 0.
		rdb.AddHook(slowApply(20 * time.Millisecond))
		c := start(t, ke.kf, cfg, rdb)
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
