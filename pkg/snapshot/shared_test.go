package snapshot

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// sharedWorld is what replicas share: a sequence counter (the control
// Redis) and a destination that applies every published event at once (a
// consumer that is always caught up), read back through Rebuilder.
type sharedWorld struct {
	high    uint64
	log     []event
	members int // calls of Members
	fail    error
}

func (w *sharedWorld) Reserve(_ context.Context, _ SegmentID, floor, n uint64) (SeqRange, error) {
	first := max(w.high+1, floor)
	w.high = first + n - 1
	return SeqRange{First: first, Last: w.high}, nil
}

func (w *sharedWorld) High(context.Context, SegmentID) (uint64, error) { return w.high, nil }

func (w *sharedWorld) LastSeq(context.Context, SegmentID) (uint64, error) {
	var last uint64
	for _, e := range w.log {
		last = max(last, e.seq)
	}
	return last, nil
}

func (w *sharedWorld) Members(_ context.Context, _ SegmentID, add func(string) error) error {
	w.members++
	if w.fail != nil {
		return w.fail
	}
	for _, k := range slices.Sorted(maps.Keys(membership(w.log))) {
		if err := add(k); err != nil {
			return err
		}
	}
	return nil
}

// syncShared runs one sync of keys from stateDir with shared state.
func syncShared(t *testing.T, w *sharedWorld, stateDir, run string, keys []string, c crash) (SyncResult, bool) {
	t.Helper()
	return syncRunWith(t, stateDir, run, keys, &w.log, c, nil, WithSharedState(w, w))
}

// TestLostStateDirectory pins issue 7's lost-disk bug: a sync whose state
// directory is gone diffed the new cohort against nothing, so members that
// left were never removed. With shared state the committed snapshot is
// rebuilt from the destination and the destination ends exact.
func TestLostStateDirectory(t *testing.T) {
	first, smaller := []string{"a", "b", "c", "d"}, []string{"b", "e"}

	t.Run("shared state rebuilds", func(t *testing.T) {
		w := &sharedWorld{}
		syncShared(t, w, t.TempDir(), "r1", first, noCrash)
		lost := t.TempDir() // the first directory is never seen again
		syncShared(t, w, lost, "r2", smaller, noCrash)
		checkFinal(t, lost, w.log, smaller, "r2")
	})

	t.Run("local state alone keeps members that left", func(t *testing.T) {
		// The behaviour WithSharedState exists for: without it the removed
		// members a, c and d stay in the destination.
		var log []event
		syncRun(t, t.TempDir(), "r1", first, &log, noCrash)
		syncRun(t, t.TempDir(), "r2", smaller, &log, noCrash)
		if got := membership(log); maps.Equal(got, setOf(smaller)) {
			t.Fatalf("membership %v is exact without shared state; the test no longer shows the bug", got)
		}
	})
}

// TestReplicasAlternate: two replicas, each with its own directory, take
// turns syncing one segment; each sees the other's runs through the shared
// counter and rebuilds, so the destination follows every snapshot.
func TestReplicasAlternate(t *testing.T) {
	w := &sharedWorld{}
	dirs := []string{t.TempDir(), t.TempDir()}
	runs := []string{"r0", "r1", "r2", "r3"}
	for i, keys := range history {
		dir := dirs[i%2]
		s, err := Open(context.Background(), dir, testID, WithSharedState(w, w))
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Sync(context.Background(), runs[i], addAll(keys), samePub(&fakePub{log: &w.log, failAfter: -1}), SyncOptions{SendBatch: 2})
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("run %s: %v", runs[i], err)
		}
		if (res.Rebuilt != nil) != (i > 0) {
			t.Fatalf("run %s: Rebuilt = %+v, want a rebuild exactly when the other replica ran last", runs[i], res.Rebuilt)
		}
		if got := membership(w.log); !maps.Equal(got, setOf(keys)) {
			t.Fatalf("after run %s: membership %v, want %v", runs[i], slices.Sorted(maps.Keys(got)), keys)
		}
	}
	checkFinal(t, dirs[1], w.log, history[3], "r3")
}

// TestTakeoverAfterACrashAtEveryPoint: one replica dies at every point of a
// run; another replica, with a directory of its own, runs next and the
// destination ends exactly at its snapshot with sequence numbers that only
// grow, whatever the dead run had published.
func TestTakeoverAfterACrashAtEveryPoint(t *testing.T) {
	for _, c := range crashes() {
		t.Run(c.String(), func(t *testing.T) {
			w := &sharedWorld{}
			dead := t.TempDir()
			syncShared(t, w, dead, "r0", history[0], noCrash)
			syncShared(t, w, dead, "r1", history[1], c)
			other := t.TempDir()
			syncShared(t, w, other, "r2", history[2], noCrash)
			checkFinal(t, other, w.log, history[2], "r2")
			// And the crashed replica, back with its stale directory, sees
			// the takeover and rebuilds rather than recovering its own run.
			syncShared(t, w, dead, "r3", history[3], noCrash)
			checkFinal(t, dead, w.log, history[3], "r3")
		})
	}
}

// TestSharedStateOfANewSegment: a segment nobody synced has nothing to
// rebuild, so the first run does not wait on the destination.
func TestSharedStateOfANewSegment(t *testing.T) {
	w := &sharedWorld{}
	dir := t.TempDir()
	res, crashed := syncShared(t, w, dir, "r0", history[0], noCrash)
	if crashed || res.Rebuilt != nil || w.members != 0 {
		t.Fatalf("first run: rebuilt %+v, Members called %d times; want neither", res.Rebuilt, w.members)
	}
	checkFinal(t, dir, w.log, history[0], "r0")
}

// TestRebuildFailurePublishesNothing: when the destination cannot be read
// back (the consumer is behind, Redis is down), the run fails before
// anything is published and the old state is left as it was.
func TestRebuildFailurePublishesNothing(t *testing.T) {
	w := &sharedWorld{}
	syncShared(t, w, t.TempDir(), "r0", history[0], noCrash)
	before := len(w.log)
	w.fail = errors.New("consumer not caught up")
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, testID, WithSharedState(w, w))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Sync(context.Background(), "r1", addAll(history[1]), samePub(&fakePub{log: &w.log, failAfter: -1}), SyncOptions{})
	if !errors.Is(err, w.fail) {
		t.Fatalf("Sync = %v, want the rebuild's error", err)
	}
	if len(w.log) != before || s.CommittedRun() != "" || s.PendingRun() != "" {
		t.Fatalf("after a failed rebuild: %d events published, committed %q, pending %q; want none",
			len(w.log)-before, s.CommittedRun(), s.PendingRun())
	}
}

// announcingLocker hands out a lease that announces its loss, as
// segmentlease's does when a renewal finds another holder.
type announcingLocker struct{ lease *announcedLease }

type announcedLease struct {
	lost chan struct{}
	err  error
}

func (l *announcingLocker) Lock(context.Context, SegmentID) (Lease, error) { return l.lease, nil }
func (l *announcedLease) Check(context.Context) error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}
func (*announcedLease) Unlock() error           { return nil }
func (l *announcedLease) Lost() <-chan struct{} { return l.lost }
func (l *announcedLease) Err() error            { return l.err }

// stallingPub announces the lease lost after its first batch, then waits
// for the run to be stopped (at most a few seconds), as a Kafka writer
// blocked on a slow broker would.
type stallingPub struct {
	lease *announcedLease
	sends int
}

func (p *stallingPub) Send(ctx context.Context, _ []Change) error {
	p.sends++
	if p.sends == 1 {
		close(p.lease.lost)
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return errors.New("the run went on after its lease was lost")
	}
}

func (*stallingPub) Wait(ctx context.Context) error { return ctx.Err() }

// TestLostLeaseStopsTheRun: a run whose lease is announced lost stops
// publishing at once, with an error wrapping ErrLockLost, instead of
// publishing the rest of its diff over the next holder's run.
func TestLostLeaseStopsTheRun(t *testing.T) {
	lease := &announcedLease{lost: make(chan struct{}), err: ErrLockLost}
	s, err := Open(context.Background(), t.TempDir(), testID, WithLocker(&announcingLocker{lease}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pub := &stallingPub{lease: lease}
	_, err = s.Sync(context.Background(), "r0", addAll([]string{"a", "b", "c", "d", "e"}), samePub(pub), SyncOptions{SendBatch: 1})
	if !errors.Is(err, ErrLockLost) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync = %v, want ErrLockLost and context.Canceled", err)
	}
	if pub.sends != 2 || s.CommittedRun() != "" {
		t.Fatalf("%d sends, committed %q; want the run stopped at its second send, nothing committed", pub.sends, s.CommittedRun())
	}
}

// TestWithRebuildReadsTheDestinationBack: a destination known to have
// missed events (set aside while it was down) is read back even though
// the local state is current, and the run repairs it.
func TestWithRebuildReadsTheDestinationBack(t *testing.T) {
	w := &sharedWorld{}
	dir := t.TempDir()
	syncShared(t, w, dir, "r0", []string{"a", "b", "c"}, noCrash)
	// The destination lost c's add and never saw d's: what it holds.
	kept := w.log[:0:0]
	for _, e := range w.log {
		if e.key != "c" {
			kept = append(kept, e)
		}
	}
	w.log = kept
	res, crashed := syncRunWith(t, dir, "r1", []string{"a", "b", "c"}, &w.log, noCrash, nil,
		WithSharedState(w, w), WithRebuild("events were set aside"))
	if crashed || res.Rebuilt == nil || res.Rebuilt.Reason != "events were set aside" || res.Phase.Added != 1 {
		t.Fatalf("rebuilt %+v, added %d; want a rebuild for the reason given and c added again", res.Rebuilt, res.Phase.Added)
	}
	checkFinal(t, dir, w.log, []string{"a", "b", "c"}, "r1")
}

// TestLostCounterNumbersAboveWhatWasApplied: a control Redis replaced by an
// empty one (the shared counter lost) while the destination kept its data
// is rebuilt, and the run numbers its events above what was applied.
func TestLostCounterNumbersAboveWhatWasApplied(t *testing.T) {
	w := &sharedWorld{}
	syncShared(t, w, t.TempDir(), "r0", []string{"a", "b"}, noCrash)
	applied, _ := w.LastSeq(context.Background(), testID)
	w.high = 0 // the new control Redis
	res, _ := syncShared(t, w, t.TempDir(), "r1", []string{"b", "c"}, noCrash)
	if res.Rebuilt == nil || !strings.Contains(res.Rebuilt.Reason, "beyond the shared counter 0") || res.Phase.FirstSeq <= applied {
		t.Fatalf("rebuilt %+v, first seq %d; want a rebuild for the lost counter and numbers above %d", res.Rebuilt, res.Phase.FirstSeq, applied)
	}
	if got := membership(w.log); !maps.Equal(got, setOf([]string{"b", "c"})) {
		t.Fatalf("membership %v, want b and c", got)
	}
}
