package freshness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// Config configures a Tracker. The consumer fills it from its own Config.
type Config struct {
	// Topic is the membership topic whose offsets are checked. Required.
	Topic string
	// GroupID is the consumer group whose committed offsets are checked.
	// Required.
	GroupID string
	// SyncInterval is how often a check runs without being asked (see Run).
	// Required, > 0.
	SyncInterval time.Duration
	// RetryTimeout is the consumer's retry bound; a tenth of it is added to
	// the health limit (see Health), so one slow retry does not fail the
	// probe. Default 0.
	RetryTimeout time.Duration
	// Logger receives the failed checks. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, setting.Missing("topic", "the membership topic"))
	}
	if c.GroupID == "" {
		errs = append(errs, setting.Missing("group-id", "the consumer group"))
	}
	if c.SyncInterval <= 0 {
		errs = append(errs, setting.Invalid("sync-interval", c.SyncInterval, "a positive duration"))
	}
	if c.RetryTimeout < 0 {
		errs = append(errs, setting.Invalid("retry-timeout", c.RetryTimeout, "a positive duration"))
	}
	return errors.Join(errs...)
}

// SyncTime is where a reached watermark is written: the consumer adapts
// segmentstore.Writer.SetSynchronizedOn with every prefix it writes.
type SyncTime interface {
	SetSynchronizedOn(ctx context.Context, t time.Time) error
}

// Deps are the Tracker's collaborators.
type Deps struct {
	// Offsets reads the topic's and the group's offsets (a *kafka.Client).
	// Required.
	Offsets Offsets
	// SyncTime writes synchronized_on. Required.
	SyncTime SyncTime
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// ErrStopped is returned by WaitCaughtUp once Run has returned.
var ErrStopped = errors.New("consumer stopped")

// Tracker runs the lag checks of one consumer group member and moves
// synchronized_on to the newest watermark the group has reached. Create it
// with New; Run it once.
type Tracker struct {
	cfg  Config
	log  *slog.Logger
	kc   Offsets
	sync SyncTime
	now  func() time.Time

	running atomic.Bool
	done    chan struct{} // closed when Run returns
	kick    chan struct{} // asks Run for a check now (capacity 1)

	committed  atomic.Int64 // messages committed, for the lag estimate
	syncErrors atomic.Int64
	lag        atomic.Int64 // -1 before the first successful check
	lastSync   atomic.Int64 // unix ns of the last synchronized_on written; 0 none

	mu          sync.Mutex
	startedAt   time.Time     // when Run started; zero before
	checked     chan struct{} // closed and replaced after every check
	caughtUpAt  time.Time     // the newest watermark reached: everything produced before it is in Redis
	lastCheckOK time.Time     // end of the last check that succeeded
	lastCheck   time.Time     // end of the last check, whatever its outcome
	wmBase      int64         // committed count when the last check started
	wmLag       int64         // messages below the pending watermark not committed at that check

	// Owned by the check in progress: checkMu keeps checks one at a time.
	checkMu     sync.Mutex
	pending     *watermark // the watermark the group has yet to reach; nil: the next check takes one
	lastWritten time.Time  // the last synchronized_on written by this process
}

// New returns a Tracker; it touches no network until Run or Check.
func New(cfg Config, deps Deps) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Offsets == nil || deps.SyncTime == nil {
		return nil, errors.New("freshness.New: Deps.Offsets and Deps.SyncTime are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tracker{
		cfg:     cfg,
		log:     cfg.Logger,
		kc:      deps.Offsets,
		sync:    deps.SyncTime,
		now:     deps.Now,
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		checked: make(chan struct{}),
	}
	t.lag.Store(-1)
	return t, nil
}

// Run runs a check every SyncInterval and whenever one is asked for
// (Committed, WaitCaughtUp), until ctx ends; then it returns nil, and
// WaitCaughtUp returns ErrStopped. Run may be called once.
func (t *Tracker) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("freshness: Run called twice")
	}
	defer close(t.done)
	t.mu.Lock()
	t.startedAt = t.now()
	t.mu.Unlock()
	tick := time.NewTicker(t.cfg.SyncInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-t.kick:
		}
		t.Check(ctx)
	}
	return nil
}

// Committed reports that the apply path committed n more messages. It
// asks for a check as soon as the pending watermark may be reached (an
// estimate: other members commit other partitions, which the ticker's
// checks cover).
func (t *Tracker) Committed(n int64) {
	total := t.committed.Add(n)
	t.mu.Lock()
	maybeReached := t.wmLag-(total-t.wmBase) <= 0
	t.mu.Unlock()
	if maybeReached {
		t.kickCheck()
	}
}

func (t *Tracker) kickCheck() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// WaitCaughtUp blocks until the group has reached a watermark taken after
// the call (its committed offsets reached the end offsets listed then) and
// synchronized_on says so: every message produced before the call is then in
// Redis. It returns ErrStopped once Run has returned.
func (t *Tracker) WaitCaughtUp(ctx context.Context) error {
	since := t.now()
	t.kickCheck()
	for {
		t.mu.Lock()
		ok := !t.caughtUpAt.Before(since)
		ch := t.checked
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.done:
			return ErrStopped
		case <-ch:
		}
	}
}

// Check reads the group's offsets and moves every prefix's
// big_segments_synchronized_on to the newest watermark the group has
// reached (see watermark). A check that finds no lag reaches a watermark
// of its own: its start. Otherwise it checks the pending watermark, taken
// by an earlier check, and takes a new one when that is reached (or there
// is none), so that under a steady flow of new events synchronized_on
// still advances, one watermark behind, while it never claims an event
// that is not yet applied. synchronized_on never moves backwards within
// this process. Run calls it; tests call it directly.
func (t *Tracker) Check(ctx context.Context) {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	start := t.now() // before the offsets are listed
	base := t.committed.Load()
	cctx, cancel := context.WithTimeout(ctx, t.checkTimeout())
	defer cancel()
	var (
		reached, next *watermark
		lag, wmLag    int64
	)
	offs, err := groupOffsets(cctx, t.kc, t.cfg.Topic, t.cfg.GroupID)
	if err == nil {
		lag = totalLag(offs)
		rem, ok := int64(0), false
		if t.pending != nil {
			rem, ok = t.pending.remaining(offs)
		}
		switch {
		case lag == 0:
			reached, next = newWatermark(start, offs), nil
		case ok && rem == 0:
			reached, next, wmLag = t.pending, newWatermark(start, offs), lag
		case ok:
			next, wmLag = t.pending, rem
		default: // none pending, or the partitions changed under it
			next, wmLag = newWatermark(start, offs), lag
		}
		if reached != nil && reached.t.UnixMilli() > t.lastWritten.UnixMilli() {
			if err = t.sync.SetSynchronizedOn(cctx, reached.t); err == nil {
				t.lastWritten = reached.t
				t.lastSync.Store(reached.t.UnixNano())
			} else {
				err = fmt.Errorf("write synchronized_on: %w", err)
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastCheck = t.now()
	defer func() {
		close(t.checked)
		t.checked = make(chan struct{})
	}()
	if err != nil {
		// The pending watermark stays: the next check retries it.
		if ctx.Err() == nil {
			t.syncErrors.Add(1)
			t.log.Warn("lag check or synchronized_on update failed", "err", err)
		}
		return
	}
	t.lastCheckOK = t.now()
	t.lag.Store(lag)
	t.pending = next
	t.wmBase, t.wmLag = base, wmLag
	if reached != nil && reached.t.After(t.caughtUpAt) {
		t.caughtUpAt = reached.t
	}
}

// Health fails when the last successful lag check is older than three sync
// intervals (plus a tenth of RetryTimeout): Kafka or Redis unreachable for
// that long, which is what an evaluator would notice. Lag itself is not
// unhealthy: a consumer catching up is working, and so is one whose Run
// has not started yet (the consumer starts it after its preflight, which
// has retries of its own: a liveness probe must not restart a process that
// waits for Redis or Kafka to come up).
func (t *Tracker) Health() error {
	t.mu.Lock()
	last, started := t.lastCheckOK, t.startedAt
	t.mu.Unlock()
	limit := 3*t.cfg.SyncInterval + t.cfg.RetryTimeout/10
	if last.IsZero() {
		if !started.IsZero() && t.now().Sub(started) > limit {
			return errors.New("no successful lag check since start")
		}
		return nil
	}
	if age := t.now().Sub(last); age > limit {
		return fmt.Errorf("last successful lag check %v ago", age.Round(time.Millisecond))
	}
	return nil
}

// Alive fails when no check has ended, successful or not, for three sync
// intervals plus the bound of one check: the loop that checks is stuck.
// Unlike Health it does not fail while Kafka or Redis is unreachable (a
// check that fails ends): a liveness probe that restarted every replica
// during an outage would not bring the outage to an end.
func (t *Tracker) Alive() error {
	t.mu.Lock()
	last, started := t.lastCheck, t.startedAt
	t.mu.Unlock()
	if started.IsZero() {
		return nil
	}
	if last.Before(started) {
		last = started
	}
	if age, limit := t.now().Sub(last), 3*t.cfg.SyncInterval+t.checkTimeout(); age > limit {
		return fmt.Errorf("no lag check has ended for %v", age.Round(time.Millisecond))
	}
	return nil
}

// checkTimeout bounds one check.
func (t *Tracker) checkTimeout() time.Duration { return max(t.cfg.SyncInterval, 10*time.Second) }

// Lag is the group's uncommitted messages on the topic at the last
// successful check (end offset minus committed offset, over all
// partitions); -1 before the first.
func (t *Tracker) Lag() int64 { return t.lag.Load() }

// LastSync is the last synchronized_on value written; zero if none.
func (t *Tracker) LastSync() time.Time {
	if ns := t.lastSync.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// SyncErrors counts failed lag checks or synchronized_on writes.
func (t *Tracker) SyncErrors() int64 { return t.syncErrors.Load() }
