package keyspace

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/redisnodes"
)

// deleteBatch bounds the UNLINKs of one pipeline.
const deleteBatch = 10000

// maxPasses bounds the SCANs of the keyspace DeletePrefix makes.
const maxPasses = 20

// DeletePrefix deletes every key under prefix ("<prefix>:*") on every
// master of a Cluster, with SCAN and pipelined UNLINKs: it reads the whole
// keyspace at least twice, in pages, so it is meant for a prefix of its
// caller's own (a benchmark's, a test's), not for a hot path.
//
// A pass that deleted keys is followed by another: a server whose SCAN
// cursor is a position in its key list (miniredis) skips as many keys as
// were deleted behind the cursor, which left keys of prefixes of more than
// one page behind (redis-server's SCAN returns every key that stays).
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	drop := func(ctx context.Context, c *redis.Client) error {
		for range maxPasses {
			n, err := deletePass(ctx, c, prefix)
			if err != nil || n == 0 {
				return err
			}
		}
		return fmt.Errorf("keys still found after %d passes", maxPasses)
	}
	if err := redisnodes.EachMaster(ctx, rdb, drop); err != nil {
		return fmt.Errorf("delete keys under %q: %w", prefix, err)
	}
	return nil
}

// deletePass scans c's keyspace once, deleting the keys under prefix it
// finds, and returns how many it deleted.
func deletePass(ctx context.Context, c *redis.Client, prefix string) (int, error) {
	iter := c.Scan(ctx, 0, prefix+":*", deleteBatch).Iterator()
	var keys []string
	deleted := 0
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		for _, k := range keys {
			pipe.Unlink(ctx, k) // one key per command: keys of a batch span slots
		}
		deleted += len(keys)
		keys = keys[:0]
		_, err := pipe.Exec(ctx)
		return err
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == deleteBatch {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return deleted, err
	}
	return deleted, flush()
}
