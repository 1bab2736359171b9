package mappingrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/amplitude"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/producer/source/csvhttp"
)

// Config tunes mapping runs.
type Config struct {
	// Producer is where and how to publish, and the state directory (a
	// cache with shared state). Its MaxShrink is replaced by each
	// mapping's, and its ExclusionsFile must be empty: each segment keeps
	// its reports in its own state directory.
	Producer producer.Config
	// Lease places the control keys (leases, sequence counters) and sets
	// the lease TTL; see segmentlease.Config.
	Lease segmentlease.Config
	// RebuildWait bounds how long a rebuild waits for the consumer to apply
	// what was published before it. Default segmentstore.DefaultRebuildWait.
	RebuildWait time.Duration
	// Fetch is the retry policy of a CSV URL, and of Amplitude's requests
	// unless Amplitude.Retry is set. Default retry's defaults.
	Fetch retry.Policy
	// Amplitude tunes the exports of Amplitude cohorts (status polling,
	// retries); its HTTP client is the Runner's. Default amplitude's
	// defaults.
	Amplitude amplitude.Options
	// LookupEnv and ReadFile read Amplitude projects' keys from where the
	// project says. Default os.LookupEnv and os.ReadFile.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// Exclusions, unless nil, keeps each run's excluded rows with the run
	// (runstore.Store), streamed while the run reads its source; the local
	// report is written as well.
	Exclusions ExclusionStore
}

// ExclusionStore keeps a run's exclusions under its id and destination;
// runstore.Store implements it.
type ExclusionStore interface {
	NewExclusionWriter(run, destination string) *runstore.ExclusionWriter
}

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	errs := []error{c.Producer.Validate(), c.Lease.Validate()}
	if c.Producer.ExclusionsFile != "" {
		errs = append(errs, setting.Invalid("exclusions-file", c.Producer.ExclusionsFile, "nothing with a mapping: each segment keeps its reports in its state directory"))
	}
	if c.RebuildWait < 0 {
		errs = append(errs, setting.Invalid("rebuild-wait", c.RebuildWait, "a positive duration"))
	}
	return errors.Join(errs...)
}

// ErrNotRunnable is wrapped by Run's error for a mapping that cannot be
// run now: paused, fed by pushes, or of a source this build cannot pull.
var ErrNotRunnable = errors.New("mapping cannot be run")

// Destinations finds a destination by name (catalogstore.Store does).
type Destinations interface {
	Destination(ctx context.Context, name string) (catalog.Destination, error)
}

// AmplitudeProjects finds an Amplitude project by name (catalogstore.Store
// does). A Runner whose Destinations also implement it runs Amplitude
// mappings; without it they are not runnable.
type AmplitudeProjects interface {
	AmplitudeProject(ctx context.Context, name string) (catalog.AmplitudeProject, error)
}

// Connector returns the client of a destination's Redis. The Runner does
// not close it: the Connector's owner caches and closes clients.
type Connector func(ctx context.Context, d catalog.Destination) (redis.UniversalClient, error)

// Runner runs mappings. It is safe for concurrent use; runs of one
// segment exclude each other through its lease (the second gets an error
// wrapping snapshot.ErrLocked).
type Runner struct {
	cfg     Config
	kf      *kafkax.Factory
	locker  *segmentlease.Locker
	seq     *segmentlease.SeqAllocator
	gaps    *segmentlease.Gaps
	erased  *segmentlease.Erased
	dests   Destinations
	connect Connector
	http    *http.Client
	log     *slog.Logger
	observe Observer
}

// Observer is told of each destination's sync before it starts, with the
// meter the sync keeps up to date (a progress bar, a running run's record
// read it).
type Observer func(destination string, meter *producer.Meter)

// Observed returns a Runner like r whose runs tell observe of each
// destination's sync. r is unchanged: each run can have its own observer.
func (r *Runner) Observed(observe Observer) *Runner {
	c := *r
	c.observe = observe
	return &c
}

// New returns a Runner publishing through kf, keeping leases and sequence
// counters in control (standalone or Cluster), finding destinations in
// dests and their clients through connect, and fetching CSV URLs with
// httpc (http.DefaultClient if nil).
func New(cfg Config, kf *kafkax.Factory, control redis.UniversalClient, dests Destinations, connect Connector, httpc *http.Client, log *slog.Logger) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	locker, err := segmentlease.NewLocker(control, cfg.Lease)
	if err != nil {
		return nil, err
	}
	seq, err := segmentlease.NewSeqAllocator(control, cfg.Lease)
	if err != nil {
		return nil, err
	}
	gaps, err := segmentlease.NewGaps(control, cfg.Lease)
	if err != nil {
		return nil, err
	}
	erased, err := segmentlease.NewErased(control, cfg.Lease)
	if err != nil {
		return nil, err
	}
	if httpc == nil {
		httpc = http.DefaultClient
	}
	if log == nil {
		log = slog.Default()
	}
	return &Runner{cfg: cfg, kf: kf, locker: locker, seq: seq, gaps: gaps, erased: erased, dests: dests, connect: connect, http: httpc, log: log}, nil
}

// Result is one destination's sync.
type Result struct {
	Destination string
	Summary     producer.Summary
	// Err is the destination's error, nil if it synced.
	Err error
	// Exclusions is what Config.Exclusions kept of the run's exclusion
	// report; nil without an ExclusionStore.
	Exclusions *runstore.ExclusionsKept
}

// Run syncs m into each of its destinations, one after the other, and
// returns a Result per destination it got to. A destination that fails
// does not stop the others (its environment's segment keeps its last
// state); the error joins every destination's.
func (r *Runner) Run(ctx context.Context, m catalog.Mapping) ([]Result, error) {
	if err := r.runnable(m); err != nil {
		return nil, err
	}
	if m.Source.Kind == catalog.SourceAmplitude {
		c, err := r.amplitudeClient(ctx, m)
		if err != nil {
			return nil, err
		}
		return r.each(ctx, m, func() (source.Source, func() error, error) {
			return c.Source(m.Source.Location, m.IDProperty), func() error { return nil }, nil
		})
	}
	return r.each(ctx, m, func() (source.Source, func() error, error) { return r.open(m) })
}

// amplitudeClient is the client of m's project, with its keys read now.
// An error here fails the run before anything is read or published.
func (r *Runner) amplitudeClient(ctx context.Context, m catalog.Mapping) (*amplitude.Client, error) {
	projects := r.dests.(AmplitudeProjects) // checked by runnable
	p, err := projects.AmplitudeProject(ctx, m.Source.Project)
	if err != nil {
		return nil, fmt.Errorf("mapping %q: %w", m.Name, err)
	}
	lookupEnv, readFile := r.cfg.LookupEnv, r.cfg.ReadFile
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	apiKey, secretKey, err := p.Keys(lookupEnv, readFile)
	if err != nil {
		return nil, fmt.Errorf("mapping %q: %w", m.Name, err)
	}
	opts := r.cfg.Amplitude
	opts.HTTP = r.http
	if opts.Retry == (retry.Policy{}) {
		opts.Retry = r.cfg.Fetch
	}
	c, err := amplitude.New(p.BaseURL, amplitude.Credentials{APIKey: apiKey, SecretKey: secretKey}, opts)
	if err != nil {
		return nil, fmt.Errorf("mapping %q: amplitude project %q: %w", m.Name, p.Name, err)
	}
	return c, nil
}

// Purge removes every member of m's segment from each of its destinations
// through the normal event path: a sync of an empty cohort, diffed against
// what each destination holds, so replicas, the consumer and a replay of
// the topic all see the removals. It runs whatever m's state (a paused
// mapping is purged too) and ignores its max-shrink guard; the caller
// pauses m first so that no scheduled run adds members back.
func (r *Runner) Purge(ctx context.Context, m catalog.Mapping) ([]Result, error) {
	m.MaxShrink = 0
	return r.each(ctx, m, func() (source.Source, func() error, error) {
		return emptySource{name: "purge of mapping " + m.Name}, func() error { return nil }, nil
	})
}

func (r *Runner) each(ctx context.Context, m catalog.Mapping, open func() (source.Source, func() error, error)) ([]Result, error) {
	var results []Result
	var errs []error
	for _, name := range m.Destinations {
		sum, kept, err := r.runDestination(ctx, m, name, open)
		if err != nil {
			err = fmt.Errorf("mapping %q, destination %q: %w", m.Name, name, err)
			errs = append(errs, err)
		}
		results = append(results, Result{Destination: name, Summary: sum, Err: err, Exclusions: kept})
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}

// PurgeSource is the source label of a purge's events.
const PurgeSource = "purge"

// emptySource is the cohort of a purge: nobody.
type emptySource struct{ name string }

func (e emptySource) Name() string { return e.name }
func (emptySource) Kind() string   { return PurgeSource }
func (emptySource) Read(ctx context.Context, _ func(string) error, _ func(source.Exclusion) error) (source.Stats, error) {
	return source.Stats{}, ctx.Err()
}

func (r *Runner) runnable(m catalog.Mapping) error {
	_, pulls := r.dests.(AmplitudeProjects)
	switch {
	case !m.Enabled:
		return fmt.Errorf("mapping %q is paused (cohortsync mappings resume %s): %w", m.Name, m.Name, ErrNotRunnable)
	case m.Source.Kind == catalog.SourcePush:
		return fmt.Errorf("mapping %q is fed by pushes, it has nothing to pull: %w", m.Name, ErrNotRunnable)
	case m.Source.Kind == catalog.SourceAmplitude && !pulls:
		return fmt.Errorf("mapping %q: this runner finds no Amplitude projects: %w", m.Name, ErrNotRunnable)
	case m.Source.Kind == catalog.SourceAmplitude && m.Source.Project == "":
		return fmt.Errorf("mapping %q: amplitude cohort %s names no project: %w", m.Name, m.Source.Location, ErrNotRunnable)
	case m.Source.Kind == catalog.SourceAmplitude:
	case m.Source.Kind != catalog.SourceCSV:
		return fmt.Errorf("mapping %q: source kind %q: %w", m.Name, m.Source.Kind, ErrNotRunnable)
	}
	return nil
}

func (r *Runner) runDestination(ctx context.Context, m catalog.Mapping, name string, open func() (source.Source, func() error, error)) (producer.Summary, *runstore.ExclusionsKept, error) {
	d, err := r.dests.Destination(ctx, name)
	if err != nil {
		return producer.Summary{}, nil, err
	}
	client, err := r.connect(ctx, d)
	if err != nil {
		return producer.Summary{}, nil, err
	}
	in, closeIn, err := open()
	if err != nil {
		return producer.Summary{}, nil, err
	}
	cfg := r.cfg.Producer
	cfg.MaxShrink = m.MaxShrink
	rebuilder := segmentstore.Rebuilder{Client: client, Prefix: d.Prefix(), Wait: r.cfg.RebuildWait}
	opts := []snapshot.Option{snapshot.WithLocker(r.locker), snapshot.WithSharedState(r.seq, rebuilder)}
	id := snapshot.SegmentID{Env: d.Environment, Segment: m.Segment, Generation: m.Generation, ContextKind: m.ContextKind}
	gaps, seen, err := r.gaps.Check(ctx, d.Name, id)
	if err != nil {
		return producer.Summary{}, nil, errors.Join(err, closeIn())
	}
	if gaps != seen {
		// A consumer set aside events of this destination while it was
		// down: it holds less than the snapshot says.
		opts = append(opts, snapshot.WithRebuild(fmt.Sprintf("destination %q missed events while it was unavailable", d.Name)))
	}
	if so, ok := in.(StateOptioner); ok {
		opts = append(opts, so.StateOptions(r.seq, rebuilder)...)
	}
	// Keys erased from the environment stay out (cohortsync erase).
	erased, err := r.erased.Keys(ctx, d.Environment)
	if err != nil {
		return producer.Summary{}, nil, errors.Join(err, closeIn())
	}
	req := producer.SyncRequest{
		Env: d.Environment, Segment: m.Segment, Generation: m.Generation, ContextKind: m.ContextKind,
		Input: source.Without(in, erased, source.ReasonErased), StateOptions: opts,
	}
	if r.observe != nil {
		req.Meter = new(producer.Meter)
		r.observe(d.Name, req.Meter)
	}
	// The writer is made at the run's first exclusion, under the id the
	// run took (the history finds a run by the start time its id spells).
	var excl *runstore.ExclusionWriter
	if r.cfg.Exclusions != nil {
		req.Exclusions = func(ctx context.Context, run string, e source.Exclusion) error {
			if excl == nil {
				excl = r.cfg.Exclusions.NewExclusionWriter(run, d.Name)
			}
			excl.Add(ctx, e) // a history that fails does not fail the run: Close reports it
			return nil
		}
	}
	sum, err := producer.Sync(ctx, cfg, r.kf, req)
	err = errors.Join(err, closeIn())
	kept := r.keepExclusions(ctx, excl, m.Name, name)
	if err == nil && gaps != seen {
		if merr := r.gaps.MarkSeen(ctx, id, gaps); merr != nil {
			// The next run reads the segment back once more: harmless.
			r.log.WarnContext(ctx, "record the repair of a destination's gap", "mapping", m.Name, "destination", name, "error", merr)
		}
	}
	attrs := []any{"mapping", m.Name, "destination", name, "run", sum.Run, "outcome", sum.Outcome,
		"added", sum.Added, "removed", sum.Removed, "members", sum.Keys}
	if sum.Rebuilt != nil {
		attrs = append(attrs, "rebuilt", sum.Rebuilt.Reason)
	}
	if err != nil {
		r.log.WarnContext(ctx, "mapping run failed", append(attrs, "error", err)...)
	} else {
		r.log.InfoContext(ctx, "mapping run", attrs...)
	}
	return sum, kept, err
}

// keepExclusions stores what excl holds yet and says what it kept: nil
// without an ExclusionStore, none kept when the run excluded nothing (no
// writer). Failing to keep them is logged, not the run's failure.
func (r *Runner) keepExclusions(ctx context.Context, excl *runstore.ExclusionWriter, mapping, dest string) *runstore.ExclusionsKept {
	if r.cfg.Exclusions == nil {
		return nil
	}
	if excl == nil {
		return &runstore.ExclusionsKept{}
	}
	kept, err := excl.Close(context.WithoutCancel(ctx))
	if err != nil {
		r.log.WarnContext(ctx, "keep a run's exclusions in the run history", "mapping", mapping, "destination", dest, "kept", kept.Kept, "error", err)
	}
	return &kept
}

// open returns the mapping's source, opened anew for each destination.
func (r *Runner) open(m catalog.Mapping) (source.Source, func() error, error) {
	loc := m.Source.Location
	if isURL(loc) {
		s, err := csvhttp.New(r.http, loc, csvhttp.Options{IDColumn: m.IDProperty, Retry: r.cfg.Fetch})
		return s, func() error { return nil }, err
	}
	s, err := csvfile.Open(loc, csvfile.Options{IDColumn: m.IDProperty})
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

func isURL(loc string) bool {
	l := strings.ToLower(loc)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}
