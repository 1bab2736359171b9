package memsize

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/keyspace"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// Layouts measured, in the order Measure writes them.
const (
	Bare     = "bare"      // include sets only
	SetIndex = "set-index" // include sets and a set of the members
	Writer   = "writer"    // segmentstore.Writer: include sets, member index, run index, metadata
)

// Layouts lists the layouts in Measure's order.
var Layouts = []string{Bare, SetIndex, Writer}

// batch is the pipeline (and Writer.Apply) size of the writes.
const batch = 10000

// Result is bytes of used_memory per membership of each layout.
type Result map[string]float64

// Ratio is the Writer's layout per membership over the bare one's.
func (r Result) Ratio() float64 {
	if r[Bare] == 0 {
		return 0
	}
	return r[Writer] / r[Bare]
}

// Key is the context key of member i ("user-<i>@example.com"), the form
// every benchmark of the repository uses.
func Key(i int) string { return "user-" + strconv.Itoa(i) + "@example.com" }

// Measure writes one segment of members members in each layout under
// "<prefix>-<layout>", reads the used_memory delta of each, and deletes
// it before the next: the server should be otherwise idle, since any
// other writer moves used_memory too.
func Measure(ctx context.Context, rdb *redis.Client, prefix string, members int) (Result, error) {
	if members <= 0 {
		return nil, fmt.Errorf("memsize: members must be > 0, got %d", members)
	}
	const segment, generation = "bench-segment", 1
	ref := bigsegments.Ref(segment, generation)
	writes := map[string]func(prefix string) error{
		Bare:     func(p string) error { return rawWrite(ctx, rdb, p, ref, members, false) },
		SetIndex: func(p string) error { return rawWrite(ctx, rdb, p, ref, members, true) },
		Writer: func(p string) error {
			w := segmentstore.NewWriter(rdb, time.Now)
			changes := make([]segmentstore.Change, 0, batch)
			for i := range members {
				changes = append(changes, segmentstore.Change{Prefix: p, Segment: segment, Generation: generation, ContextKind: "user",
					ContextKey: Key(i), Seq: uint64(i + 1), Run: fmt.Sprintf("20261207T000000Z-%08d", i/100000)})
				if len(changes) == cap(changes) || i == members-1 {
					failed, err := w.Apply(ctx, changes)
					if err != nil {
						return fmt.Errorf("apply: %w", err)
					}
					if len(failed) > 0 {
						return fmt.Errorf("apply: %d changes failed, the first: %v", len(failed), failed[0])
					}
					changes = changes[:0]
				}
			}
			return nil
		},
	}
	res := Result{}
	for _, layout := range Layouts {
		p := prefix + "-" + layout
		if err := settle(ctx, rdb); err != nil {
			return nil, err
		}
		before, err := UsedMemory(ctx, rdb)
		if err != nil {
			return nil, err
		}
		if err := writes[layout](p); err != nil {
			return nil, fmt.Errorf("memsize: write the %s layout: %w", layout, err)
		}
		after, err := UsedMemory(ctx, rdb)
		if err != nil {
			return nil, err
		}
		res[layout] = float64(after-before) / float64(members)
		if err := keyspace.DeletePrefix(ctx, rdb, p); err != nil {
			return nil, fmt.Errorf("memsize: %w", err)
		}
	}
	return res, settle(ctx, rdb)
}

// rawWrite writes members include sets holding ref under prefix with
// pipelined SADDs, and with index a set of the members too.
func rawWrite(ctx context.Context, rdb *redis.Client, prefix, ref string, members int, index bool) error {
	membersKey := bigsegments.MembersKey(prefix, ref)
	for i := 0; i < members; i += batch {
		p := rdb.Pipeline()
		for j := i; j < min(i+batch, members); j++ {
			p.SAdd(ctx, bigsegments.IncludeKey(prefix, Key(j)), ref)
			if index {
				p.SAdd(ctx, membersKey, Key(j))
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// UsedMemory is INFO memory's used_memory.
func UsedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	v, err := infoField(ctx, rdb, "memory", "used_memory")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memsize: used_memory %q: %w", v, err)
	}
	return n, nil
}

// settleTimeout bounds the wait for Redis's background frees.
const settleTimeout = time.Minute

// settle waits until Redis has freed the values of keys deleted earlier
// (UNLINK frees large values in a background thread, and used_memory falls
// while it does), so that a delta measures only what was written.
func settle(ctx context.Context, rdb *redis.Client) error {
	deadline := time.Now().Add(settleTimeout)
	for {
		v, err := infoField(ctx, rdb, "memory", "lazyfree_pending_objects")
		if err != nil {
			return err
		}
		if v == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("memsize: lazyfree_pending_objects still %s after %s", v, settleTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ErrNoUsedMemory says the server is not a real redis-server.
var ErrNoUsedMemory = errors.New("a real redis-server is needed")

func infoField(ctx context.Context, rdb *redis.Client, section, field string) (string, error) {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return "", fmt.Errorf("memsize: INFO %s (%w): %w", section, ErrNoUsedMemory, err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("memsize: INFO %s has no %s (%w)", section, field, ErrNoUsedMemory)
}
