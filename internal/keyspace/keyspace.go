package keyspace

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// deleteBatch bounds the UNLINKs of one pipeline.
const deleteBatch = 10000

// DeletePrefix deletes every key under prefix ("<prefix>:*") on every
// master of a Cluster, with SCAN and pipelined UNLINKs: it reads the whole
// keyspace once, in pages, so it is meant for a prefix of its caller's own
// (a benchmark's, a test's), not for a hot path.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	drop := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", deleteBatch).Iterator()
		var keys []string
		flush := func() error {
			if len(keys) == 0 {
				return nil
			}
			pipe := c.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k) // one key per command: keys of a batch span slots
			}
			keys = keys[:0]
			_, err := pipe.Exec(ctx)
			return err
		}
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == deleteBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		return flush()
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, drop)
	case *redis.Client:
		err = drop(ctx, c)
	default:
		return fmt.Errorf("delete keys under %q: unsupported Redis client %T", prefix, rdb)
	}
	if err != nil {
		return fmt.Errorf("delete keys under %q: %w", prefix, err)
	}
	return nil
}
