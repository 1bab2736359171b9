package segmentstore

import (
	"context"
	"fmt"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Fixture is raw layout content for tests and SDK compatibility checks, in
// the terms the SDKs read: include and exclude sets of arbitrary refs, and a
// sync time. Unlike the Writer it writes exclude sets (cohortsync never
// does) and no member index or metadata, so that readers are checked against
// the layout rather than against the Writer.
type Fixture struct {
	Include map[string][]string // context key → refs it is included in
	Exclude map[string][]string // context key → refs it is excluded from
	// SyncedOn is written as big_segments_synchronized_on; the zero time
	// leaves the key alone (the SDKs then report STALE).
	SyncedOn time.Time
}

// WriteFixture adds f's content under prefix in one pipeline: SADD to each
// set, SET of the sync time.
func WriteFixture(ctx context.Context, c WriteClient, prefix string, f Fixture) error {
	pipe := c.Pipeline()
	for key, refs := range f.Include {
		pipe.SAdd(ctx, bigsegments.IncludeKey(prefix, key), toAny(refs)...)
	}
	for key, refs := range f.Exclude {
		pipe.SAdd(ctx, bigsegments.ExcludeKey(prefix, key), toAny(refs)...)
	}
	if !f.SyncedOn.IsZero() {
		pipe.Set(ctx, bigsegments.SyncTimeKey(prefix), bigsegments.UnixMillis(f.SyncedOn), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write Big Segments fixture under prefix %q: %w", prefix, err)
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
