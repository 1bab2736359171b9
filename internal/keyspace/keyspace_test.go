package keyspace_test

import (
	"context"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/keyspace"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestDeletePrefix deletes more keys than one page, on every master, and
// nothing outside the prefix (not even a key whose name only starts like
// it). Regression: on miniredis a prefix of more than one SCAN page kept
// as many keys as the first page deleted (its cursor is a position).
func TestDeletePrefix(t *testing.T) {
	testenv.ForEachRedis(t, time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		p := b.Client.Pipeline()
		for i := range 12000 {
			p.Set(ctx, prefix+":k"+string(rune('a'+i%26))+":"+time.Duration(i).String(), "v", 0)
		}
		p.Set(ctx, prefix+"-other:keep", "v", 0)
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Client.Del(context.WithoutCancel(ctx), prefix+"-other:keep").Err() })
		if err := keyspace.DeletePrefix(ctx, b.Client, prefix); err != nil {
			t.Fatal(err)
		}
		if left := testenv.Snapshot(t, b.Client, prefix); len(left) != 0 {
			t.Errorf("%d keys left under %s", len(left), prefix)
		}
		if n, err := b.Client.Exists(ctx, prefix+"-other:keep").Result(); err != nil || n != 1 {
			t.Errorf("the key outside the prefix: exists %d (%v), want kept", n, err)
		}
	})
}
