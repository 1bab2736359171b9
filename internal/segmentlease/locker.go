package segmentlease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// acquire takes the lease key (KEYS[1]) if nobody holds it, with a fresh
// token from the fence counter (KEYS[2]) and a TTL of ARGV[1] ms. It returns
// {1, token} or {0, holder's token}. One script, so no token is drawn for a
// lease that is not taken, and the token is read back as the exact string
// the counter holds.
var acquire = redis.NewScript(`
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
redis.call('INCR', KEYS[2])
local token = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return {1, token}
`)

// renew extends the lease key's TTL to ARGV[2] ms if it still holds our
// token ARGV[1]: 1 if renewed, 0 if the lease is gone or someone else's.
var renew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// release deletes the lease key only if it still holds our token ARGV[1]:
// a holder whose lease expired must not free the next holder's.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Locker is a snapshot.Locker whose leases live in Redis, shared by every
// replica using the same Redis and Prefix.
type Locker struct{ control }

// NewLocker returns a Locker on rdb (standalone or Cluster). It fails with
// *setting.Error values if cfg is invalid.
func NewLocker(rdb redis.UniversalClient, cfg Config) (*Locker, error) {
	c, err := newControl(rdb, cfg)
	if err != nil {
		return nil, err
	}
	return &Locker{c}, nil
}

// Lock takes the lease of id without waiting and starts renewing it; the
// renewal stops with Unlock. ctx bounds the acquisition only: the lease
// lives until Unlock or until it is lost.
func (l *Locker) Lock(ctx context.Context, id snapshot.SegmentID) (snapshot.Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", id, err)
	}
	key := l.cfg.key(id, "lease")
	actx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := acquire.Run(actx, l.rdb, []string{key, l.cfg.key(id, "fence")}, l.cfg.TTL.Milliseconds()).Slice()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", id, err)
	}
	got, token, err := acquireResult(res)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", id, err)
	}
	if !got {
		return nil, fmt.Errorf("lock %s: %w (holder token %s, key %s)", id, snapshot.ErrLocked, token, key)
	}
	n, err := strconv.ParseUint(token, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("lock %s: fencing token %q: %w", id, token, err)
	}
	// The lease outlives ctx (a sync run's context may be cancelled while
	// the lease must still be released), so it keeps ctx's values only.
	base := context.WithoutCancel(ctx)
	rctx, stop := context.WithCancel(base)
	lease := &Lease{
		locker: l, id: id, key: key, token: token, fence: n, base: base,
		stop: stop, done: make(chan struct{}), lost: make(chan struct{}),
	}
	go lease.renewLoop(rctx, time.Now())
	return lease, nil
}

func acquireResult(res []any) (got bool, token string, err error) {
	if len(res) != 2 {
		return false, "", fmt.Errorf("unexpected reply %v", res)
	}
	flag, ok1 := res[0].(int64)
	token, ok2 := res[1].(string)
	if !ok1 || !ok2 {
		return false, "", fmt.Errorf("unexpected reply %v", res)
	}
	return flag == 1, token, nil
}

// Lease is a held segment lease. It is safe for concurrent use.
type Lease struct {
	locker *Locker
	id     snapshot.SegmentID
	key    string
	token  string
	fence  uint64
	base   context.Context // for Unlock's release, after the Lock ctx may be gone

	stop context.CancelFunc // stops renewLoop
	done chan struct{}      // closed when renewLoop has returned

	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	err      error // why the lease is lost

	unlockOnce sync.Once
	unlockErr  error
}

// Token is the lease's fencing token: larger than every token handed out
// for the segment before it. A store shared by replicas can refuse writes
// carrying a token below the largest it has seen.
func (l *Lease) Token() uint64 { return l.fence }

// Lost is closed when the lease is known to be lost (a renewal found another
// token or none, or renewals failed for a whole TTL); the run holding it
// should stop, as its commit would fail.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is nil while the lease is held, else why it was lost (wrapping
// snapshot.ErrLockLost).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Lease) markLost(err error) error {
	l.lostOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.lost)
	})
	return l.Err()
}

// renewLoop extends the lease every TTL/3 until ctx is cancelled or the
// lease is lost. held is when the key last got its full TTL (measured before
// the call that set it, so the estimate errs early).
func (l *Lease) renewLoop(ctx context.Context, held time.Time) {
	defer close(l.done)
	ttl := l.locker.cfg.TTL
	every := ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		cctx, cancel := context.WithTimeout(ctx, every)
		n, err := renew.Run(cctx, l.locker.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && n == 1:
			held = sent
		case err == nil:
			_ = l.markLost(fmt.Errorf("lease of %s: %w: token %s no longer holds %s", l.id, snapshot.ErrLockLost, l.token, l.key))
			return
		case time.Since(held) >= ttl:
			_ = l.markLost(fmt.Errorf("lease of %s: %w: not renewed for %v, last error: %w", l.id, snapshot.ErrLockLost, time.Since(held).Round(time.Millisecond), err))
			return
		}
		// A failed renewal is retried at the next tick while the key may
		// still live.
	}
}

// Check returns nil if the lease key still holds our token, an error
// wrapping snapshot.ErrLockLost if it does not (or the lease was already
// known lost), or the Redis error if Redis could not say.
func (l *Lease) Check(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, l.locker.cfg.Timeout)
	defer cancel()
	v, err := l.locker.rdb.Get(cctx, l.key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return l.markLost(fmt.Errorf("lease of %s: %w: %s expired", l.id, snapshot.ErrLockLost, l.key))
	case err != nil:
		return fmt.Errorf("check lease of %s: %w", l.id, err)
	case v != l.token:
		return l.markLost(fmt.Errorf("lease of %s: %w: %s is held by token %s, ours is %s", l.id, snapshot.ErrLockLost, l.key, v, l.token))
	}
	return nil
}

// stopRenewing stops the renewal goroutine and waits for it.
func (l *Lease) stopRenewing() {
	l.stop()
	<-l.done
}

// Unlock stops the renewal and deletes the lease key if it still holds our
// token. It is idempotent; if Redis cannot be reached the key expires after
// the TTL and the error says so.
func (l *Lease) Unlock() error {
	l.unlockOnce.Do(func() {
		l.stopRenewing()
		ctx, cancel := context.WithTimeout(l.base, l.locker.cfg.Timeout)
		defer cancel()
		if err := release.Run(ctx, l.locker.rdb, []string{l.key}, l.token).Err(); err != nil {
			l.unlockErr = fmt.Errorf("unlock %s (the lease expires within %v): %w", l.id, l.locker.cfg.TTL, err)
		}
	})
	return l.unlockErr
}
