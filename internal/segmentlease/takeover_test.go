package segmentlease

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/snapshot/snapshottest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// change is one published event, as the consumer sees it.
type change struct {
	op  schema.Op
	key string
	seq uint64
}

// logPub is a Publisher appending every change to a log shared by the
// replicas, as one topic is; onSend (unless nil) runs before each Send.
type logPub struct {
	mu     *sync.Mutex
	log    *[]change
	onSend func()
}

func (p logPub) Send(_ context.Context, batch []snapshot.Change) error {
	if p.onSend != nil {
		p.onSend()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range batch {
		*p.log = append(*p.log, change{c.Op, string(c.Key), c.Seq})
	}
	return nil
}

func (logPub) Wait(context.Context) error { return nil }

// keepLocker remembers the lease it handed out last.
type keepLocker struct {
	*Locker
	last *Lease
}

func (k *keepLocker) Lock(ctx context.Context, id snapshot.SegmentID) (snapshot.Lease, error) {
	l, err := k.Locker.Lock(ctx, id)
	if err == nil {
		k.last = l.(*Lease)
	}
	return l, err
}

func addAll(keys []string) func(add func(string) error) error {
	return func(add func(string) error) error {
		for _, k := range keys {
			if err := add(k); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestReplicaTakesOverAStalledRun: replica A stalls mid-publication (its
// renewals stop, as when the process is killed or frozen); its lease
// expires, replica B opens the segment, recovers A's pending run and syncs
// its own; when A resumes, its commit is refused (ErrLockLost), and the
// members by sequence number are exactly B's cohort: A's late events carry
// numbers below B's.
func TestReplicaTakesOverAStalledRun(t *testing.T) {
	const ttl = 60 * time.Millisecond
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		dir := t.TempDir() // shared by the replicas until state is shared (issue 7 item 5)
		prefix := testenv.Name(t) + ":"
		replica := func() (*keepLocker, *SeqAllocator) {
			l, err := NewLocker(b.Client, Config{Prefix: prefix, TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			return &keepLocker{Locker: l}, newSeq(t, b, prefix)
		}
		var mu sync.Mutex
		var log []change
		open := func(l *keepLocker, a *SeqAllocator) (*snapshot.Store, error) {
			return snapshot.Open(t.Context(), dir, snapshottest.ID, snapshot.WithLocker(l), snapshot.WithSeqAllocator(a))
		}
		syncRun := func(s *snapshot.Store, run string, keys []string, onSend func()) error {
			_, err := s.Sync(t.Context(), run, addAll(keys), func(*snapshot.Phase) (snapshot.Publisher, error) {
				return logPub{mu: &mu, log: &log, onSend: onSend}, nil
			}, snapshot.SyncOptions{SendBatch: 1})
			return err
		}
		closeStore := func(s *snapshot.Store) {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}

		la, sa := replica()
		a, err := open(la, sa)
		if err != nil {
			t.Fatal(err)
		}
		if err := syncRun(a, "r00", []string{"a", "b", "c"}, nil); err != nil {
			t.Fatal(err)
		}

		lb, sb := replica()
		var once sync.Once
		takeOver := func() {
			la.last.stopRenewing()
			deadline := time.Now().Add(5 * time.Second)
			for {
				expire(b, ttl/2)
				s, err := open(lb, sb)
				if errors.Is(err, snapshot.ErrLocked) && time.Now().Before(deadline) {
					continue
				}
				if err != nil {
					t.Errorf("replica B open: %v", err)
					return
				}
				if err := syncRun(s, "r02", []string{"c", "d", "e"}, nil); err != nil {
					t.Errorf("replica B sync: %v", err)
				}
				if s.PendingRun() != "" || s.CommittedRun() != "r02" {
					t.Errorf("replica B: committed %q pending %q, want r02 and nothing pending", s.CommittedRun(), s.PendingRun())
				}
				closeStore(s)
				return
			}
		}
		err = syncRun(a, "r01", []string{"b", "c", "d", "f"}, func() { once.Do(takeOver) })
		if !errors.Is(err, snapshot.ErrLockLost) {
			t.Fatalf("replica A's sync after the takeover = %v, want ErrLockLost", err)
		}
		closeStore(a)

		last := map[string]change{}
		for _, c := range log {
			if l, ok := last[c.key]; !ok || c.seq > l.seq {
				last[c.key] = c
			}
		}
		var members []string
		for k, c := range last {
			if c.op == schema.OpAdd {
				members = append(members, k)
			}
		}
		slices.Sort(members)
		if want := []string{"c", "d", "e"}; !slices.Equal(members, want) {
			t.Fatalf("members by sequence number %v, want %v\nlog %v", members, want, log)
		}
		seqs := map[uint64]bool{}
		for _, c := range log {
			if seqs[c.seq] {
				t.Fatalf("sequence number %d used twice\nlog %v", c.seq, log)
			}
			seqs[c.seq] = true
		}
	})
}
