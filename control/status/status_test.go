package status

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalog/catalogtest"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "zero takes the defaults", Change: func(*Config) {}},
		{Name: "a custom staleAfter", Change: func(c *Config) { c.StaleAfter, c.RecentRuns = 5*time.Minute, 10 }},
		{Name: "under a second", Change: func(c *Config) { c.StaleAfter = time.Millisecond }, Want: `--stale-after="1ms": want a duration of at least 1s`},
		{Name: "negative runs", Change: func(c *Config) { c.RecentRuns = -1 }, Want: `--recent-runs="-1": want between 1 and 10000`},
	})
}

type gaps map[string]uint64

func (g gaps) Count(_ context.Context, d string) (uint64, error) { return g[d], nil }

// TestCheck: available, potentially stale by the configured staleAfter,
// last sync, last errors (failed and set-aside runs, the store-lost mark,
// set-aside counts, an unreachable Redis), and each segment's freshness
// and lag from its metadata and the run history.
func TestCheck(t *testing.T) {
	testenv.ForEachRedis(t, time.Minute, func(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string) {
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		prod, eu, down := catalogtest.Destination("production", prefix+"-prod"), catalogtest.Destination("eu", prefix+"-eu"), catalogtest.Destination("staging", prefix+"-stg")
		cat := &catalogtest.Catalog{Dests: []catalog.Destination{prod, eu, down}, Mappings: []catalog.Mapping{{
			Name: "beta", Segment: "beta-users", Destinations: []string{"production", "eu"}, Generation: 1, ContextKind: "user",
			Source: catalog.Source{Kind: catalog.SourceCSV, Location: "/data/beta.csv"}}}}
		connect := func(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
			if d.Name == "staging" {
				return nil, errors.New("dial tcp 10.0.0.9:6379: connection refused")
			}
			return rb.Client, nil
		}
		w := segmentstore.NewWriter(rb.Client, func() time.Time { return now.Add(-time.Minute) })
		var changes []segmentstore.Change
		for i := range 3 {
			changes = append(changes, segmentstore.Change{Prefix: prod.Prefix(), Segment: "beta-users", Generation: 1, ContextKind: "user",
				ContextKey: fmt.Sprint("u", i), Seq: uint64(i + 1), Run: "r1"})
		}
		if f, err := w.Apply(ctx, changes); err != nil || len(f) != 0 {
			t.Fatal(f, err)
		}
		if err := w.SetSynchronizedOn(ctx, []string{prod.Prefix()}, now.Add(-30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := w.SetSynchronizedOn(ctx, []string{eu.Prefix()}, now.Add(-3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		lostAt := now.Add(-10 * time.Minute)
		if err := rb.Client.Set(ctx, bigsegments.StoreLostKey(eu.Prefix()), lostAt.Format(time.RFC3339), 0).Err(); err != nil {
			t.Fatal(err)
		}
		history, err := runstore.New(rb.Client, runstore.Config{Prefix: prefix + ":control:", Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		rec := func(id, dest string, started time.Time, sum producer.Summary, published, applied time.Time) runstore.Record {
			sum.Run, sum.Segment, sum.Generation, sum.Started = id, "beta-users", 1, started
			return runstore.Record{ID: id, Mapping: "beta", Destination: dest, Trigger: "scheduled", Summary: sum,
				Published: published, Barrier: map[int]int64{0: 1}, Applied: applied}
		}
		for _, r := range []runstore.Record{
			rec(producer.NewRunID(now.Add(-3*time.Hour)), "production", now.Add(-3*time.Hour), producer.Summary{Outcome: producer.Succeeded, FirstSeq: 1, LastSeq: 3}, now.Add(-3*time.Hour), now.Add(-3*time.Hour)),
			rec(producer.NewRunID(now.Add(-2*time.Hour)), "production", now.Add(-2*time.Hour), producer.Summary{Outcome: producer.Failed, Error: "cohort export: 503"}, time.Time{}, time.Time{}),
			rec(producer.NewRunID(now.Add(-time.Hour)), "production", now.Add(-time.Hour), producer.Summary{Outcome: producer.Succeeded, FirstSeq: 4, LastSeq: 9}, now.Add(-time.Hour), time.Time{}),
		} {
			if err := history.Add(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		c := &Checker{Catalog: cat, Connect: connect, History: history, SetAsides: gaps{"eu": 2}, Config: Config{Now: func() time.Time { return now }}}
		rep, err := c.Check(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Destinations) != 3 || rep.StaleAfter != 2*time.Minute {
			t.Fatalf("report %+v", rep)
		}
		e, p, s := rep.Destinations[0], rep.Destinations[1], rep.Destinations[2]
		if !p.Available || p.PotentiallyStale || !p.SynchronizedOn.Equal(now.Add(-30*time.Second)) || p.SyncAge != 30*time.Second {
			t.Errorf("production %+v: want available, fresh, synced 30s ago", p)
		}
		if len(p.LastErrors) != 1 || p.LastErrors[0].Kind != KindRunFailed || p.LastErrors[0].Detail != "run of beta failed: cohort export: 503" {
			t.Errorf("production's last errors %+v: want the failed run", p.LastErrors)
		}
		if len(p.Segments) != 1 {
			t.Fatalf("production's segments %+v", p.Segments)
		}
		seg := p.Segments[0]
		if seg.Key != "beta-users" || seg.Mapping != "beta" || seg.Members != 3 || seg.LastSeq != 3 || seg.LastRun != "r1" ||
			!seg.LastApplied.Equal(now.Add(-time.Minute)) || seg.LastPublishedSeq != 9 || seg.SeqLag != 6 || seg.PendingRuns != 1 ||
			!seg.PendingSince.Equal(now.Add(-time.Hour)) {
			t.Errorf("production's beta-users %+v: want 3 members applied up to seq 3, 9 published, lag 6, one run pending for an hour", seg)
		}
		if !e.Available || !e.PotentiallyStale || e.SetAsides != 2 || !e.StoreLost.Equal(lostAt) || len(e.LastErrors) != 2 ||
			e.LastErrors[0].Kind != KindStoreLost || e.LastErrors[1].Kind != KindSetAside {
			t.Errorf("eu %+v: want available, stale (3m > 2m), store lost, 2 set-asides", e)
		}
		if s.Available || !s.PotentiallyStale || len(s.LastErrors) != 1 || s.LastErrors[0].Kind != KindUnavailable || s.Error == "" {
			t.Errorf("staging %+v: want unavailable with its error", s)
		}

		// staleAfter is a setting: the SDKs of a team may allow 5 minutes.
		c.Config.StaleAfter = 5 * time.Minute
		rep, err = c.Check(ctx, "eu")
		if err != nil || len(rep.Destinations) != 1 || rep.Destinations[0].PotentiallyStale {
			t.Errorf("Check(eu) with staleAfter 5m = %+v, %v; want one destination, not stale", rep, err)
		}
		c.Config.StaleAfter = time.Millisecond
		if _, err := c.Check(ctx, ""); !errors.As(err, new(*setting.Error)) {
			t.Errorf("Check with an invalid config = %v, want a setting error", err)
		}
	})
}
