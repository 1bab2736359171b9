package runwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// Config tunes a Watcher.
type Config struct {
	// GroupID is the consumer group whose commits apply the runs (serve's
	// and consume's --group-id). Required.
	GroupID string
	// Interval is how often Run checks the unapplied runs, and Wait its
	// run. Default DefaultInterval.
	Interval time.Duration
	// Batch bounds how many unapplied runs one check reads. Default
	// DefaultBatch.
	Batch int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnSettled, unless nil, is called with each run this Watcher marked
	// applied or set aside, once per run and destination across replicas
	// (the replica whose mark took the run off the index): notifications.
	OnSettled func(ctx context.Context, r runstore.Record)
}

// Defaults.
const (
	DefaultInterval = time.Second
	DefaultBatch    = 500
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.GroupID == "" {
		errs = append(errs, setting.Missing("group-id", "a Kafka consumer group"))
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < 10*time.Millisecond) {
		errs = append(errs, setting.Invalid("apply-check-interval", c.Interval, "a duration of at least 10ms"))
	}
	if c.Batch < 0 {
		errs = append(errs, setting.Invalid("apply-check-batch", c.Batch, "a positive integer"))
	}
	return errors.Join(errs...)
}

// History is the part of runstore.Store a Watcher uses.
type History interface {
	Unapplied(ctx context.Context, limit int) ([]runstore.Record, error)
	Get(ctx context.Context, id string) ([]runstore.Record, error)
	MarkApplied(ctx context.Context, r runstore.Record, at time.Time, setAside bool) (first bool, err error)
}

// Gaps reads how many times a consumer set events of a destination aside
// (segmentlease.Gaps does).
type Gaps interface {
	Count(ctx context.Context, destination string) (uint64, error)
}

// Watcher marks runs applied.
type Watcher struct {
	cfg     Config
	history History
	kc      freshness.Offsets
	gaps    Gaps
	log     *slog.Logger
}

// New returns a Watcher reading the group's offsets through kc (a
// *kafka.Client).
func New(cfg Config, history History, kc freshness.Offsets, gaps Gaps, log *slog.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if history == nil || kc == nil || gaps == nil {
		return nil, errors.New("runwatch.New: history, offsets and gaps are required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{cfg: cfg, history: history, kc: kc, gaps: gaps, log: log}, nil
}

// Run checks the unapplied runs every Interval until ctx ends; a failed
// check is logged and tried again at the next tick. It returns nil when
// ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "check whether published runs are applied", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check marks each unapplied run whose barrier the group has reached, and
// returns how many it marked. One run's failure (its topic gone, say) does
// not stop the others; the errors are joined.
func (w *Watcher) Check(ctx context.Context) (int, error) {
	runs, err := w.history.Unapplied(ctx, w.cfg.Batch)
	if err != nil {
		return 0, err
	}
	// One offsets read per topic serves every run of this check.
	var (
		marked int
		errs   []error
	)
	read := w.reader()
	for _, r := range runs {
		done, err := w.settle(ctx, r, read)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			marked++
		}
	}
	return marked, errors.Join(errs...)
}

// reader reads the group's offsets on a topic once per use of the reader
// (one check): the committed offsets only grow, so a read that is a little
// old can find a run not yet applied, never one applied too early.
func (w *Watcher) reader() func(ctx context.Context, topic string) (freshness.Committed, time.Time, error) {
	type read struct {
		c  freshness.Committed
		at time.Time
	}
	reads := map[string]read{}
	return func(ctx context.Context, topic string) (freshness.Committed, time.Time, error) {
		if r, ok := reads[topic]; ok {
			return r.c, r.at, nil
		}
		c, err := freshness.ReadCommitted(ctx, w.kc, topic, w.cfg.GroupID)
		if err != nil {
			return freshness.Committed{}, time.Time{}, err
		}
		at := w.cfg.Now() // the commits read were made before the answer came

		reads[topic] = read{c, at}
		return c, at, nil
	}
}

// settle marks r applied (or set aside) if its barrier is reached in the
// offsets read gives.
func (w *Watcher) settle(ctx context.Context, r runstore.Record,
	read func(context.Context, string) (freshness.Committed, time.Time, error)) (bool, error) {
	c, at, err := read(ctx, r.Topic)
	if err != nil {
		return false, fmt.Errorf("run %s into %q: %w", r.ID, r.Destination, err)
	}
	left, err := freshness.Barrier(r.Barrier).Remaining(c)
	if err != nil {
		return false, fmt.Errorf("run %s into %q: %w", r.ID, r.Destination, err)
	}
	if left > 0 {
		return false, nil
	}
	gaps, err := w.gaps.Count(ctx, r.Destination)
	if err != nil {
		return false, fmt.Errorf("run %s into %q: %w", r.ID, r.Destination, err)
	}
	setAside := gaps > r.Gaps
	first, err := w.history.MarkApplied(ctx, r, at, setAside)
	if err != nil {
		return false, err
	}
	if first && w.cfg.OnSettled != nil {
		if setAside {
			r.SetAside = true
		} else {
			r.Applied = at
		}
		w.cfg.OnSettled(ctx, r)
	}
	if setAside {
		w.log.WarnContext(ctx, "run published but events set aside: the destination was unavailable; the next run of the segment repairs it",
			"run", r.ID, "mapping", r.Mapping, "destination", r.Destination)
	}
	return true, nil
}

// ErrNotPublished is wrapped by Wait's error for a run that has a
// destination it did not publish to (it failed or was refused), or whose
// barrier could not be taken: it will never be applied.
var ErrNotPublished = errors.New("not published")

// Wait blocks until every destination's record of run id is applied or set
// aside, checking every Interval, and returns the records as they ended.
// It returns early with ErrNotPublished for a run that cannot be applied,
// and with ctx's error (and the records as they stand) when ctx ends
// first: a consumer that is down leaves the run published, not applied.
func (w *Watcher) Wait(ctx context.Context, id string) ([]runstore.Record, error) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	// ctx bounds the wait; each read is bounded by its own timeout, so a
	// deadline that falls during one still reports the run as it stands.
	rctx := context.WithoutCancel(ctx)
	for {
		rs, err := w.history.Get(rctx, id)
		if err != nil {
			return nil, err
		}
		pending := 0
		read := w.reader()
		for _, r := range rs {
			switch {
			case r.Published.IsZero() || r.Barrier == nil:
				return rs, fmt.Errorf("run %s into %q: %s: %w", id, r.Destination, r.Status(), ErrNotPublished)
			case !r.Applied.IsZero() || r.SetAside:
				continue
			}
			done, err := w.settle(rctx, r, read)
			if err != nil {
				return rs, err
			}
			if !done {
				pending++
			}
		}
		if pending == 0 {
			return w.history.Get(rctx, id)
		}
		select {
		case <-ctx.Done():
			return rs, fmt.Errorf("run %s: %d destination(s) published, not applied: %w", id, pending, ctx.Err())
		case <-t.C:
		}
	}
}
