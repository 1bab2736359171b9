package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/runwatch"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/progress"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// destClients opens the Redis of destinations, once per distinct
// configuration (two destinations on one Redis share a client), for the
// mapping runs of one process; Close closes them all. (serve's consumer
// opens its own: a route table must never get back a client it dropped.)
type destClients struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)

	mu      sync.Mutex
	clients map[string]redis.UniversalClient // by digest of the resolved config
	closed  bool
}

func newDestClients(lookupEnv func(string) (string, bool)) *destClients {
	return &destClients{lookupEnv: lookupEnv, readFile: os.ReadFile, clients: map[string]redis.UniversalClient{}}
}

// connect returns the client of d's Redis, its password read now (a
// rotated password gets a new client; the old one is closed with the
// others).
func (c *destClients) connect(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
	cfg, err := d.RedisConfig(c.lookupEnv, c.readFile)
	if err != nil {
		return nil, err
	}
	cfg = withRedisDefaults(cfg)
	key := configKey(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("destination clients: closed")
	}
	if rdb, ok := c.clients[key]; ok {
		return rdb, nil
	}
	rdb, err := redisx.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	c.clients[key] = rdb
	return rdb, nil
}

// Close closes every client; it is idempotent.
func (c *destClients) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, rdb := range c.clients {
		if err := rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close destination redis: %w", err))
		}
	}
	return errors.Join(errs...)
}

// runs is what a command running mappings builds: the base, the control
// Redis with the catalog store, the destinations' clients and the runner.
type runs struct {
	*base
	control redis.UniversalClient
	store   *catalogstore.Store
	history *runstore.Store
	dests   *destClients
	runner  *mappingrun.Runner
	pub     *publication
	// lastRun is the id of the last run done by this command (sync
	// --mapping), "" before.
	lastRun string
}

// startRuns builds runs; on error, what was built is torn down. The
// leases and sequence counters share the catalog's control prefix.
func startRuns(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg mappingrun.Config, retention time.Duration, stderr io.Writer) (_ *runs, err error) {
	b, err := start(ctx, p, env, kc, stderr)
	if err != nil {
		return nil, err
	}
	r := &runs{base: b}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.down.run())
		}
	}()
	setRedisLogger(redisLogger{b.log})
	if r.control, err = redisx.Open(rc); err != nil {
		return nil, err
	}
	b.down.push(func() error {
		if err := r.control.Close(); err != nil {
			return fmt.Errorf("close control redis: %w", err)
		}
		return nil
	})
	if r.store, err = catalogstore.New(r.control, sc); err != nil {
		return nil, err
	}
	if r.history, err = runstore.New(r.control, runstore.Config{Prefix: sc.Prefix, Timeout: sc.Timeout, Retention: retention}); err != nil {
		return nil, err
	}
	gaps, err := segmentlease.NewGaps(r.control, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
	if err != nil {
		return nil, err
	}
	r.pub = &publication{kc: b.kf.Client(cfg.Producer.WriteTimeout), topic: cfg.Producer.Topic, gaps: gaps, log: b.log}
	r.dests = newDestClients(env)
	b.down.push(r.dests.Close)
	cfg.Lease.Prefix = sc.Prefix
	cfg.LookupEnv = env // Amplitude projects' keys, read like destinations' passwords
	cfg.Exclusions = r.history
	cfg.Producer.Logger, cfg.Producer.TracerProvider, cfg.Producer.Propagator = b.log, b.tel.TracerProvider, b.tel.Propagator
	if r.runner, err = mappingrun.New(cfg, b.kf, r.control, r.store, r.dests.connect, nil, b.log); err != nil {
		return nil, err
	}
	return r, nil
}

// runAdapter is the scheduler's Runner: a mapping run whose results the
// command that started it (sync --mapping) may keep.
type runAdapter struct {
	runner  *mappingrun.Runner
	history *runstore.Store
	pub     *publication
	log     *slog.Logger
	// done, unless nil, gets each run's results.
	done func([]mappingrun.Result)
	// notifier, unless nil, tells whom each mapping names how its runs
	// ended.
	notifier *notify.Notifier
	// observe, unless nil, is told of each destination's sync (sync's
	// progress).
	observe mappingrun.Observer
}

func (a runAdapter) Run(ctx context.Context, m catalog.Mapping, t schedule.Trigger) error {
	before := a.pub.before(ctx, m.Destinations)
	live := startLive(ctx, a.history, a.log, m, string(t.Kind), a.observe)
	res, err := a.runner.Observed(live.observe).Run(ctx, m)
	live.stop()
	record(ctx, a.history, a.log, m.Name, string(t.Kind), res, a.pub.after(ctx, before))
	notifyRuns(a.notifier, m, string(t.Kind), res, err)
	if a.done != nil {
		a.done(res)
	}
	return err
}

// record adds each destination's run to the history, with what tells when
// it is applied (pub). A run that did not get to start (no run id) has
// nothing to record; a history that cannot be written is logged, not made
// the run's failure.
func record(ctx context.Context, h *runstore.Store, log *slog.Logger, mapping, trigger string, res []mappingrun.Result, pub published) {
	for _, r := range res {
		if r.Summary.Run == "" {
			continue
		}
		rec := runstore.Record{ID: r.Summary.Run, Mapping: mapping, Destination: r.Destination, Trigger: trigger, Summary: r.Summary, Exclusions: r.Exclusions}
		if r.Err == nil {
			pub.track(&rec)
		}
		if err := h.Add(context.WithoutCancel(ctx), rec); err != nil {
			log.WarnContext(ctx, "record a run in the history", "mapping", mapping, "run", r.Summary.Run, "error", err)
		}
	}
}

// publication takes what tells when a run is applied (see runwatch): the
// topic's end offsets before and after the run, and each destination's
// count of set-aside events before it. What cannot be read is logged, and
// leaves the run "published" without a barrier: never claimed applied.
type publication struct {
	kc    freshness.Offsets
	topic string
	gaps  *segmentlease.Gaps
	log   *slog.Logger
}

// beforeRun is what before read.
type beforeRun struct {
	ends map[int]int64 // nil: unknown
	gaps map[string]uint64
}

// published is a run's barrier and its destinations' gap counts.
type published struct {
	barrier map[int]int64 // nil: unknown
	gaps    map[string]uint64
}

// track sets what tells when rec's run is applied, if it succeeded: when
// it was published and, when known, its barrier and its destination's gaps.
func (pub published) track(rec *runstore.Record) {
	if rec.Summary.Outcome != producer.Succeeded {
		return
	}
	rec.Published = rec.Summary.Started.Add(rec.Summary.Duration)
	rec.Topic = rec.Summary.Topic
	if gaps, ok := pub.gaps[rec.Destination]; ok && pub.barrier != nil {
		rec.Barrier, rec.Gaps = pub.barrier, gaps
	}
}

// Gaps is the destination's count of set-aside events (receiver.Barriers).
func (p *publication) Gaps(ctx context.Context, destination string) (uint64, error) {
	return p.gaps.Count(ctx, destination)
}

// Ends lists the topic's end offsets (receiver.Barriers).
func (p *publication) Ends(ctx context.Context) (map[int]int64, error) {
	return freshness.Ends(ctx, p.kc, p.topic)
}

func (p *publication) before(ctx context.Context, dests []string) beforeRun {
	b := beforeRun{gaps: map[string]uint64{}}
	for _, d := range dests {
		n, err := p.gaps.Count(ctx, d)
		if err != nil {
			p.log.WarnContext(ctx, "a run will not be known applied in this destination", "destination", d, "error", err)
			continue
		}
		b.gaps[d] = n
	}
	ends, err := freshness.Ends(ctx, p.kc, p.topic)
	switch {
	case errors.Is(err, freshness.ErrTopicMissing):
		b.ends = map[int]int64{} // the run creates it: every partition counts
	case err != nil:
		p.log.WarnContext(ctx, "a run will not be known applied", "topic", p.topic, "error", err)
	default:
		b.ends = ends
	}
	return b
}

func (p *publication) after(ctx context.Context, b beforeRun) published {
	out := published{gaps: b.gaps}
	if b.ends == nil {
		return out
	}
	ends, err := freshness.Ends(context.WithoutCancel(ctx), p.kc, p.topic)
	if err != nil {
		if !errors.Is(err, freshness.ErrTopicMissing) { // missing: the run published nothing
			p.log.WarnContext(ctx, "a run will not be known applied", "topic", p.topic, "error", err)
			return out
		}
		ends = map[int]int64{}
	}
	out.barrier = freshness.NewBarrier(b.ends, ends)
	return out
}

// SyncMapping runs the stored mapping called name now (sync --mapping),
// through the scheduler's claim so that it never overlaps a scheduled run
// of the mapping on any replica, and writes the summary of each
// destination that synced to stdout; opts.Notify tells whom the mapping
// names how the run ended (Close waits for that, bounded). Settings were
// validated by the caller; sc's prefix is also the leases'.
func SyncMapping(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg mappingrun.Config, opts RunOptions, name string, stdout, stderr io.Writer) error {
	p.applyMemoryLimit(env)
	rep := progress.New(stderr, progress.Config{Mode: p.Progress})
	r, err := startRuns(ctx, p, env, kc, rc, sc, cfg, opts.Retention, rep.Writer())
	if err != nil {
		return err
	}
	n, err := startNotifier(ctx, r, env, opts.Notify)
	if err != nil {
		return errors.Join(err, r.down.run())
	}
	rep.Start(ctx, r.log)
	err = syncMapping(ctx, r, sc, n, name, rep, stdout)
	if err == nil && opts.Wait > 0 {
		err = waitApplied(ctx, r, opts, stdout)
	}
	return errors.Join(err, r.down.run())
}

// RunOptions are the settings of a command's mapping runs besides
// mappingrun's.
type RunOptions struct {
	// Retention is how long the runs are kept in the history. Default
	// runstore.DefaultRetention.
	Retention time.Duration
	// Wait, when positive, is how long sync --mapping --wait waits for its
	// run to be applied after publishing it.
	Wait time.Duration
	// GroupID is the consumer group whose commits apply the runs (Wait).
	GroupID string
	// Notify tells whom each mapping names how its runs ended; see
	// notify.Config.
	Notify notify.Config
}

// waitApplied waits until the run just recorded is applied in every
// destination, and says when each was published and applied; a run still
// not applied when opts.Wait ends is an error saying so.
func waitApplied(ctx context.Context, r *runs, opts RunOptions, stdout io.Writer) error {
	if r.lastRun == "" {
		return nil // nothing was published (the mapping ran into no destination)
	}
	w, err := runwatch.New(runwatch.Config{GroupID: opts.GroupID, Interval: 200 * time.Millisecond}, r.history, r.pub.kc, r.pub.gaps, r.log)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	rs, werr := w.Wait(wctx, r.lastRun)
	for _, rec := range rs {
		if err := say(stdout, "run %s, destination %s: %s\n", rec.ID, rec.Destination, appliedLine(rec)); err != nil {
			return errors.Join(werr, err)
		}
	}
	if werr != nil {
		return fmt.Errorf("sync --wait (%v, consumer group %q): %w", opts.Wait, opts.GroupID, werr)
	}
	return nil
}

// appliedLine says when rec was published and applied.
func appliedLine(rec runstore.Record) string {
	st := rec.Status()
	if !rec.Published.IsZero() {
		st += ", published " + rec.Published.UTC().Format(time.RFC3339Nano)
	}
	if !rec.Applied.IsZero() {
		st += fmt.Sprintf(", applied %s (%v after publishing)", rec.Applied.UTC().Format(time.RFC3339Nano), rec.Applied.Sub(rec.Published).Round(time.Millisecond))
	}
	return st
}

func syncMapping(ctx context.Context, r *runs, sc catalogstore.Config, n *notify.Notifier, name string, rep *progress.Reporter, stdout io.Writer) error {
	defer rep.Stop()
	var results []mappingrun.Result
	sched, err := schedule.New(schedule.Config{Prefix: sc.Prefix, Timeout: sc.Timeout}, r.control, r.store,
		runAdapter{runner: r.runner, history: r.history, pub: r.pub, log: r.log, done: func(res []mappingrun.Result) {
			results = res
			for _, x := range res {
				r.lastRun = cmp.Or(x.Summary.Run, r.lastRun)
			}
		}, notifier: n, observe: func(dest string, m *producer.Meter) { rep.Watch("destination", dest, m) }}, r.log)
	if err != nil {
		return err
	}
	err = sched.SyncNow(ctx, name)
	rep.Stop() // the bar's line ends before the summaries
	return errors.Join(err, writeResults(stdout, name, results))
}

// writeResults prints the summary of each destination that synced; a
// failed destination's partial summary is not printed (its counts are what
// the diff enumerated, not what Kafka acknowledged), its error is returned.
func writeResults(stdout io.Writer, name string, results []mappingrun.Result) error {
	for _, res := range results {
		if res.Err != nil {
			continue
		}
		if err := say(stdout, "mapping %s, destination %s:\n", name, res.Destination); err != nil {
			return err
		}
		if _, err := res.Summary.WriteTo(stdout); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}

// MappingsPurge deletes the stored mapping called name after removing its
// segment's members from every destination through the event path
// (mappings delete --purge). The mapping is paused first, so that no
// scheduled run adds members back; if the purge fails it stays stored,
// paused, for the command to be run again.
func MappingsPurge(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg mappingrun.Config, opts RunOptions, name string, stdout, stderr io.Writer) error {
	r, err := startRuns(ctx, p, env, kc, rc, sc, cfg, opts.Retention, stderr)
	if err != nil {
		return err
	}
	return errors.Join(purge(ctx, r, name, stdout), r.down.run())
}

func purge(ctx context.Context, r *runs, name string, stdout io.Writer) error {
	if _, err := r.store.Pause(ctx, name); err != nil {
		return err
	}
	m, err := r.store.Get(ctx, name)
	if err != nil {
		return err
	}
	before := r.pub.before(ctx, m.Destinations)
	live := startLive(ctx, r.history, r.log, m, "purge", nil)
	results, err := r.runner.Observed(live.observe).Purge(ctx, m)
	live.stop()
	record(ctx, r.history, r.log, name, "purge", results, r.pub.after(ctx, before))
	if werr := writeResults(stdout, name, results); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return fmt.Errorf("purge of mapping %q failed; it is kept, paused, run delete --purge again: %w", name, err)
	}
	if err := r.store.Delete(ctx, name); err != nil {
		return err
	}
	return say(stdout, "mapping %s: members removed from every destination; mapping deleted\n", name)
}
