package segmentstore

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/redisnodes"
)

// reindexCount is the SCAN COUNT hint of Reindex: a page of about this many
// keys per round trip, whatever the keyspace's size.
const reindexCount = 1000

// Reindex adds to prefix's segments index the ref of every segment whose
// metadata is under prefix, and returns how many refs it found. The Writer
// indexes every segment it writes; this is for segments last written
// before the index existed (an upgrade), once: it walks the whole keyspace
// of each master with SCAN (MATCH on the metadata keys, pages of about a
// thousand keys, never KEYS), which is the only way to find keys nothing
// lists. Running it again, or while the consumer writes, is harmless:
// adding a ref twice changes nothing.
func Reindex(ctx context.Context, c redis.UniversalClient, prefix string) (int64, error) {
	match := GlobEscape(prefix) + ":cohortsync:{*}:meta"
	index := bigsegments.SegmentsKey(prefix)
	var found atomic.Int64
	walk := func(ctx context.Context, node *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, match, reindexCount).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", node.Options().Addr, err)
			}
			refs := make([]any, 0, len(keys))
			for _, k := range keys {
				ref := strings.TrimSuffix(strings.TrimPrefix(k, prefix+":cohortsync:{"), "}:meta")
				if _, _, ok := bigsegments.ParseRef(ref); ok && k == bigsegments.MetaKey(prefix, ref) {
					refs = append(refs, ref)
				}
			}
			if len(refs) > 0 {
				// Through c: the index's slot may be another master's.
				if err := c.SAdd(ctx, index, refs...).Err(); err != nil {
					return fmt.Errorf("add to %s: %w", index, err)
				}
				found.Add(int64(len(refs)))
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if err := redisnodes.EachMaster(ctx, c, walk); err != nil {
		return found.Load(), fmt.Errorf("reindex prefix %q: %w", prefix, err)
	}
	return found.Load(), nil
}

// GlobEscape escapes the characters SCAN's MATCH gives a meaning to, so
// that a pattern matches s literally.
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
