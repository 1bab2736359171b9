package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of the zero fields of a Policy.
const (
	DefaultInitial = 100 * time.Millisecond
	DefaultMax     = 5 * time.Second
	DefaultTimeout = 2 * time.Minute
)

// Policy is how long to wait between attempts and when to give up. Waits
// grow exponentially (by 1.5, randomized by ±50% so that the members of a
// group do not retry in step) from Initial to Max.
type Policy struct {
	// Initial is the wait after the first failure. Default 100ms; the
	// consumer uses 20ms, as a batch waiting on a blip of Redis holds up
	// the whole pipeline.
	Initial time.Duration
	// Max bounds each wait before randomization (so a wait is at most
	// 1.5×Max). Default 5s: a dependency that comes back is noticed within
	// seconds.
	Max time.Duration
	// Timeout bounds the retries of one failure: Do gives up rather than
	// wait past Timeout after the first attempt began. Default 2m.
	Timeout time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	return p
}

// Do runs op until it returns nil, returns an error wrapped in
// backoff.Permanent, ctx ends or p.Timeout passes. Before each wait it calls
// notify (when not nil) with op's error and the wait, so that a slow call
// says why while it waits, not only when it gives up.
//
// The error returned names what and wraps op's last error (unwrapped from
// backoff.Permanent); when ctx ended the retries it wraps ctx's error too,
// so errors.Is(err, context.Canceled) holds.
func Do(ctx context.Context, p Policy, what string, op func() error, notify func(err error, wait time.Duration)) error {
	return do(ctx, p, what, op, notify, backoff.SystemClock, nil)
}

// do is Do with the clock and timer of the waits injected, for tests.
func do(ctx context.Context, p Policy, what string, op func() error, notify func(error, time.Duration),
	clock backoff.Clock, timer backoff.Timer) error {
	p = p.withDefaults()
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMaxElapsedTime(p.Timeout),
		backoff.WithClockProvider(clock),
	)
	var last error
	start := clock.Now()
	next := &afterBackOff{BackOff: b, last: &last, left: func() time.Duration { return p.Timeout - clock.Now().Sub(start) }}
	err := backoff.RetryNotifyWithTimer(func() error {
		last = op()
		return last
	}, backoff.WithContext(next, ctx), notify, timer)
	if err == nil {
		return nil
	}
	var perm *backoff.PermanentError
	if errors.As(last, &perm) {
		last = perm.Err
	}
	// backoff returns ctx's error alone when ctx ends the retries: keep
	// the error that was being retried, it is the one worth logging.
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) && last != nil && !errors.Is(last, ctxErr) {
		return fmt.Errorf("%s: %w (last error: %w)", what, ctxErr, last)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// After marks err as retryable no sooner than wait from now, as a server
// says with an HTTP Retry-After: Do waits the longer of wait and its own
// backoff before the next attempt, and gives up at once (returning err)
// when wait would reach past the policy's Timeout.
func After(err error, wait time.Duration) error { return &afterError{err: err, wait: wait} }

type afterError struct {
	err  error
	wait time.Duration
}

func (e *afterError) Error() string { return e.err.Error() }
func (e *afterError) Unwrap() error { return e.err }

// afterBackOff is a backoff that honours the wait an After error asks for.
type afterBackOff struct {
	backoff.BackOff
	last *error
	left func() time.Duration // of the policy's Timeout
}

func (a *afterBackOff) NextBackOff() time.Duration {
	d := a.BackOff.NextBackOff()
	var ae *afterError
	if d == backoff.Stop || !errors.As(*a.last, &ae) || ae.wait <= d {
		return d
	}
	if ae.wait > a.left() {
		return backoff.Stop
	}
	return ae.wait
}

// Permanent marks err as one retrying cannot fix: Do returns it at once.
// It is backoff.Permanent, named here so that callers of Do need no second
// import.
func Permanent(err error) error { return backoff.Permanent(err) }

// IsPermanent reports whether err is marked Permanent.
func IsPermanent(err error) bool {
	var pe *backoff.PermanentError
	return errors.As(err, &pe)
}
