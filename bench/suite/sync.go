package suite

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/internal/keyspace"
)

// Bounds of the sync and replay rows (issue 12, targets 2 and 4), at
// targetMembers and targetLarge.
const (
	firstSyncSeconds = 8.0
	largeSyncSeconds = 40.0
	producerRSSMiB   = 200.0
	resyncTarget     = 1.0
	replaySeconds    = 40.0
)

// firstSync measures target 2's first row, a first sync of the members
// cohort from CSV to applied and caught up, and target 5 on the segment
// it wrote, before deleting it.
func (r *run) firstSync(ctx context.Context) (row, lookups bench.Row) {
	n := r.cfg.Members
	row = bench.Row{Target: "2a", Measure: fmt.Sprintf("first sync, %s members: CSV to applied and caught up", count(n)),
		Unit: bench.Seconds, Bound: scaled(firstSyncSeconds, targetMembers, n)}
	lookups = bench.Row{Target: "5", Measure: fmt.Sprintf("LaunchDarkly Go SDK v7 Big Segments lookup p99, %s random members", count(min(r.cfg.Lookups, n))),
		Unit: bench.Ratio, Bound: bench.Bound{Max: true, Limit: sdkTarget}}
	if r.pipeErr == nil && r.pipeRate > 0 { // measured by row 1
		row.Reference = fmt.Sprintf("redis-cli --pipe of the bare include sets: %.2f s", float64(n)/r.pipeRate)
	}
	const segment = "first"
	topic, err := r.topic(ctx, segment)
	if err != nil {
		rows := failed(err, row, lookups)
		return rows[0], rows[1]
	}
	prefix := r.name(segment)
	c, err := r.consumer(ctx, topic, topic, prefix)
	if err != nil {
		rows := failed(err, row, lookups)
		return rows[0], rows[1]
	}
	defer func() { _ = c.Stop() }() // stopped below; this is for early returns
	csv, err := r.membersCSV()
	if err != nil {
		rows := failed(err, row, lookups)
		return rows[0], rows[1]
	}
	took, _, err := r.timedSync(ctx, c, topic, segment, csv, filepath.Join(r.dir, "state-"+segment), prefix, n)
	if err != nil {
		rows := failed(err, row, lookups)
		return rows[0], rows[1]
	}
	row.Subject, row.Figure = rate(n, took), took.Seconds()
	r.say("first sync: %s", row.Subject)
	if err := c.Stop(); err != nil {
		lookups.Err = err
		return row, lookups
	}
	lookups = r.lookups(ctx, lookups, prefix, segment, n)
	if err := keyspace.DeletePrefix(ctx, r.rdb, prefix); err != nil {
		r.say("warning: %v", err)
	}
	return row, lookups
}

// timedSync runs the producer process on csv into topic, which c
// consumes, and times it from its start until c caught up and Redis holds
// n members of segment under prefix.
func (r *run) timedSync(ctx context.Context, c *bench.Consumer, topic, segment, csv, stateDir, prefix string, n int) (time.Duration, syncResult, error) {
	if err := r.caughtUp(ctx, c); err != nil { // in the group, nothing left to apply
		return 0, syncResult{}, err
	}
	start := time.Now()
	res, err := r.sync(ctx, topic, segment, csv, stateDir)
	if err != nil {
		return 0, res, err
	}
	if err := r.caughtUp(ctx, c); err != nil {
		return 0, res, err
	}
	took := time.Since(start)
	return took, res, r.check(ctx, prefix, segment, n)
}

// large measures the rest of target 2 and target 4 on the large cohort:
// its first sync with the producer's peak RSS, a re-sync at 1% churn
// against sort and comm on the same key files, and a replay of the whole
// topic by a new group into an empty prefix.
func (r *run) large(ctx context.Context) []bench.Row {
	n, churn := r.cfg.Large, r.cfg.Large/100
	first := bench.Row{Target: "2b", Measure: fmt.Sprintf("first sync, %s members: CSV to applied and caught up", count(n)),
		Unit: bench.Seconds, Bound: scaled(largeSyncSeconds, targetLarge, n)}
	rss := bench.Row{Target: "2c", Measure: fmt.Sprintf("producer peak RSS (VmHWM of the cohortsync sync process, read while it runs), first sync of %s", count(n)),
		Unit: bench.MiB, Bound: bench.Bound{Max: true, Limit: producerRSSMiB}}
	resync := bench.Row{Target: "2d", Measure: fmt.Sprintf("re-sync of %s members at 1%% churn (%s left, %s joined), to applied", count(n), count(churn/2), count(churn/2)),
		Unit: bench.Ratio, Bound: bench.Bound{Max: true, Limit: resyncTarget}}
	replay := bench.Row{Target: "4", Measure: "replay of the topic from offset 0 into an empty prefix (a new consumer group)",
		Unit: bench.Seconds, Bound: scaled(replaySeconds, targetLarge, n)}
	all := []bench.Row{first, rss, resync, replay}

	csv, keys := filepath.Join(r.dir, "large.csv"), filepath.Join(r.dir, "large.keys")
	csv2, keys2 := filepath.Join(r.dir, "large-churn.csv"), filepath.Join(r.dir, "large-churn.keys")
	r.say("large: writing %s-member cohorts", count(n))
	if err := bench.WriteCohort(csv, keys, 0, n); err != nil {
		return failed(err, all...)
	}
	// The first half of the churn leaves, as many new members join.
	if err := bench.WriteCohort(csv2, keys2, churn/2, n+churn/2); err != nil {
		return failed(err, all...)
	}
	const segment = "large"
	topic, err := r.topic(ctx, segment)
	if err != nil {
		return failed(err, all...)
	}
	prefix := r.name(segment)
	c, err := r.consumer(ctx, topic, topic, prefix)
	if err != nil {
		return failed(err, all...)
	}
	defer func() { _ = c.Stop() }() // stopped below; this is for early returns
	state := filepath.Join(r.dir, "state-"+segment)
	took, res, err := r.timedSync(ctx, c, topic, segment, csv, state, prefix, n)
	if err != nil {
		return failed(err, all...)
	}
	first.Subject, first.Figure = rate(n, took), took.Seconds()
	rss.Subject, rss.Figure = fmt.Sprintf("%.0f MiB", res.rssMiB), res.rssMiB
	r.say("large first sync: %s, producer peak RSS %.0f MiB", first.Subject, res.rssMiB)

	if took, _, err = r.timedSync(ctx, c, topic, segment, csv2, state, prefix, n); err != nil {
		resync.Err = err
	} else if ref, lines, err := bench.SortComm(ctx, r.dir, keys, keys2); err != nil {
		resync.Err = fmt.Errorf("sort + comm reference: %w", err)
	} else if lines != churn/2*2 {
		resync.Err = fmt.Errorf("sort + comm reference printed %d lines, want %d", lines, churn/2*2)
	} else {
		resync.Subject = fmt.Sprintf("%.2f s", took.Seconds())
		resync.Reference = fmt.Sprintf("LC_ALL=C sort of both key files + comm -3: %.2f s", ref.Seconds())
		resync.Figure = took.Seconds() / ref.Seconds()
		r.say("re-sync at 1%% churn: %s, %s", resync.Subject, resync.Reference)
	}
	if err := c.Stop(); err != nil {
		replay.Err = err
		return []bench.Row{first, rss, resync, replay}
	}
	replay = r.replay(ctx, replay, topic, prefix, segment, n)
	return []bench.Row{first, rss, resync, replay}
}

// replay deletes what the large sync wrote and times a new consumer group
// reading topic from offset 0 into a new prefix, from its start (joining
// included, as a rebuild pays it) until caught up.
func (r *run) replay(ctx context.Context, row bench.Row, topic, oldPrefix, segment string, n int) bench.Row {
	if err := keyspace.DeletePrefix(ctx, r.rdb, oldPrefix); err != nil {
		row.Err = err
		return row
	}
	events, _, err := bench.TopicMessages(ctx, r.kf, topic)
	if err != nil {
		row.Err = err
		return row
	}
	row.Measure = fmt.Sprintf("replay of a %s-event topic from offset 0 into an empty prefix (a new consumer group)", count(int(events)))
	row.Bound = scaled(replaySeconds, targetLarge, int(events))
	prefix := r.name("replay")
	c, err := r.consumer(ctx, topic, r.name("replay"), prefix)
	if err != nil {
		row.Err = err
		return row
	}
	defer func() { _ = c.Stop() }() // stopped below; this is for early returns
	if err := r.caughtUp(ctx, c); err != nil {
		row.Err = err
		return row
	}
	took := time.Since(c.Started)
	if err := r.check(ctx, prefix, segment, n); err != nil {
		row.Err = err
		return row
	}
	if err := c.Stop(); err != nil {
		row.Err = err
		return row
	}
	row.Subject, row.Figure = rate(int(events), took), took.Seconds()
	r.say("replay: %s", row.Subject)
	if err := keyspace.DeletePrefix(ctx, r.rdb, prefix); err != nil {
		r.say("warning: %v", err)
	}
	return row
}
