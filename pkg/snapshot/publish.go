package snapshot

import (
	"context"
	"errors"
	"fmt"

	"github.com/cohortsync/cohortsync/schema"
)

// Change is one membership change of a phase.
type Change struct {
	Op  schema.Op
	Key []byte // context key; valid only during Publisher.Send
	Seq uint64
}

// Publisher delivers changes. Send may return before the changes are
// acknowledged but must not keep batch or its keys after it returns; Wait
// returns once every change sent so far is acknowledged, or with the first
// error. After an error the phase is abandoned: nothing is committed.
type Publisher interface {
	Send(ctx context.Context, batch []Change) error
	Wait(ctx context.Context) error
}

// DefaultSendBatch is how many changes Publish hands to one Send.
const DefaultSendBatch = 10000

// PhaseResult reports a published and committed phase.
type PhaseResult struct {
	Run      string
	Recovery bool
	Attempt  int // 1 for the run's own publication, 2+ for recoveries
	DiffStats
	NewCount int64  // keys in the snapshot now committed
	FirstSeq uint64 // first sequence number used; with LastSeq 0 if no change
	LastSeq  uint64
	// ReservedUpto ends the phase's reserved range: every later phase of
	// the segment numbers its changes above it, even when this one had
	// none.
	ReservedUpto uint64
}

// publish streams the phase's diff to pub in batches of sendBatch changes
// (DefaultSendBatch if <= 0), numbering them from ph.FirstSeq, and waits for
// all acknowledgements. It does not commit.
func (s *Store) publish(ctx context.Context, ph *Phase, pub Publisher, sendBatch int) (PhaseResult, error) {
	res := PhaseResult{Run: ph.Run, Recovery: ph.Recovery, Attempt: ph.Attempt, NewCount: ph.NewCount, FirstSeq: ph.FirstSeq, ReservedUpto: ph.ReservedUpto}
	if err := s.checkOpen(); err != nil {
		return res, err
	}
	if sendBatch <= 0 {
		sendBatch = DefaultSendBatch
	}
	batch := make([]Change, 0, sendBatch)
	var keys []byte
	seq := ph.FirstSeq
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := pub.Send(ctx, batch); err != nil {
			return fmt.Errorf("publish run %s: %w", ph.Run, err)
		}
		batch, keys = batch[:0], keys[:0]
		return nil
	}
	st, err := Diff(ctx, ph.oldPath, ph.newPath, func(op schema.Op, key []byte) error {
		if seq > ph.ReservedUpto {
			// Cannot happen with consistent files (the range covers old+new);
			// refuse rather than reuse numbers of a later phase.
			return fmt.Errorf("publish run %s: more changes than the reserved range %d..%d", ph.Run, ph.FirstSeq, ph.ReservedUpto)
		}
		// keys may move when it grows; earlier Changes keep pointing at the
		// old array, which stays valid until the batch is sent.
		start := len(keys)
		keys = append(keys, key...)
		batch = append(batch, Change{Op: op, Key: keys[start:len(keys):len(keys)], Seq: seq})
		seq++
		if len(batch) == sendBatch {
			return send()
		}
		return nil
	})
	res.DiffStats = st
	if err != nil {
		return res, waitAbandoned(ctx, pub, err)
	}
	if err := send(); err != nil {
		return res, waitAbandoned(ctx, pub, err)
	}
	if err := pub.Wait(ctx); err != nil {
		return res, fmt.Errorf("publish run %s: %w", ph.Run, err)
	}
	if seq > ph.FirstSeq {
		res.LastSeq = seq - 1
	}
	return res, nil
}

// waitAbandoned lets the sends already in flight finish before err is
// returned, so the next phase (a rerun) never overlaps with them. Their
// outcome no longer matters: the phase will be republished in full. A
// different error from Wait is joined to err.
func waitAbandoned(ctx context.Context, pub Publisher, err error) error {
	werr := pub.Wait(ctx)
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) && errors.Is(werr, cerr) {
		return err // both say the run was cancelled
	}
	if werr != nil && !errors.Is(err, werr) {
		return errors.Join(err, fmt.Errorf("while abandoning the phase: %w", werr))
	}
	return err
}

// PublisherFor returns the Publisher of a phase's changes: events carry the
// run of the snapshot they publish, which for a recovery is the interrupted
// run's, not the current one.
type PublisherFor func(ph *Phase) (Publisher, error)

// SyncOptions tune Store.Sync.
type SyncOptions struct {
	// SendBatch is how many changes go to one Publisher.Send. Default
	// DefaultSendBatch.
	SendBatch int
	// ChunkBytes is the memory budget of the snapshot sort (SortOptions).
	// Default DefaultChunkBytes.
	ChunkBytes int64
	// Accept, unless nil, sees the committed snapshot's size and the new
	// one's once it is sorted, before anything of the run is staged or
	// published; an error from it ends the run with nothing pending (the
	// producer's --max-shrink guard).
	Accept func(committed, next int64) error
}

// SyncResult reports a Store.Sync, as far as it got.
type SyncResult struct {
	// Rebuilt says why the committed snapshot was rebuilt from the
	// destination before the run (WithSharedState); nil when the local
	// state was current.
	Rebuilt *RebuildResult
	// Recovered is the republication of the snapshot an interrupted run had
	// left pending; nil when nothing was pending.
	Recovered *PhaseResult
	// Phase is the run's own publication; Phase.Run is "" if the run did not
	// get to staging.
	Phase PhaseResult
	Sort  SortStats // of the run's snapshot
}

// Sync is the protocol's one driver, a whole sync run: it first republishes
// and commits what an interrupted run left pending (step 3), behind a full
// acknowledgement barrier; then fill adds the run's keys to a sorter, and the
// sorted snapshot is staged, published and committed as run's (steps 1 and
// 2). Each phase is published through pubFor's Publisher for it. The result
// is filled as far as the run got, also on error; after an error nothing of
// the run is committed and the next Sync republishes what was staged.
//
// With WithSharedState the local state is first checked against what the
// replicas share, and the committed snapshot rebuilt from the destination
// when it is stale (SyncResult.Rebuilt). A lease that announces its loss
// (as segmentlease's does) stops the run at once, with an error wrapping
// ErrLockLost.
func (s *Store) Sync(ctx context.Context, run string, fill func(add func(key string) error) error, pubFor PublisherFor, opts SyncOptions) (res SyncResult, err error) {
	ctx, stop := s.leaseContext(ctx)
	defer func() {
		err = leaseError(ctx, err)
		stop()
	}()
	if res.Rebuilt, err = s.reconcile(ctx, opts.ChunkBytes); err != nil {
		return res, err
	}
	ph, err := s.resume(ctx)
	if err != nil {
		return res, err
	}
	if ph != nil {
		r, err := s.publishAndCommit(ctx, ph, pubFor, opts.SendBatch)
		res.Recovered = &r
		if err != nil {
			return res, fmt.Errorf("recover interrupted run %s: %w", ph.Run, err)
		}
	}
	sorter, err := s.NewSorter(opts.ChunkBytes)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sorter.Close()) }()
	if err := fill(sorter.Add); err != nil {
		return res, err
	}
	ph, res.Sort, err = s.stage(ctx, run, sorter, opts.Accept)
	if err != nil {
		return res, err
	}
	res.Phase, err = s.publishAndCommit(ctx, ph, pubFor, opts.SendBatch)
	return res, err
}

// publishAndCommit publishes ph through pubFor's Publisher and commits it
// once every change is acknowledged.
func (s *Store) publishAndCommit(ctx context.Context, ph *Phase, pubFor PublisherFor, sendBatch int) (PhaseResult, error) {
	pub, err := pubFor(ph)
	if err != nil {
		return PhaseResult{Run: ph.Run, Recovery: ph.Recovery, Attempt: ph.Attempt, FirstSeq: ph.FirstSeq}, err
	}
	res, err := s.publish(ctx, ph, pub, sendBatch)
	if err != nil {
		return res, err
	}
	return res, s.commit(ctx, ph)
}
