package snapshot

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
)

// counterSeq is a SeqAllocator with a counter of its own, as a shared
// (replicated) allocator has: its ranges start above both the store's floor
// and every range it handed out, so it exercises a store taking ranges that
// do not start at its floor.
type counterSeq struct {
	mu   sync.Mutex
	last uint64
}

func (c *counterSeq) Reserve(ctx context.Context, id SegmentID, floor, n uint64) (SeqRange, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := max(floor, c.last+1) + 7 // a gap, as another replica's reservation leaves
	c.last = first + n - 1
	return SeqRange{First: first, Last: c.last}, nil
}

// seqAllocators are the implementations the conformance tests run against.
// One allocator serves every run of a test, as one process or one shared
// counter would.
var seqAllocators = []struct {
	name string
	new  func() SeqAllocator
}{
	{"state", func() SeqAllocator { return StateSeq{} }},
	{"counter (test double of a shared one)", func() SeqAllocator { return &counterSeq{} }},
}

// TestStateSeqRefusesWrapAround: the state file's counter never wraps.
// The contract every allocator meets is in snapshottest (conformance_test.go).
func TestStateSeqRefusesWrapAround(t *testing.T) {
	if _, err := (StateSeq{}).Reserve(context.Background(), testID, math.MaxUint64-1, 3); err == nil {
		t.Fatal("Reserve wrapped around")
	}
}

// TestSeqRangesNeverOverlapNorGoBack runs histories of syncs through Open
// with each allocator (every run reopens the store; some crash, and the
// next recovers) and checks that the ranges of the phases that published
// only grow and never overlap, and that every event's number lies in the
// range of its phase.
func TestSeqRangesNeverOverlapNorGoBack(t *testing.T) {
	type step struct {
		keys []string
		c    crash
	}
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"runs in a row", []step{{history[0], noCrash}, {history[1], noCrash}, {history[2], noCrash}}},
		{"a crashed run is recovered with a fresh range", []step{
			{history[0], noCrash}, {history[1], crash{failAfter: 1}}, {history[2], noCrash}}},
		{"a lost final ack is recovered", []step{
			{history[0], noCrash}, {history[1], crash{failAfter: -1, failWait: true}}, {history[2], noCrash}}},
		{"the recovery crashes too", []step{
			{history[0], noCrash}, {history[1], crash{failAfter: 2}}, {history[2], crash{failAfter: 1}}, {history[3], noCrash}}},
	}
	// Every crash point of the middle run, then a rerun.
	for _, c := range crashes() {
		scenarios = append(scenarios, struct {
			name  string
			steps []step
		}{"crash at " + c.String(), []step{{history[0], noCrash}, {history[1], c}, {history[2], noCrash}, {history[3], noCrash}}})
	}
	for _, impl := range seqAllocators {
		for _, sc := range scenarios {
			t.Run(impl.name+"/"+sc.name, func(t *testing.T) {
				dir := t.TempDir()
				alloc := impl.new()
				var log []event
				var phases []SeqRange
				var phaseStart []int // index in log of each phase's first event
				onPhase := func(ph *Phase) {
					phases = append(phases, SeqRange{First: ph.FirstSeq, Last: ph.ReservedUpto})
					phaseStart = append(phaseStart, len(log))
				}
				for i, st := range sc.steps {
					_, _ = syncRunWith(t, dir, fmt.Sprintf("r%02d", i), st.keys, &log, st.c, onPhase, WithSeqAllocator(alloc))
				}
				for i := 1; i < len(phases); i++ {
					if phases[i].First <= phases[i-1].Last {
						t.Fatalf("phase %d range %d..%d overlaps or precedes phase %d's %d..%d", i, phases[i].First, phases[i].Last, i-1, phases[i-1].First, phases[i-1].Last)
					}
				}
				for i, r := range phases {
					end := len(log)
					if i+1 < len(phases) {
						end = phaseStart[i+1]
					}
					for _, e := range log[phaseStart[i]:end] {
						if e.seq < r.First || e.seq > r.Last {
							t.Fatalf("event %+v outside its phase's range %d..%d", e, r.First, r.Last)
						}
					}
				}
				checkFinal(t, dir, log, sc.steps[len(sc.steps)-1].keys, fmt.Sprintf("r%02d", len(sc.steps)-1))
			})
		}
	}
}
