package segmentstore

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// TestApplyContentsGolden pins what a sequence of mixed batches leaves in
// Redis, key by key, against testdata/apply.golden (written by the Writer
// before its client-side cost was cut, issue 12): the commands may be
// built differently, the contents may not change. The batches mix joins,
// leaves and re-adds; a context key changed several times in one batch;
// the same context key in several segments, generations and prefixes; a
// removal of a member never in; and a segment whose member index is still
// in the set form of older releases. Run with -update to rewrite the
// golden file after an intended change of the layout.
func TestApplyContentsGolden(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		other := prefix + "-b" // a second prefix: the same context keys under other keys
		testenv.DropPrefix(t, b.Client, other)
		legacy := bigsegments.MembersKey(prefix, "legacy.g1")
		if err := b.Client.SAdd(ctx, legacy, "u1", "u2").Err(); err != nil {
			t.Fatal(err)
		}
		clock := time.UnixMilli(1_700_000_000_000)
		w := NewWriter(b.Client, func() time.Time { clock = clock.Add(time.Second); return clock })
		ch := change
		batches := [][]Change{
			{ // first sync: joins over two segments, a generation and two prefixes
				ch(prefix, "a", 1, "u1", false, 101), ch(prefix, "b", 1, "u1", false, 102),
				ch(prefix, "a", 1, "u2", false, 103), ch(prefix, "a", 2, "u1", false, 104),
				ch(other, "a", 1, "u1", false, 105), ch(prefix, "legacy", 1, "u3", false, 106),
				ch(prefix, "a", 1, "u3", false, 107),
			},
			{ // churn within a batch: join-leave-join, leave-join, join-leave, duplicates
				ch(prefix, "a", 1, "u4", false, 201), ch(prefix, "a", 1, "u4", true, 202), ch(prefix, "a", 1, "u4", false, 203),
				ch(prefix, "a", 1, "u2", true, 204), ch(prefix, "a", 1, "u2", false, 205),
				ch(prefix, "b", 1, "u5", false, 206), ch(prefix, "b", 1, "u5", true, 207),
				ch(prefix, "a", 1, "u1", false, 208), ch(prefix, "a", 1, "u1", false, 209), // re-adds of a member in
				ch(prefix, "a", 1, "never", true, 210), // a removal of a member never in
				ch(prefix, "legacy", 1, "u1", true, 211), ch(prefix, "legacy", 1, "u4", false, 212),
				ch(other, "a", 1, "u1", true, 213), ch(other, "a", 1, "u6", false, 214),
			},
			{ // a redelivery of older events after newer ones, from an older run
				ch(prefix, "a", 1, "u3", true, 150), ch(prefix, "a", 2, "u1", false, 104),
				ch(prefix, "b", 1, "u1", false, 102), ch(prefix, "a", 1, "u7", false, 160),
			},
			{ // leaves from a later run, and a join of a member that left
				ch(prefix, "a", 1, "u1", true, 301), ch(prefix, "a", 2, "u1", true, 302),
				ch(prefix, "legacy", 1, "u2", true, 303), ch(prefix, "a", 1, "u3", false, 304),
				ch(other, "a", 1, "u6", true, 305), ch(other, "a", 1, "u1", false, 306),
			},
			{ // several runs per segment: their starts, one of them recorded already
				ch(prefix, "a", 1, "u8", false, 450), ch(prefix, "a", 1, "u9", false, 420), ch(prefix, "a", 1, "u8", true, 510),
				ch(prefix, "a", 1, "u10", false, 320), ch(prefix, "a", 1, "u11", false, 601), ch(prefix, "b", 1, "u8", false, 499),
				ch(prefix, "b", 1, "u9", false, 401), ch(other, "a", 1, "u8", false, 700), ch(other, "a", 1, "u9", false, 801),
			},
		}
		for n, batch := range batches {
			if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
				t.Fatalf("batch %d: %v %v", n, f, err)
			}
		}
		var lines []string
		for _, s := range []struct{ prefix, name string }{{prefix, "P"}, {other, "Q"}} {
			for k, v := range testenv.Snapshot(t, b.Client, s.prefix) {
				if v == "zset" { // Snapshot prints a sorted set's type alone
					zs, err := b.Client.ZRangeWithScores(ctx, k, 0, -1).Result()
					if err != nil {
						t.Fatal(err)
					}
					v += fmt.Sprint(zs)
				}
				lines = append(lines, s.name+strings.TrimPrefix(k, s.prefix)+" = "+v)
			}
		}
		slices.Sort(lines)
		testenv.Golden(t, *update, filepath.Join("testdata", "apply.golden"), []byte(strings.Join(lines, "\n")+"\n"))
	})
}
