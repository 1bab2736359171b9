package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/keyspace"
	"github.com/cohortsync/cohortsync/pkg/redisnodes"
)

// DropPrefix deletes every key under prefix when the test ends, so runs
// against a shared real Redis do not accumulate data (benchmarks write
// millions of keys).
func DropPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the test's contexts are done by now
		defer cancel()
		if err := DeletePrefix(ctx, rdb, prefix); err != nil {
			t.Errorf("delete test keys under %s: %v", prefix, err)
		}
	})
}

// DeletePrefix deletes every key under prefix now (on every master of a
// Cluster), as a FLUSHALL would for a test's own keys.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	return keyspace.DeletePrefix(ctx, rdb, prefix)
}

// Snapshot reads every key under prefix from every master, as a sorted,
// printable map, so two states compare with ==.
func Snapshot(t testing.TB, rdb redis.UniversalClient, prefix string, skip ...string) map[string]string {
	t.Helper()
	ctx := Context(t, 30*time.Second)
	var mu sync.Mutex
	out := map[string]string{}
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", 10000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if slices.Contains(skip, k) {
				continue
			}
			typ, err := c.Type(ctx, k).Result()
			if err != nil {
				return err
			}
			var v string
			switch typ {
			case "set":
				ms, err := c.SMembers(ctx, k).Result()
				if err != nil {
					return err
				}
				slices.Sort(ms)
				v = "set" + fmt.Sprint(ms)
			case "hash":
				h, err := c.HGetAll(ctx, k).Result()
				if err != nil {
					return err
				}
				v = "hash" + fmt.Sprint(h) // fmt sorts map keys
			case "string":
				s, err := c.Get(ctx, k).Result()
				if err != nil {
					return err
				}
				v = "string:" + s
			default:
				v = typ
			}
			mu.Lock()
			out[k] = v
			mu.Unlock()
		}
		return iter.Err()
	}
	if err := redisnodes.EachMaster(ctx, rdb, scan); err != nil {
		t.Fatalf("snapshot %s: %v", prefix, err)
	}
	return out
}

// DiffSnapshots lists, sorted, one line per key, how snapshot b differs
// from a; "" when they are equal.
func DiffSnapshots(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "only before: "+k+" = "+v)
		} else if v != w {
			d = append(d, "changed: "+k+": "+v+" -> "+w)
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "only after: "+k+" = "+v)
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}

// ForEachRedis runs fn as a subtest on every Redis backend (RedisBackends)
// with a context ending after d and a fresh prefix whose keys are deleted
// when the test ends.
func ForEachRedis(t *testing.T, d time.Duration, fn func(t *testing.T, ctx context.Context, b RedisBackend, prefix string)) {
	t.Helper()
	for _, b := range RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			prefix := Name(t)
			DropPrefix(t, b.Client, prefix)
			fn(t, Context(t, d), b, prefix)
		})
	}
}
