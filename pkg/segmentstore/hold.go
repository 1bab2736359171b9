package segmentstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// includedBatch bounds the SISMEMBER commands of one Included pipeline.
const includedBatch = 1000

// Included reports, for each of keys, whether its include set holds ref:
// what an SDK evaluating the context would see, as opposed to the member
// index that Members lists. It reads in pipelines of a bounded size.
func Included(ctx context.Context, c Client, prefix, ref string, keys []string) ([]bool, error) {
	out := make([]bool, 0, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), includedBatch)
		pipe := c.Pipeline()
		cmds := make([]*redis.BoolCmd, n)
		for i, k := range keys[:n] {
			cmds[i] = pipe.SIsMember(ctx, bigsegments.IncludeKey(prefix, k), ref)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read include sets of segment %q under prefix %q: %w", ref, prefix, err)
		}
		for _, cmd := range cmds {
			out = append(out, cmd.Val())
		}
		keys = keys[n:]
	}
	return out, nil
}

// HoldFreshness stops the store under prefix from being reported current
// while it is rebuilt: it writes the store-lost mark (bigsegments
// StoreLostKey, holding note), which consumers honour by never writing
// big_segments_synchronized_on there while it exists, then deletes
// synchronized_on, so that SDKs report the store STALE at once.
func HoldFreshness(ctx context.Context, c WriteClient, prefix, note string) error {
	pipe := c.Pipeline()
	pipe.Set(ctx, bigsegments.StoreLostKey(prefix), note, 0)
	pipe.Del(ctx, bigsegments.SyncTimeKey(prefix))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("hold back the freshness of prefix %q: %w", prefix, err)
	}
	return nil
}

// ReleaseFreshness ends HoldFreshness: it deletes the store-lost mark, so
// that the consumers started next claim the store again and mark it
// current once they have caught up. synchronized_on stays absent until
// then.
func ReleaseFreshness(ctx context.Context, c WriteClient, prefix string) error {
	pipe := c.Pipeline()
	pipe.Del(ctx, bigsegments.StoreLostKey(prefix))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("release the freshness of prefix %q: %w", prefix, err)
	}
	return nil
}
