package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/keyspace"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// env is the environment of every synced segment; each consumer writes
// every environment under a prefix of its own phase.
const env = "bench"

// poll is how often a phase checks whether Redis holds what it waits for.
const poll = 5 * time.Millisecond

// run is one make bench run: its settings, clients, files, and every
// topic, group and prefix it made, deleted at the end.
type run struct {
	cfg      Config
	rdb      *redis.Client
	kf       *kafkax.Factory
	dir      string
	id       string
	out      io.Writer
	topics   []string
	groups   []string
	prefixes []string
	// pipeRate is redis-cli --pipe's rate for the bare include sets of
	// the members cohort: the reference of both steady apply rows.
	pipeRate float64
	pipeErr  error
	// members is the CSV of the members cohort, once written (membersCSV).
	members string
}

// Run measures every target and returns the table's rows in issue 12's
// order; progress lines go to out. A phase that fails leaves its rows
// marked not measured and the others still run; the error is for what
// stops the whole run (bad settings, no Redis, no Kafka).
func Run(ctx context.Context, cfg Config, out io.Writer) ([]bench.Row, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	uc, err := redisx.Open(redisx.Config{URL: cfg.RedisURL})
	if err != nil {
		return nil, err
	}
	rdb, ok := uc.(*redis.Client)
	if !ok {
		_ = uc.Close() // unused
		return nil, fmt.Errorf("--redis-url: a standalone server is needed, got %T", uc)
	}
	defer func() { _ = rdb.Close() }() // the figures are taken: a close error changes none
	kf, err := kafkax.New(kafkax.Config{Brokers: cfg.Brokers})
	if err != nil {
		return nil, err
	}
	defer func() { _ = kf.Close() }() // Close never fails
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "cohortsync-bench-"); err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(dir) }() // scratch
	}
	r := &run{cfg: cfg, rdb: rdb, kf: kf, dir: dir, out: out, id: strconv.FormatInt(time.Now().UnixNano(), 36)}
	defer r.cleanup(ctx)

	var rows []bench.Row
	want := func(targets ...string) bool {
		return slices.ContainsFunc(targets, func(t string) bool { return slices.Contains(cfg.Targets, t) })
	}
	if want("1") {
		rows = append(rows, r.steady(ctx)...)
	}
	if want("2", "5") {
		first, lookups := r.firstSync(ctx)
		rows = append(rows, first, lookups)
	}
	if want("2", "4") {
		rows = append(rows, r.large(ctx)...)
	}
	if want("3") {
		rows = append(rows, r.memory(ctx))
	}
	// Issue 12's order: 1 steady apply, 2 syncs, 3 memory, 4 replay, 5 lookups.
	return order(rows), nil
}

// order sorts rows by their target label, keeping the order within one.
func order(rows []bench.Row) []bench.Row {
	out := make([]bench.Row, 0, len(rows))
	for _, t := range []string{"1", "2", "3", "4", "5"} {
		for _, r := range rows {
			if strings.HasPrefix(r.Target, t) {
				out = append(out, r)
			}
		}
	}
	return out
}

// Caption is the line above the table: what was run, where.
func Caption(cfg Config) string {
	cfg = cfg.WithDefaults()
	return fmt.Sprintf("make bench: --members %d --large %d --lookups %d, %d cores, %s",
		cfg.Members, cfg.Large, cfg.Lookups, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

func (r *run) say(format string, args ...any) {
	// A terminal gone away must not fail a benchmark half way.
	_, _ = fmt.Fprintf(r.out, "bench: "+format+"\n", args...)
}

// name is a topic, group or prefix name of this run.
func (r *run) name(what string) string { return "bench-" + r.id + "-" + what }

// topic creates a topic (and its dead-letter topic) of this run.
func (r *run) topic(ctx context.Context, what string) (string, error) {
	t := r.name(what)
	r.topics = append(r.topics, t, kafkax.DeadLetterTopic(t))
	cfg := publish.DefaultConfig()
	cfg.Topic = t
	return t, publish.EnsureTopics(ctx, cfg, r.kf)
}

// consumer starts a consumer of topic in a group of its own, writing every
// environment under prefix.
func (r *run) consumer(ctx context.Context, topic, group, prefix string) (*bench.Consumer, error) {
	r.groups = append(r.groups, group)
	r.prefixes = append(r.prefixes, prefix)
	return bench.StartConsumer(ctx, consumer.Config{
		Topic: topic, GroupID: group, RedisPrefix: prefix, BatchSize: r.cfg.ConsumerBatch, Pipelines: r.cfg.ConsumerPipelines, Appliers: r.cfg.ConsumerAppliers,
		SyncInterval: 100 * time.Millisecond,
	}, r.rdb, r.kf)
}

// joined waits until c has its first assignment, and returns when.
func (r *run) joined(ctx context.Context, c *bench.Consumer) (time.Time, error) {
	err := bench.WaitFor(ctx, c, r.cfg.PhaseTimeout, time.Millisecond, "consumer joining its group", func() (bool, error) {
		return c.Stats().Generations > 0, nil
	})
	return time.Now(), err
}

// caughtUp waits until every event produced so far is applied by c.
func (r *run) caughtUp(ctx context.Context, c *bench.Consumer) error {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.PhaseTimeout)
	defer cancel()
	if err := c.WaitCaughtUp(wctx); err != nil {
		return errors.Join(fmt.Errorf("consumer catching up: %w", err), c.Failed())
	}
	return nil
}

// holds waits until Redis holds n members of segment (generation 1) under
// prefix, and returns when it did.
func (r *run) holds(ctx context.Context, c *bench.Consumer, prefix, segment string, n int) (time.Time, error) {
	ref := bigsegments.Ref(segment, 1)
	var at time.Time
	err := bench.WaitFor(ctx, c, r.cfg.PhaseTimeout, poll, fmt.Sprintf("Redis holding %d members of %s", n, ref), func() (bool, error) {
		info, err := segmentstore.Info(ctx, r.rdb, prefix, ref)
		at = time.Now()
		return info.Members == int64(n), err
	})
	return at, err
}

// check fails unless Redis holds exactly n members of segment.
func (r *run) check(ctx context.Context, prefix, segment string, n int) error {
	info, err := segmentstore.Info(ctx, r.rdb, prefix, bigsegments.Ref(segment, 1))
	if err != nil {
		return err
	}
	if info.Members != int64(n) {
		return fmt.Errorf("the Redis holds %d members of %s, want %d", info.Members, segment, n)
	}
	return nil
}

// syncResult is one run of the producer process.
type syncResult struct {
	took   time.Duration
	rssMiB float64 // its peak resident set (VmHWM), 0 if never read
}

// rssPoll is how often a sync's VmHWM is read while it runs.
const rssPoll = 20 * time.Millisecond

// sync runs `cohortsync sync` as a process of its own: segment from csv
// into topic, keeping its snapshot in stateDir.
//
// Its peak RSS is its VmHWM in /proc, read while it runs, not the
// ru_maxrss that wait4 reports: Go starts a child with vfork (the
// child shares this process's memory until its exec), and Linux carries
// that shared memory's high-water mark into the child's ru_maxrss, so a
// bench process grown to 360 MiB made every sync it started look as
// large. VmHWM belongs to the memory the program got at exec. A peak in
// its last rssPoll can be missed: a high-water mark read any time after
// the peak still shows it.
func (r *run) sync(ctx context.Context, topic, segment, csv, stateDir string) (syncResult, error) {
	sctx, cancel := context.WithTimeout(ctx, r.cfg.PhaseTimeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, r.cfg.Cohortsync, "sync", "--env", env, "--segment", segment, "--csv", csv,
		"--kafka-brokers", strings.Join(r.cfg.Brokers, ","), "--topic", topic, "--state-dir", stateDir,
		"--progress", "none", "--log-level", "warn")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return syncResult{}, fmt.Errorf("cohortsync sync --segment %s: %w", segment, err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peakKB atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(rssPoll)
		defer t.Stop()
		for {
			if kb, ok := vmHWM(status); ok {
				peakKB.Store(max(peakKB.Load(), kb))
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	err := cmd.Wait()
	close(done)
	wg.Wait()
	res := syncResult{took: time.Since(start), rssMiB: float64(peakKB.Load()) / 1024}
	if err != nil {
		return res, fmt.Errorf("cohortsync sync --segment %s: %w: %s", segment, err, bytes.TrimSpace(out.Bytes()))
	}
	return res, nil
}

// vmHWM reads the VmHWM line (kB) of a /proc/PID/status file; false once
// the process is gone.
func vmHWM(status string) (int64, bool) {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}

// cleanup deletes what the run made, on a context that outlives a
// cancelled run: an interrupted benchmark must not leave millions of keys.
func (r *run) cleanup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, p := range r.prefixes {
		errs = append(errs, keyspace.DeletePrefix(cctx, r.rdb, p))
	}
	for _, g := range r.groups {
		errs = append(errs, bench.DeleteGroup(cctx, r.kf, g))
	}
	if len(r.topics) > 0 {
		errs = append(errs, bench.DeleteTopics(cctx, r.kf, r.topics...))
	}
	if err := errors.Join(errs...); err != nil {
		r.say("warning: cleanup: %v", err)
	}
	r.prefixes, r.groups, r.topics = nil, nil, nil
}

// scaled is a time bound of issue 12 set at target members, scaled to n.
func scaled(limit float64, target, n int) bench.Bound {
	b := bench.Bound{Max: true, Limit: limit * float64(n) / float64(target)}
	if n != target {
		b.Note = fmt.Sprintf("%.0f s at %s, scaled", limit, count(target))
	}
	return b
}

// count prints n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// rate prints events per second.
func rate(n int, d time.Duration) string {
	return fmt.Sprintf("%.0f events/s (%s in %.2f s)", float64(n)/d.Seconds(), count(n), d.Seconds())
}

// failed marks rows as not measured because of err.
func failed(err error, rows ...bench.Row) []bench.Row {
	for i := range rows {
		rows[i].Err = err
	}
	return rows
}

// membersCSV returns the CSV of the --members cohort that rows 1 and 2a
// sync, writing it on first use: either row may run without the other.
func (r *run) membersCSV() (string, error) {
	if r.members != "" {
		return r.members, nil
	}
	csv := filepath.Join(r.dir, "members.csv")
	if err := bench.WriteCohort(csv, "", 0, r.cfg.Members); err != nil {
		return "", err
	}
	r.members = csv
	return csv, nil
}
