package segmentlease

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// Gaps records that a consumer set aside events of a destination (it was
// down; see consumer.RouteTableOptions.SetAside), and which of those
// records the last run of each segment has repaired: a run that finds a
// record it has not seen reads its segment back from the destination
// (snapshot.WithRebuild) instead of trusting its snapshot, since the
// destination missed some of the events that snapshot stands for.
type Gaps struct{ control }

// NewGaps returns Gaps on rdb (standalone or Cluster); only Prefix and
// Timeout of cfg apply.
func NewGaps(rdb redis.UniversalClient, cfg Config) (*Gaps, error) {
	c, err := newControl(rdb, cfg)
	if err != nil {
		return nil, err
	}
	return &Gaps{c}, nil
}

// destKey counts the gaps of the destination called name.
func (g *Gaps) destKey(name string) string {
	return g.cfg.Prefix + "{dest:" + url.QueryEscape(name) + "}:gaps"
}

// Record notes a new gap of the destination called name.
func (g *Gaps) Record(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	if err := g.rdb.Incr(ctx, g.destKey(name)).Err(); err != nil {
		return fmt.Errorf("record a gap of destination %q: %w", name, err)
	}
	return nil
}

// Count returns the destination's gap count: a run reads it before it
// publishes, and finds its events set aside if it grew by the time they
// are applied (runwatch).
func (g *Gaps) Count(ctx context.Context, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	n, err := g.get(ctx, g.destKey(name))
	if err != nil {
		return 0, fmt.Errorf("read the gaps of destination %q: %w", name, err)
	}
	return n, nil
}

// Check returns the destination's gap count and the count id's last
// successful run had seen; they differ when the segment needs reading
// back.
func (g *Gaps) Check(ctx context.Context, name string, id snapshot.SegmentID) (count, seen uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	if count, err = g.get(ctx, g.destKey(name)); err != nil {
		return 0, 0, fmt.Errorf("read the gaps of destination %q: %w", name, err)
	}
	if seen, err = g.get(ctx, g.cfg.key(id, "gaps_seen")); err != nil {
		return 0, 0, fmt.Errorf("read the gaps %s has seen: %w", id, err)
	}
	return count, seen, nil
}

// MarkSeen records that a run of id, which began when the destination's
// count was count, succeeded: gaps up to count are repaired for id.
func (g *Gaps) MarkSeen(ctx context.Context, id snapshot.SegmentID, count uint64) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	if err := g.rdb.Set(ctx, g.cfg.key(id, "gaps_seen"), strconv.FormatUint(count, 10), 0).Err(); err != nil {
		return fmt.Errorf("record the gaps %s has seen: %w", id, err)
	}
	return nil
}

func (g *Gaps) get(ctx context.Context, key string) (uint64, error) {
	v, err := g.rdb.Get(ctx, key).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}
