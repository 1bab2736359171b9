package runstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Unapplied returns up to limit runs published and not yet applied,
// oldest publication first. Index entries whose record expired are
// dropped from the index on the way.
func (s *Store) Unapplied(ctx context.Context, limit int) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	members, err := s.rdb.ZRange(ctx, s.pendingKey(), 0, int64(max(limit, 1))-1).Result()
	if err != nil {
		return nil, fmt.Errorf("runstore: list unapplied runs: %w", err)
	}
	out := make([]Record, 0, len(members))
	var gone []any
	for _, m := range members {
		r, err := s.get(ctx, m)
		switch {
		case errors.Is(err, redis.Nil):
			gone = append(gone, m)
		case err != nil:
			return nil, err
		case !r.awaitsApply():
			gone = append(gone, m) // marked by another replica meanwhile
		default:
			out = append(out, r)
		}
	}
	if len(gone) > 0 {
		if err := s.rdb.ZRem(ctx, s.pendingKey(), gone...).Err(); err != nil {
			return nil, fmt.Errorf("runstore: drop settled runs from the unapplied index: %w", err)
		}
	}
	return out, nil
}

// MarkApplied records that r's barrier was reached at at: applied, or set
// aside when the consumer set events of its destination aside meanwhile.
// The record keeps its expiry; one that expired is not written again.
// Marking a run twice (two replicas checking) writes the same facts;
// first tells whether this call took it off the unapplied index (one
// caller is told, for what is done once: a notification).
func (s *Store) MarkApplied(ctx context.Context, r Record, at time.Time, setAside bool) (first bool, err error) {
	if setAside {
		r.SetAside = true
	} else {
		r.Applied = at
	}
	b, err := encode(r)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	member := r.member()
	var removed *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, s.runKey(member), b, redis.SetArgs{Mode: "XX", KeepTTL: true})
		removed = p.ZRem(ctx, s.pendingKey(), member)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: the record expired (SET XX)
		return false, fmt.Errorf("runstore: mark run %s applied in %q: %w", r.ID, r.Destination, err)
	}
	return removed.Val() == 1, nil
}
