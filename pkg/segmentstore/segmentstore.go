package segmentstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Client is the part of a go-redis client the readers use; both
// *redis.Client and *redis.ClusterClient satisfy it.
type Client interface {
	Pipeline() redis.Pipeliner
	Get(ctx context.Context, key string) *redis.StringCmd
	SScan(ctx context.Context, key string, cursor uint64, match string, count int64) *redis.ScanCmd
	HScan(ctx context.Context, key string, cursor uint64, match string, count int64) *redis.ScanCmd
}

// Membership returns the segment refs a context key is included in and
// excluded from, sorted, read the way the SDKs read them (SMEMBERS of both
// sets).
func Membership(ctx context.Context, c Client, prefix, contextKey string) (included, excluded []string, err error) {
	pipe := c.Pipeline()
	inc := pipe.SMembers(ctx, bigsegments.IncludeKey(prefix, contextKey))
	exc := pipe.SMembers(ctx, bigsegments.ExcludeKey(prefix, contextKey))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read membership of context key %q under prefix %q: %w", contextKey, prefix, err)
	}
	included, excluded = inc.Val(), exc.Val()
	slices.Sort(included)
	slices.Sort(excluded)
	return included, excluded, nil
}

// SegmentInfo describes one segment ref as the consumer recorded it.
type SegmentInfo struct {
	Members     int64     // length of the member index (HLEN, or SCARD of the set form)
	LastRun     string    // sync run of the highest applied sequence number
	LastSeq     uint64    // highest applied sequence number; 0 if none
	LastApplied time.Time // when the segment was last written (its last batch); zero if never
	ContextKind string    // context kind of the members
}

// Info returns the member count and metadata of ref ("<segment>.g<gen>"). A
// segment never written reads as the zero SegmentInfo.
func Info(ctx context.Context, c Client, prefix, ref string) (SegmentInfo, error) {
	infos, err := Infos(ctx, c, prefix, []string{ref})
	if err != nil {
		return SegmentInfo{}, err
	}
	return infos[0], nil
}

// infoBatch bounds the refs of one Infos pipeline.
const infoBatch = 500

// Infos is Info of every ref, in order, read in pipelines of a few hundred
// refs: one round trip for the segments of most destinations.
func Infos(ctx context.Context, c Client, prefix string, refs []string) ([]SegmentInfo, error) {
	out := make([]SegmentInfo, 0, len(refs))
	for len(refs) > 0 {
		batch := refs[:min(len(refs), infoBatch)]
		refs = refs[len(batch):]
		pipe := c.Pipeline()
		// Both counts of each index: the one of the other form fails with
		// WRONGTYPE, which says which form the index has.
		hlens := make([]*redis.IntCmd, len(batch))
		cards := make([]*redis.IntCmd, len(batch))
		metas := make([]*redis.MapStringStringCmd, len(batch))
		for i, ref := range batch {
			hlens[i] = pipe.HLen(ctx, bigsegments.MembersKey(prefix, ref))
			cards[i] = pipe.SCard(ctx, bigsegments.MembersKey(prefix, ref))
			metas[i] = pipe.HGetAll(ctx, bigsegments.MetaKey(prefix, ref))
		}
		// Exec reports the first failed command: WRONGTYPE is expected (one
		// of the two counts); anything else failed the batch.
		if _, err := pipe.Exec(ctx); err != nil && Classify(err) != ClassEvent {
			return nil, fmt.Errorf("read info of %d segments under prefix %q: %w", len(batch), prefix, err)
		}
		for i, ref := range batch {
			n, err := count(hlens[i], cards[i])
			if err == nil {
				err = metas[i].Err()
			}
			if err != nil {
				return nil, fmt.Errorf("read info of segment %q under prefix %q: %w", ref, prefix, err)
			}
			info, err := parseInfo(bigsegments.MetaKey(prefix, ref), n, metas[i].Val())
			if err != nil {
				return nil, err
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// count is the length of a member index from its HLEN and SCARD: the one
// that did not fail with WRONGTYPE (both are 0 for a missing key).
func count(hlen, card *redis.IntCmd) (int64, error) {
	switch {
	case hlen.Err() == nil:
		return hlen.Val(), nil
	case card.Err() == nil:
		return card.Val(), nil
	case Classify(hlen.Err()) == ClassEvent && Classify(card.Err()) == ClassEvent:
		return 0, fmt.Errorf("member index is neither a hash nor a set: %w", hlen.Err())
	}
	return 0, cmp.Or(card.Err(), hlen.Err())
}

// parseInfo reads the metadata hash m of metaKey.
func parseInfo(metaKey string, members int64, m map[string]string) (SegmentInfo, error) {
	info := SegmentInfo{Members: members, LastRun: m[bigsegments.MetaLastRun], ContextKind: m[bigsegments.MetaContextKind]}
	if v, ok := m[bigsegments.MetaLastSeq]; ok {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return info, fmt.Errorf("%s field %s: %q is not an unsigned integer", metaKey, bigsegments.MetaLastSeq, v)
		}
		info.LastSeq = n
	}
	if v, ok := m[bigsegments.MetaLastApplied]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return info, fmt.Errorf("%s field %s: %q is not unix milliseconds", metaKey, bigsegments.MetaLastApplied, v)
		}
		info.LastApplied = time.UnixMilli(ms)
	}
	return info, nil
}

// scanCount is the SSCAN COUNT hint: large enough that a million-member
// segment takes about a thousand round trips, small enough that one reply
// stays well under a megabyte.
const scanCount = 1000

// Members calls fn with every raw context key in ref's member index, in no
// particular order, reading it in bounded pages with SSCAN so that a segment
// of millions never sits in memory at once. As with any SSCAN, a key added
// or removed during the walk may or may not be seen, and Redis may return a
// key more than once. An error from fn stops the walk and is returned.
//
// The index is a hash (HSCAN, keys only) or, for a segment written before
// since-tracking, a set (SSCAN).
func Members(ctx context.Context, c Client, prefix, ref string, fn func(contextKey string) error) error {
	key := bigsegments.MembersKey(prefix, ref)
	what := fmt.Sprintf("members of segment %q under prefix %q", ref, prefix)
	for attempt := 0; ; attempt++ {
		pipe := c.Pipeline()
		typ := pipe.Type(ctx, key)
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
		called := false
		seen := func(k string) error { called = true; return fn(k) }
		var err error
		switch typ.Val() {
		case "none":
			return nil
		case "hash":
			err = hscanKeys(ctx, c, key, what, seen)
		default:
			err = scan(ctx, c, key, what, seen)
		}
		// The index changed form between TYPE and the scan (a set-form
		// index emptied, then written anew as a hash): look again, once.
		if err != nil && !called && attempt == 0 && Classify(err) == ClassEvent {
			continue
		}
		return err
	}
}

// hscanKeys calls fn with every field of the hash at key, what naming it
// in errors.
func hscanKeys(ctx context.Context, c Client, key, what string, fn func(string) error) error {
	return walk(ctx, what, func(cursor uint64) ([]string, uint64, error) {
		kv, next, err := c.HScan(ctx, key, cursor, "", scanCount).Result()
		if err != nil {
			return nil, 0, err
		}
		keys := make([]string, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			keys = append(keys, kv[i])
		}
		return keys, next, nil
	}, fn)
}

// scan calls fn with every member of the set at key, what naming it in
// errors.
func scan(ctx context.Context, c Client, key, what string, fn func(string) error) error {
	return walk(ctx, what, func(cursor uint64) ([]string, uint64, error) {
		return c.SScan(ctx, key, cursor, "", scanCount).Result()
	}, fn)
}

// walk pages through a scan with page until its cursor comes back to 0.
func walk(ctx context.Context, what string, page func(cursor uint64) ([]string, uint64, error), fn func(string) error) error {
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys, next, err := page(cursor)
		if err != nil {
			return fmt.Errorf("scan %s: %w", what, err)
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Segments calls fn with every segment ref in prefix's segments index (the
// refs the Writer has applied events of), in no particular order, read
// with SSCAN in bounded pages like Members; a ref may come more than once.
// Segments written before the index existed are in it only once an event
// of theirs is applied again.
func Segments(ctx context.Context, c Client, prefix string, fn func(ref string) error) error {
	return scan(ctx, c, bigsegments.SegmentsKey(prefix), "segments index under prefix "+strconv.Quote(prefix), fn)
}

// SyncTime returns the store's big_segments_synchronized_on time and whether
// the key exists. The SDKs report STALE when it is missing or old.
func SyncTime(ctx context.Context, c Client, prefix string) (time.Time, bool, error) {
	key := bigsegments.SyncTimeKey(prefix)
	v, err := c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s: %w", key, err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%s: %q is not unix milliseconds", key, v)
	}
	return time.UnixMilli(ms), true, nil
}
