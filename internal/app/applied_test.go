package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/runwatch"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
)

// TestRunAppliedOnlyWhenTheConsumerCommitted pins the completion barrier
// of issue 9: a run is "applied" only once the consumer group committed
// past its events. With the consumer down, sync --wait fails and the run
// stays "published, not applied"; a run whose destination had events set
// aside meanwhile is reported set aside, never applied; once the consumer
// runs, the waiting run is marked applied, after it was published.
func TestRunAppliedOnlyWhenTheConsumerCommitted(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	ctx := testenv.Context(t, 3*time.Minute)
	f := newCSVMapping(t, ctx, "churn", "a", "b", "c")
	rc, sc := f.rc, f.sc
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = name, t.TempDir(), 3
	ccfg := consumer.DefaultConfig()
	ccfg.Topic, ccfg.GroupID, ccfg.SyncInterval = name, name, 100*time.Millisecond
	proc := DefaultProcess()
	proc.LogLevel = "error"
	noEnv := func(string) (string, bool) { return "", false }
	kc := kafkax.Config{Brokers: brokers}
	runs := mappingrun.Config{Producer: pcfg}

	rdb, err := redisx.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	history, err := runstore.New(rdb, runstore.Config{Prefix: sc.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	lastRun := func() runstore.Record {
		t.Helper()
		rs, err := history.List(ctx, runstore.Filter{Mapping: "churn", Limit: 1})
		if err != nil || len(rs) != 1 {
			t.Fatalf("runs of churn: %v, %v", rs, err)
		}
		return rs[0]
	}

	// No consumer: the run is published, never applied, and --wait says so.
	var out strings.Builder
	err = SyncMapping(ctx, proc, noEnv, kc, rc, sc, runs, RunOptions{Wait: 2 * time.Second, GroupID: name}, "churn", &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "published, not applied") {
		t.Fatalf("sync --wait with no consumer = %v, want it to fail saying published, not applied\n%s", err, out.String())
	}
	first := lastRun()
	if first.Status() != "published, not applied" || first.Published.IsZero() || len(first.Barrier) == 0 {
		t.Fatalf("first run: status %q, published %v, barrier %v", first.Status(), first.Published, first.Barrier)
	}

	// The consumer sets events of the destination aside (it was down):
	// the run published before is not applied, whatever the offsets say.
	gaps, err := segmentlease.NewGaps(rdb, segmentlease.Config{Prefix: sc.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	if err := gaps.Record(ctx, "production"); err != nil {
		t.Fatal(err)
	}

	stop := runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, noEnv, kc, rc, sc, ServeConfig{Parts: []string{PartConsumer}, Runs: runs, Consumer: ccfg, CatalogPoll: 100 * time.Millisecond}, io.Discard)
	})
	defer stop()

	kf, err := kafkax.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	w, err := runwatch.New(runwatch.Config{GroupID: name}, history, kf.Client(10*time.Second), gaps, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the first run settled", func() bool {
		if _, err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
		return lastRun().Status() != "published, not applied"
	})
	if r := lastRun(); !r.SetAside || !r.Applied.IsZero() {
		t.Fatalf("first run after a set-aside: %q (applied %v), want set aside", r.Status(), r.Applied)
	}

	// With the consumer running, the next run is waited for and applied.
	out.Reset()
	if err := SyncMapping(ctx, proc, noEnv, kc, rc, sc, runs, RunOptions{Wait: time.Minute, GroupID: name}, "churn", &out, io.Discard); err != nil {
		t.Fatalf("sync --wait with the consumer running: %v\n%s", err, out.String())
	}
	second := lastRun()
	if second.ID == first.ID || second.Status() != "applied" || second.Applied.Before(second.Published) {
		t.Fatalf("second run: %q published %v applied %v", second.Status(), second.Published, second.Applied)
	}
	if !strings.Contains(out.String(), "destination production: applied, published ") {
		t.Fatalf("sync --wait output:\n%s", out.String())
	}
	var show strings.Builder
	if err := RunsShow(ctx, rc, sc, second.ID, &show); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(show.String(), "status applied") || !strings.Contains(show.String(), "after publishing") {
		t.Fatalf("runs show:\n%s", show.String())
	}
}
