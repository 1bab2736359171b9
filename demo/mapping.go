package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// runMapping applies the mapping file to the demo's Redis (the control
// store) and runs what cohortsync serve runs, the scheduler and the
// consumer on the stored destinations, until the scheduler has run every
// mapping once: an hourly mapping never run before is due at once.
func runMapping(ctx context.Context, con *console, cfg Config, brokers []string, redisURL string, rdb redis.UniversalClient) error {
	c, err := app.LoadMappings(cfg.Mappings)
	if err != nil {
		return err
	}
	for i := range c.Destinations {
		c.Destinations[i].Redis = redisx.Config{URL: redisURL}
	}
	store, err := catalogstore.New(rdb, catalogstore.Config{})
	if err != nil {
		return err
	}
	res, err := store.Apply(ctx, c)
	if err != nil {
		return err
	}
	con.printf("\n=== Mappings: %s applied (cohortsync mappings apply -f), destinations pointed at %s\n", cfg.Mappings, redisURL)
	for _, r := range res {
		con.printf("  %s %s %s\n", r.Change, r.Kind, r.Name)
	}

	dir, err := os.MkdirTemp("", "cohortsync-demo-serve-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = topic, dir, 3
	ccfg := consumer.DefaultConfig()
	ccfg.Topic, ccfg.GroupID, ccfg.SyncInterval = topic, "cohortsync-demo-serve", time.Second
	ran := make(chan schedule.Result, len(c.Mappings))
	scfg := schedule.Config{Tick: 100 * time.Millisecond, MaxJitter: schedule.NoJitter,
		OnRunDone: func(_ catalog.Mapping, r schedule.Result) { ran <- r }}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- app.Serve(sctx, app.Process{LogLevel: "warn", LogFormat: app.DefaultLogFormat}, func(string) (string, bool) { return "", false },
			kafkax.Config{Brokers: brokers, DialTimeout: kafkax.DefaultDialTimeout},
			redisx.Config{URL: redisURL, PoolSize: redisx.DefaultPoolSize, Timeout: redisx.DefaultTimeout},
			catalogstore.Config{}, app.ServeConfig{Runs: mappingrun.Config{Producer: pcfg}, Schedule: scfg, Consumer: ccfg},
			io.Discard)
	}()
	con.printf("cohortsync serve's scheduler and consumer running in-process\n")
	stopServe := func() error {
		stop()
		return <-served
	}
	for range c.Mappings {
		select {
		case r := <-ran:
			if r.Err != nil {
				return errors.Join(fmt.Errorf("scheduled run: %w", r.Err), stopServe())
			}
			con.printf("scheduled run (%s, slot %s): %s in %v\n", r.Trigger.Kind, r.Trigger.Slot.Format(time.RFC3339), r.Outcome, r.Took.Round(time.Millisecond))
		case err := <-served:
			return fmt.Errorf("serve stopped: %w", err)
		case <-time.After(time.Minute):
			return errors.Join(errors.New("no scheduled run within a minute"), stopServe())
		}
	}
	// Applied once the consumer's synchronized_on passes the runs' end: it
	// moves only when everything produced before it is in Redis.
	ranAt := time.Now()
	for {
		at, ok, err := segmentstore.SyncTime(ctx, rdb, bigsegments.DefaultPrefix)
		if err != nil {
			return errors.Join(err, stopServe())
		}
		if ok && !at.Before(ranAt) {
			break
		}
		if time.Since(ranAt) > time.Minute {
			return errors.Join(errors.New("the consumer did not catch up within a minute"), stopServe())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range c.Mappings {
		sc := cfg
		sc.Segment = m.Segment
		if err := show(ctx, con, rdb, redisURL, sc); err != nil {
			return errors.Join(err, stopServe())
		}
	}
	con.printf("\nserve runs each mapping again at its next slot (with jitter), on whichever replica claims it.\n")
	return stopServe()
}
