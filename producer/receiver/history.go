package receiver

import (
	"context"
	"time"

	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source"
)

// Trigger is the run history's trigger of an accepted batch.
const Trigger = "push"

// History keeps every accepted batch as a run with its exclusions;
// runstore.Store implements it.
type History interface {
	AddWithExclusions(ctx context.Context, r runstore.Record, excl []source.Exclusion) error
}

// Barriers take what tells when a push run is applied (see
// control/runwatch): the destination's count of set-aside events, read
// before the batch is published, and the topic's end offsets, read after
// Kafka acknowledged it. The app's publication implements it.
type Barriers interface {
	Gaps(ctx context.Context, destination string) (uint64, error)
	Ends(ctx context.Context) (map[int]int64, error)
}

// historySlots bounds the recordings under way; a request finding none
// free waits (after its 204) for one, so a slow history slows partners
// down instead of holding their batches' exclusions without bound.
const historySlots = 64

// applied is what apply did with a batch, for its run record.
type applied struct {
	keys        int // distinct usable keys of the batch, before stale changes were dropped
	stale       int // changes dropped: a batch computed later changed their keys already
	redelivered bool
	first, last uint64 // sequence numbers of the events, 0 for none
	gaps        uint64 // the destination's set-aside count before publishing
	gapsKnown   bool   // gaps was read: the run can take a barrier
}

// pushRecord is the run record of batch b, accepted for dest into seg
// (owned by mapping, "" for none) as run, between start and done.
func pushRecord(run, mapping, dest string, seg segmentOf, env string, b *Batch, a applied, start, done time.Time) runstore.Record {
	sum := producer.Summary{
		Run: run, Env: env, Segment: seg.segment, Generation: seg.generation, ContextKind: seg.contextKind,
		Input: b.Integration, Source: Source, Outcome: producer.Succeeded,
		Rows: int64(b.Received), Keys: int64(a.keys), Duplicates: int64(b.Duplicates),
		Added: int64(len(b.Adds)), Removed: int64(len(b.Removes)), Unchanged: int64(a.stale),
		FirstSeq: a.first, LastSeq: a.last, Started: start, Duration: done.Sub(start),
	}
	if a.redelivered {
		// Nothing published: each of its keys repeats the delivery applied.
		sum.Added, sum.Removed, sum.Duplicates = 0, 0, sum.Duplicates+int64(a.keys)
	}
	sum.Events = sum.Added + sum.Removed
	if len(b.Exclusions) > 0 {
		sum.Excluded = map[string]int64{}
		for _, e := range b.Exclusions {
			sum.Excluded[e.Reason]++
		}
	}
	if mapping == "" {
		mapping = seg.segment
	}
	// Published: Kafka acknowledged every event before the 204. The
	// barrier is taken after the 204 (record); a batch that published
	// nothing has nothing to wait for.
	rec := runstore.Record{ID: run, Mapping: mapping, Destination: dest, Trigger: Trigger, Summary: sum, Published: done, Gaps: a.gaps}
	if sum.Events == 0 && a.gapsKnown {
		rec.Barrier = map[int]int64{}
	}
	return rec
}

// record adds rec to the history in the background: the partner gets its
// 204 without waiting for it, and a history that fails is logged, not the
// batch's failure. Close waits for what is under way.
func (r *Receiver) record(ctx context.Context, rec runstore.Record, excl []source.Exclusion, withBarrier bool, flush func()) {
	if r.history == nil {
		return
	}
	r.histMu.Lock()
	if r.histClosed {
		r.histMu.Unlock()
		r.cfg.Logger.WarnContext(ctx, "push run not recorded: the receiver is closing", "run", rec.ID)
		return
	}
	r.histWG.Add(1)
	r.histMu.Unlock()
	select {
	case r.histSlots <- struct{}{}:
	default:
		flush() // the partner has its answer while this waits
		r.histSlots <- struct{}{}
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer r.histWG.Done()
		defer func() { <-r.histSlots }()
		ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
		if withBarrier && rec.Barrier == nil {
			// Every event of the batch lies below these ends (they were
			// acknowledged before); all partitions are kept, the batch's
			// own are not known here.
			if ends, err := r.barriers.Ends(ctx); err == nil {
				rec.Barrier = ends
			} else {
				r.cfg.Logger.WarnContext(ctx, "a push run will not be known applied", "run", rec.ID, "error", err)
			}
		}
		if err := r.history.AddWithExclusions(ctx, rec, excl); err != nil {
			r.stats.HistoryFailures.Add(1)
			r.cfg.Logger.WarnContext(ctx, "record a push run in the history", "run", rec.ID, "mapping", rec.Mapping,
				"destination", rec.Destination, "error", err)
			return
		}
		r.stats.Recorded.Add(1)
	}()
}

// Close waits for the recordings under way (each bounded by
// Config.Timeout); a batch accepted after Close is not recorded. It is
// idempotent.
func (r *Receiver) Close() error {
	r.histMu.Lock()
	r.histClosed = true
	r.histMu.Unlock()
	r.histWG.Wait()
	return nil
}
