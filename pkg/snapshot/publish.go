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
	DiffStats
	NewCount int64  // keys in the snapshot now committed
	FirstSeq uint64 // first sequence number used; with LastSeq 0 if no change
	LastSeq  uint64
}

// Publish streams the phase's diff to pub in batches of sendBatch changes
// (DefaultSendBatch if <= 0), numbering them from ph.FirstSeq, and waits for
// all acknowledgements. It does not commit.
func (s *Store) Publish(ctx context.Context, ph *Phase, pub Publisher, sendBatch int) (PhaseResult, error) {
	res := PhaseResult{Run: ph.Run, Recovery: ph.Recovery, NewCount: ph.NewCount, FirstSeq: ph.FirstSeq}
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

// Recover republishes and commits the snapshot an interrupted run left
// pending (step 3). It returns nil, nil when nothing is pending.
func (s *Store) Recover(ctx context.Context, pub Publisher, sendBatch int) (*PhaseResult, error) {
	ph, err := s.Resume()
	if err != nil || ph == nil {
		return nil, err
	}
	res, err := s.Publish(ctx, ph, pub, sendBatch)
	if err != nil {
		return &res, fmt.Errorf("recover: %w", err)
	}
	if err := s.Commit(ph); err != nil {
		return &res, fmt.Errorf("recover: %w", err)
	}
	return &res, nil
}

// Apply stages the sorted keys as run's snapshot, publishes the diff from
// the committed snapshot and commits it (steps 1 and 2). Call Recover first.
func (s *Store) Apply(ctx context.Context, run string, sorter *Sorter, pub Publisher, sendBatch int) (PhaseResult, SortStats, error) {
	ph, sst, err := s.Stage(ctx, run, sorter)
	if err != nil {
		return PhaseResult{Run: run}, sst, err
	}
	res, err := s.Publish(ctx, ph, pub, sendBatch)
	if err != nil {
		return res, sst, err
	}
	if err := s.Commit(ph); err != nil {
		return res, sst, err
	}
	return res, sst, nil
}
