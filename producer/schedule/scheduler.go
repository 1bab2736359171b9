package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// Catalog is where the mappings come from (catalogstore.Store).
type Catalog interface {
	List(ctx context.Context) ([]catalog.Mapping, error)
}

// Runner runs one mapping: reads its source and syncs its segment. It
// returns an error wrapping snapshot.ErrLocked when another run holds the
// segment; it should return soon after ctx ends.
type Runner interface {
	Run(ctx context.Context, m catalog.Mapping, t Trigger) error
}

// Result is how a run ended, for Config.OnRunDone.
type Result struct {
	Trigger Trigger
	// Err is the Runner's error, or the error recording the outcome.
	Err     error
	Outcome Outcome
	Took    time.Duration
}

// Errors of SyncNow.
var (
	ErrNotFound = errors.New("no such mapping")
	ErrPaused   = errors.New("mapping is paused")
	ErrPush     = errors.New("mapping's source pushes: it runs when a push arrives")
	// ErrBusy: a run of the mapping is in progress.
	ErrBusy = errors.New("a run of the mapping is in progress")
)

// Scheduler decides and starts the runs of the mappings of a Catalog.
type Scheduler struct {
	cfg     Config
	clock   clock
	rdb     redis.UniversalClient
	cat     Catalog
	run     Runner
	log     *slog.Logger
	sem     chan struct{} // one token per run in progress
	running atomic.Bool
}

// New returns a Scheduler on rdb (standalone or Cluster) that runs the
// mappings of cat with run. It fails with *setting.Error values if cfg is
// invalid. log nil is slog.Default().
func New(cfg Config, rdb redis.UniversalClient, cat Catalog, run Runner, log *slog.Logger) (*Scheduler, error) {
	if rdb == nil || cat == nil || run == nil {
		return nil, errors.New("schedule.New: nil Redis client, catalog or runner")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{
		cfg: cfg, clock: clock{loc: cfg.Location, maxJitter: cfg.MaxJitter},
		rdb: rdb, cat: cat, run: run, log: log, sem: make(chan struct{}, cfg.MaxConcurrent),
	}, nil
}

// Run looks at the catalog every Tick and starts the due runs, until ctx
// ends; then it waits for the runs in progress (whose ctx ends too) and
// returns nil. Errors of one tick (an unreachable Redis, a failing run) are
// logged and reported to the observers, and the next tick tries again.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("schedule: Run called twice")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		s.tick(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tick decides about every mapping once, starting the due runs in wg.
func (s *Scheduler) tick(ctx context.Context, wg *sync.WaitGroup) {
	ms, err := s.list(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("schedule: list mappings", "err", err)
		}
		return
	}
	var todo []catalog.Mapping
	for _, m := range ms {
		if d, ok := skip(m); ok {
			s.observe(m, d)
			continue
		}
		todo = append(todo, m)
	}
	if len(todo) == 0 {
		return
	}
	sts, errs := s.readStates(ctx, todo)
	now := s.cfg.Clock()
	for i, m := range todo {
		if ctx.Err() != nil {
			return
		}
		if errs[i] != nil {
			s.log.Error("schedule: read state", "mapping", m.Name, "err", errs[i])
			s.observe(m, Decision{Action: ActionError, Err: errs[i]})
			continue
		}
		d, c := s.clock.decide(m, sts[i], now)
		if d.Action == ActionRun {
			d = s.start(ctx, wg, m, d, c)
		}
		s.observe(m, d)
	}
}

func (s *Scheduler) list(ctx context.Context) ([]catalog.Mapping, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.cat.List(ctx)
}

// start claims c and starts the run of m in wg, or says why not.
func (s *Scheduler) start(ctx context.Context, wg *sync.WaitGroup, m catalog.Mapping, d Decision, c claim) Decision {
	select {
	case s.sem <- struct{}{}:
	default:
		d.Action = ActionBusy
		return d
	}
	cl, detail, err := s.take(ctx, m, c)
	if err != nil {
		<-s.sem
		return refused(d, detail, err)
	}
	wg.Go(func() {
		defer func() { <-s.sem }()
		s.execute(ctx, m, d.Trigger, cl)
	})
	return d
}

// refused is d after the claim script refused it (another replica acted
// since the state was read) or failed.
func refused(d Decision, detail string, err error) Decision {
	switch {
	case errors.Is(err, errClaimHeld):
		d.Action, d.Holder = ActionClaimed, detail
	case errors.Is(err, errClaimDone):
		d = Decision{Action: ActionUpToDate}
	case errors.Is(err, errClaimBackoff):
		d.Action = ActionBackoff
		if ms, perr := millis(detail); perr == nil {
			d.Next = ms
		}
	default:
		d = Decision{Action: ActionError, Trigger: d.Trigger, Err: err}
	}
	return d
}

// execute runs m under the claim cl, renewing it meanwhile, and records
// the outcome.
func (s *Scheduler) execute(ctx context.Context, m catalog.Mapping, t Trigger, cl claimed) Result {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var renewing sync.WaitGroup
	renewing.Go(func() {
		s.renew(ctx, m.Name, cl, stop, func(err error) {
			s.log.Warn("schedule: claim lost, stopping the run", "mapping", m.Name, "err", err)
			cancel(err)
		})
	})
	s.log.Info("schedule: run", "mapping", m.Name, "trigger", t.Kind, "slot", t.Slot, "attempt", t.Attempt)
	began := time.Now()
	err := s.run.Run(runCtx, m, t)
	took := time.Since(began)
	close(stop)
	renewing.Wait()

	how := "ok"
	switch {
	case err == nil:
	case errors.Is(err, snapshot.ErrLocked), ctx.Err() != nil:
		// Not an attempt: another run holds the segment, or this replica
		// is stopping; the slot stays due for the next tick or replica.
		how = "release"
	default:
		how = "fail"
	}
	out, ferr := s.finish(ctx, m.Name, cl, how)
	res := Result{Trigger: t, Err: errors.Join(err, ferr), Outcome: out, Took: took}
	attrs := []any{"mapping", m.Name, "trigger", t.Kind, "slot", t.Slot, "attempt", t.Attempt, "outcome", out, "took", took}
	if res.Err != nil {
		s.log.Warn("schedule: run ended", append(attrs, "err", res.Err)...)
	} else {
		s.log.Info("schedule: run ended", attrs...)
	}
	if s.cfg.OnRunDone != nil {
		s.cfg.OnRunDone(m, res)
	}
	return res
}

// SyncNow runs the mapping called name now, outside its schedule, and
// returns the Runner's error. It claims the mapping like a scheduled run, so
// it fails with ErrBusy while another run of the mapping is in progress on
// any replica; it records no slot as done. A paused mapping (ErrPaused) or
// a push source (ErrPush) is refused.
func (s *Scheduler) SyncNow(ctx context.Context, name string) error {
	ms, err := s.list(ctx)
	if err != nil {
		return fmt.Errorf("schedule: sync %q: %w", name, err)
	}
	var m catalog.Mapping
	found := false
	for _, x := range ms {
		if x.Name == name {
			m, found = x, true
			break
		}
	}
	if !found {
		return fmt.Errorf("schedule: sync %q: %w", name, ErrNotFound)
	}
	if d, ok := skip(m); ok {
		s.observe(m, d)
		if d.Action == ActionPaused {
			return fmt.Errorf("schedule: sync %q: %w (resume it first)", name, ErrPaused)
		}
		return fmt.Errorf("schedule: sync %q: %w", name, ErrPush)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("schedule: sync %q: %w", name, ctx.Err())
	}
	defer func() { <-s.sem }()
	d := Decision{Action: ActionRun, Trigger: Trigger{Kind: TriggerManual, Attempt: 1}}
	cl, detail, err := s.take(ctx, m, claim{id: modeManual, mode: modeManual})
	if err != nil {
		d = refused(d, detail, err)
		s.observe(m, d)
		if d.Action == ActionClaimed {
			return fmt.Errorf("schedule: sync %q: %w (claim %s)", name, ErrBusy, detail)
		}
		return fmt.Errorf("schedule: sync %q: %w", name, err)
	}
	s.observe(m, d)
	return s.execute(ctx, m, d.Trigger, cl).Err
}

func (s *Scheduler) observe(m catalog.Mapping, d Decision) {
	if s.cfg.OnDecision != nil {
		s.cfg.OnDecision(m, d)
	}
}
