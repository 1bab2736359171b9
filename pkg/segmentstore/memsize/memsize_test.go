package memsize_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/segmentstore/memsize"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestMeasure measures a small segment: on a real redis-server each layout
// costs memory, the ones with an index more than the bare one; miniredis,
// which has no INFO memory, is refused with the reason.
func TestMeasure(t *testing.T) {
	rb := testenv.Redis(t)
	rdb, ok := rb.Client.(*redis.Client)
	if !ok {
		t.Fatalf("standalone client expected, got %T", rb.Client)
	}
	ctx := testenv.Context(t, time.Minute)
	prefix := testenv.Name(t)
	res, err := memsize.Measure(ctx, rdb, prefix, 2000)
	if rb.Miniredis != nil {
		if err == nil || !errors.Is(err, memsize.ErrNoUsedMemory) {
			t.Fatalf("Measure on miniredis = %v, want ErrNoUsedMemory", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if res[memsize.Bare] <= 0 || res[memsize.SetIndex] <= res[memsize.Bare] || res[memsize.Writer] <= res[memsize.Bare] {
		t.Errorf("bytes per membership %v: want bare > 0 and both indexed layouts above it", res)
	}
	if left := testenv.Snapshot(t, rdb, prefix); len(left) != 0 {
		t.Errorf("%d keys left", len(left))
	}
	for _, l := range memsize.Layouts {
		if left := testenv.Snapshot(t, rdb, prefix+"-"+l); len(left) != 0 {
			t.Errorf("%d keys of the %s layout left", len(left), l)
		}
	}
}
