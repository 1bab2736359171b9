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
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
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
	// Amplitude: a fake of its cohort API in-process (the one the tests
	// use), with one cohort; two of its users have no user_id.
	amp := amplitudetest.Start(amplitudetest.Config{Gzip: true, Cohorts: []amplitudetest.Cohort{{
		ID: "7khm89cz", Name: "Trial users", LastComputed: time.Now().Add(-time.Hour),
		Users: []amplitudetest.User{{AmplitudeID: 101, UserID: "user-001@example.com"}, {AmplitudeID: 102, UserID: "user-011@example.com"},
			{AmplitudeID: 103, UserID: "trial-42@example.com"}, {AmplitudeID: 104}, {AmplitudeID: 105}},
	}}})
	defer amp.Close()
	for i := range c.AmplitudeProjects {
		c.AmplitudeProjects[i].Region, c.AmplitudeProjects[i].BaseURL = "", amp.URL
	}
	keys := map[string]string{"DEMO_AMPLITUDE_API_KEY": amp.APIKey(), "DEMO_AMPLITUDE_SECRET_KEY": amp.SecretKey()}
	lookupEnv := func(k string) (string, bool) { v, ok := keys[k]; return v, ok }
	store, err := catalogstore.New(rdb, catalogstore.Config{})
	if err != nil {
		return err
	}
	res, err := store.Apply(ctx, c)
	if err != nil {
		return err
	}
	con.printf("\n=== Mappings: %s applied (cohortsync mappings apply -f), destinations pointed at %s, Amplitude projects at the fake API %s\n",
		cfg.Mappings, redisURL, amp.URL)
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
	type done struct {
		m catalog.Mapping
		r schedule.Result
	}
	ran := make(chan done, len(c.Mappings))
	scfg := schedule.Config{Tick: 100 * time.Millisecond, MaxJitter: schedule.NoJitter,
		OnRunDone: func(m catalog.Mapping, r schedule.Result) { ran <- done{m, r} }}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- app.Serve(sctx, app.Process{LogLevel: "warn", LogFormat: app.DefaultLogFormat}, lookupEnv,
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
		case d := <-ran:
			r := d.r
			if r.Err != nil {
				return errors.Join(fmt.Errorf("scheduled run of %s: %w", d.m.Name, r.Err), stopServe())
			}
			con.printf("scheduled run of %s from %s (%s, slot %s): %s in %v\n", d.m.Name, d.m.Source.Kind, r.Trigger.Kind,
				r.Trigger.Slot.Format(time.RFC3339), r.Outcome, r.Took.Round(time.Millisecond))
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
