package redisnodes_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/redisnodes"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestEachMasterReachesEveryServer(t *testing.T) {
	testenv.ForEachRedis(t, 30*time.Second, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		var (
			mu    sync.Mutex
			addrs []string
		)
		err := redisnodes.EachMaster(ctx, b.Client, func(ctx context.Context, c *redis.Client) error {
			if err := c.Ping(ctx).Err(); err != nil {
				return err
			}
			mu.Lock()
			addrs = append(addrs, c.Options().Addr)
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatalf("EachMaster: %v", err)
		}
		want := 1
		if cc, ok := b.Client.(*redis.ClusterClient); ok {
			want = len(cc.Options().Addrs) // testenv's Cluster is seeded with its masters, no replicas
		}
		slices.Sort(addrs)
		if len(slices.Compact(addrs)) != want {
			t.Errorf("EachMaster called fn for %v, want %d distinct servers", addrs, want)
		}
	})
}

func TestEachMasterRefusesOtherClients(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": testenv.ClosedAddr(t)}})
	defer func() { _ = ring.Close() }()
	called := false
	err := redisnodes.EachMaster(t.Context(), ring, func(context.Context, *redis.Client) error { called = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "*redis.Ring is neither a redis.Client nor a redis.ClusterClient") {
		t.Errorf("EachMaster(ring) = %v, want an error naming *redis.Ring", err)
	}
	if called {
		t.Error("fn was called for a ring")
	}
}
