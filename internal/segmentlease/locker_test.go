package segmentlease

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/snapshot/snapshottest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// newLocker returns a Locker on b with keys no other test sees.
func newLocker(t *testing.T, b testenv.RedisBackend, ttl time.Duration) *Locker {
	t.Helper()
	l, err := NewLocker(b.Client, Config{Prefix: testenv.Name(t) + ":", TTL: ttl, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// expire lets d pass for the lease keys of b: miniredis only expires keys
// when told to.
func expire(b testenv.RedisBackend, d time.Duration) {
	if b.Miniredis != nil {
		b.Miniredis.FastForward(d)
		return
	}
	time.Sleep(d)
}

func TestLockerConformance(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		// A TTL far above the tests' length: conformance is about
		// exclusion, not expiry.
		snapshottest.LockerConformance(t, func(t *testing.T) snapshot.Locker { return newLocker(t, b, time.Minute) })
	})
}

func mustLease(t *testing.T, l *Locker) *Lease {
	t.Helper()
	return snapshottest.MustLock(t, l, snapshottest.ID).(*Lease)
}

// TestLeaseOfAKilledHolderExpires: a holder that stops renewing without
// unlocking (a killed process) keeps the segment until the TTL runs out;
// then another replica takes it with a larger token and the old holder's
// Check fails, so it could never commit.
func TestLeaseOfAKilledHolderExpires(t *testing.T) {
	const ttl = 60 * time.Millisecond
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		l := newLocker(t, b, ttl)
		dead := mustLease(t, l)
		dead.stopRenewing()
		defer unlockOK(t, dead)
		if _, err := l.Lock(t.Context(), snapshottest.ID); !errors.Is(err, snapshot.ErrLocked) {
			t.Fatalf("Lock before the TTL = %v, want ErrLocked", err)
		}
		var next *Lease
		deadline := time.Now().Add(5 * time.Second)
		for next == nil {
			expire(b, ttl/2)
			lease, err := l.Lock(t.Context(), snapshottest.ID)
			switch {
			case err == nil:
				next = lease.(*Lease)
			case !errors.Is(err, snapshot.ErrLocked):
				t.Fatal(err)
			case time.Now().After(deadline):
				t.Fatalf("the dead holder's lease did not expire within 5s of a %v TTL", ttl)
			}
		}
		defer unlockOK(t, next)
		if next.Token() <= dead.Token() {
			t.Fatalf("token %d after %d: fencing tokens must grow", next.Token(), dead.Token())
		}
		if err := dead.Check(t.Context()); !errors.Is(err, snapshot.ErrLockLost) {
			t.Fatalf("Check of the dead holder = %v, want ErrLockLost", err)
		}
		if err := next.Check(t.Context()); err != nil {
			t.Fatalf("Check of the new holder = %v", err)
		}
		// The dead holder's Unlock (deferred) must leave the new lease alone.
		if err := dead.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := next.Check(t.Context()); err != nil {
			t.Fatalf("Check of the new holder after the old one unlocked = %v", err)
		}
	})
}

// TestLeaseRenewsAndReportsLoss: a live holder keeps the segment past many
// TTLs by renewing; when its key is taken from it, its renewal notices and
// Lost fires with an error wrapping ErrLockLost.
func TestLeaseRenewsAndReportsLoss(t *testing.T) {
	const ttl = 90 * time.Millisecond
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		l := newLocker(t, b, ttl)
		lease := mustLease(t, l)
		defer unlockOK(t, lease)
		// Without renewals the key would expire here; renewals (every
		// TTL/3) in the real-time pause reset it.
		if b.Miniredis != nil {
			b.Miniredis.FastForward(2 * ttl / 3)
			time.Sleep(3 * ttl)
			b.Miniredis.FastForward(2 * ttl / 3)
		} else {
			time.Sleep(4 * ttl)
		}
		if err := lease.Check(t.Context()); err != nil {
			t.Fatalf("Check after renewals = %v", err)
		}
		// Another holder takes over, as after an expiry the renewer missed.
		if err := b.Client.Set(t.Context(), l.cfg.key(snapshottest.ID, "lease"), "999999", 0).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-lease.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("Lost did not fire within 5s of the lease being taken")
		}
		if err := lease.Err(); !errors.Is(err, snapshot.ErrLockLost) {
			t.Fatalf("Err = %v, want ErrLockLost", err)
		}
		if err := lease.Check(t.Context()); !errors.Is(err, snapshot.ErrLockLost) {
			t.Fatalf("Check = %v, want ErrLockLost", err)
		}
	})
}

// TestSecondLockNamesTheHolderToken: the refusal says whose the lease is.
func TestSecondLockNamesTheHolderToken(t *testing.T) {
	b := testenv.Redis(t)
	l := newLocker(t, b, time.Minute)
	lease := mustLease(t, l)
	defer lease.Unlock()
	_, err := l.Lock(t.Context(), snapshottest.ID)
	if want := "holder token " + lease.token; !errors.Is(err, snapshot.ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Lock = %v, want ErrLocked naming %q", err, want)
	}
}

// eachRedis runs test as a subtest on every Redis deployment available.
func eachRedis(t *testing.T, test func(t *testing.T, b testenv.RedisBackend)) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) { test(t, b) })
	}
}

func unlockOK(t *testing.T, l snapshot.Lease) {
	t.Helper()
	if err := l.Unlock(); err != nil {
		t.Errorf("unlock: %v", err)
	}
}
