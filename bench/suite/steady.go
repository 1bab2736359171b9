package suite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/internal/keyspace"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Targets of the steady apply rows (issue 12, target 1).
const (
	steadyTarget = 0.5
	loadedTarget = 0.45
)

// steady measures target 1: a consumer draining events already in the
// topic, alone and while a first sync of another segment runs, each
// against redis-cli --pipe writing the bare include sets of the same
// members.
func (r *run) steady(ctx context.Context) []bench.Row {
	n := r.cfg.Members
	alone := bench.Row{Target: "1a", Measure: fmt.Sprintf("steady apply: %s events already in the topic drained into Redis", count(n)),
		Unit: bench.Ratio, Bound: bench.Bound{Limit: steadyTarget}}
	loaded := bench.Row{Target: "1b", Measure: fmt.Sprintf("steady apply while a first sync of %s members of another segment runs", count(n)),
		Unit: bench.Ratio, Bound: bench.Bound{Limit: loadedTarget}}
	csv, err := r.membersCSV()
	if err != nil {
		return failed(err, alone, loaded)
	}
	r.pipeRate, r.pipeErr = r.pipe(ctx, "steady", n)
	if r.pipeErr == nil {
		ref := fmt.Sprintf("redis-cli --pipe, bare include sets: %.0f SADD/s", r.pipeRate)
		alone.Reference, loaded.Reference = ref, ref
		r.say("reference: %s", ref)
	}
	// The drains run without their reference too: what they measure is
	// still printed, and the row says why it has no ratio.
	for _, row := range []*bench.Row{&alone, &loaded} {
		what, beside := "steady", ""
		if row == &loaded {
			what, beside = "loaded", csv
		}
		took, cpu, err := r.drain(ctx, csv, what, beside)
		switch {
		case err != nil:
			row.Err = err
		case r.pipeErr != nil:
			row.Subject = rate(n, took)
			row.Err = fmt.Errorf("%s; the reference: %w", row.Subject, r.pipeErr)
		default:
			row.Subject = rate(n, took)
			row.Figure = float64(n) / took.Seconds() / r.pipeRate
		}
		if row == &alone && err == nil && cpu.ok {
			// Alone, the drain is the only work of this process and of
			// redis-server: their CPU per event is the figure the
			// machine's other load moves least.
			row.Subject += "; CPU per event: " + cpu.perEvent(n)
		}
		r.say("%s apply: %s", what, row.Subject)
	}
	return []bench.Row{alone, loaded}
}

// pipe writes the RESP file of the bare include sets of members Key(i),
// i < n, for segment, times redis-cli --pipe on it, and deletes what it
// wrote.
func (r *run) pipe(ctx context.Context, segment string, n int) (float64, error) {
	file := filepath.Join(r.dir, segment+".resp")
	prefix := r.name(segment + "-pipe")
	r.prefixes = append(r.prefixes, prefix)
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	err = bench.WriteIncludeSADDs(f, prefix, bigsegments.Ref(segment, 1), 0, n, bench.Key)
	if err = errors.Join(err, f.Close()); err != nil {
		return 0, fmt.Errorf("write %s: %w", file, err)
	}
	rate, err := bench.Pipe(ctx, r.cfg.RedisCLI, r.cfg.RedisURL, file, n)
	if err != nil {
		return 0, err
	}
	return rate, keyspace.DeletePrefix(ctx, r.rdb, prefix)
}

// drain pre-produces csv as segment what into a topic of its own, then
// times a new consumer from its first assignment until Redis holds every
// member, and measures the CPU this process (the consumer) and the Redis
// server spent meanwhile. With beside set, a first sync of that CSV as
// another segment starts at the same moment, into the same topic.
func (r *run) drain(ctx context.Context, csv, what, beside string) (time.Duration, cpuUse, error) {
	n := r.cfg.Members
	topic, err := r.topic(ctx, what)
	if err != nil {
		return 0, cpuUse{}, err
	}
	r.say("%s: producing %s events (cohortsync sync)", what, count(n))
	if _, err := r.sync(ctx, topic, what, csv, filepath.Join(r.dir, "state-"+what)); err != nil {
		return 0, cpuUse{}, err
	}
	prefix := r.name(what)
	c, err := r.consumer(ctx, topic, topic, prefix)
	if err != nil {
		return 0, cpuUse{}, err
	}
	defer func() { _ = c.Stop() }() // stopped below; this is for early returns
	start, err := r.joined(ctx, c)
	if err != nil {
		return 0, cpuUse{}, err
	}
	cpu0 := r.cpuNow(ctx)
	other := what + "-beside"
	syncDone := make(chan error, 1)
	if beside != "" {
		go func() {
			_, err := r.sync(ctx, topic, other, beside, filepath.Join(r.dir, "state-"+other))
			syncDone <- err
		}()
	} else {
		syncDone <- nil
	}
	end, err := r.holds(ctx, c, prefix, what, n)
	cpu := r.cpuNow(ctx).since(cpu0)
	syncErr := <-syncDone // bounded: the sync has PhaseTimeout
	if err != nil {
		return 0, cpuUse{}, err
	}
	if syncErr != nil {
		return 0, cpuUse{}, fmt.Errorf("the first sync beside it: %w", syncErr)
	}
	if beside != "" { // the other segment's sync must have been applied too
		if err := r.caughtUp(ctx, c); err != nil {
			return 0, cpuUse{}, err
		}
		if err := r.check(ctx, prefix, other, n); err != nil {
			return 0, cpuUse{}, err
		}
	}
	if err := c.Stop(); err != nil {
		return 0, cpuUse{}, err
	}
	return end.Sub(start), cpu, keyspace.DeletePrefix(ctx, r.rdb, prefix)
}

// cpuUse is CPU time spent by this process (the consumer) and by
// redis-server; ok when the server reported its own.
type cpuUse struct {
	consumer, redis time.Duration
	ok              bool
}

// cpuNow returns the CPU time both have used so far.
func (r *run) cpuNow(ctx context.Context) cpuUse {
	u := cpuUse{consumer: processCPU()}
	var err error
	u.redis, err = redisx.ServerCPU(ctx, r.rdb)
	u.ok = err == nil
	return u
}

// since returns what was spent from then to u.
func (u cpuUse) since(then cpuUse) cpuUse {
	return cpuUse{consumer: u.consumer - then.consumer, redis: u.redis - then.redis, ok: u.ok && then.ok}
}

// perEvent says u per event of n.
func (u cpuUse) perEvent(n int) string {
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	return fmt.Sprintf("consumer %.2f µs, redis-server %.2f µs", per(u.consumer), per(u.redis))
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0 // Linux does not fail it for RUSAGE_SELF
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
