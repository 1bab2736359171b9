package redisnodes

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// EachMaster calls fn with a client of each server holding rdb's keys: a
// standalone server's client itself, or each master of a Cluster, those
// concurrently (redis.ClusterClient.ForEachMaster). It returns the first
// error fn returned, or an error naming the client's type when rdb is
// neither (a ring or a failover client, say).
func EachMaster(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, c *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("a %T is neither a redis.Client nor a redis.ClusterClient", rdb)
	}
}
