package segmentstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var rebuildID = snapshot.SegmentID{Env: "production", Segment: "beta-users", Generation: 2, ContextKind: "user"}

// TestRebuilder: the read-back a lost state directory is rebuilt from waits
// for the consumer's synchronized_on to pass the call, reads the member
// index in full, and refuses a segment of another context kind.
func TestRebuilder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		c := b.Client
		ref := bigsegments.Ref(rebuildID.Segment, rebuildID.Generation)
		var keys []any
		for i := range 1500 {
			keys = append(keys, fmt.Sprintf("user-%04d", i))
		}
		if err := c.SAdd(ctx, bigsegments.MembersKey(prefix, ref), keys...).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, bigsegments.MetaKey(prefix, ref), bigsegments.MetaLastSeq, "77", bigsegments.MetaContextKind, "user").Err(); err != nil {
			t.Fatal(err)
		}
		now := time.UnixMilli(1_800_000_000_000)
		clock := func() time.Time { return now }
		r := Rebuilder{Client: c, Prefix: prefix, Wait: 50 * time.Millisecond, Poll: 5 * time.Millisecond, Now: clock}

		if seq, err := r.LastSeq(ctx, rebuildID); err != nil || seq != 77 {
			t.Fatalf("LastSeq = %d, %v; want 77", seq, err)
		}
		other := rebuildID
		other.Segment = "never-written"
		if seq, err := r.LastSeq(ctx, other); err != nil || seq != 0 {
			t.Fatalf("LastSeq of a segment never written = %d, %v; want 0", seq, err)
		}

		var got []string
		collect := func(k string) error { got = append(got, k); return nil }
		err := r.Members(ctx, rebuildID, collect)
		if !errors.Is(err, ErrNotCaughtUp) || !strings.Contains(err.Error(), "never written") || len(got) != 0 {
			t.Fatalf("Members without synchronized_on = %v (%d keys), want ErrNotCaughtUp naming the missing key", err, len(got))
		}
		if err := c.Set(ctx, bigsegments.SyncTimeKey(prefix), bigsegments.UnixMillis(now.Add(-time.Second)), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Members(ctx, rebuildID, collect); !errors.Is(err, ErrNotCaughtUp) || len(got) != 0 {
			t.Fatalf("Members with synchronized_on before the call = %v (%d keys), want ErrNotCaughtUp", err, len(got))
		}
		if err := c.Set(ctx, bigsegments.SyncTimeKey(prefix), bigsegments.UnixMillis(now), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Members(ctx, rebuildID, collect); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		got = slices.Compact(got) // SSCAN may repeat a key
		if len(got) != 1500 || got[0] != "user-0000" || got[1499] != "user-1499" {
			t.Fatalf("Members read %d keys (%q..), want user-0000..user-1499", len(got), got[:min(len(got), 2)])
		}

		kind := rebuildID
		kind.ContextKind = "device"
		if err := r.Members(ctx, kind, collect); err == nil || !strings.Contains(err.Error(), `holds context kind "user", not "device"`) {
			t.Fatalf("Members of another context kind = %v, want it refused", err)
		}
	})
}

// TestRebuilderWaitsForTheConsumer: a consumer that catches up while
// Members waits lets it go on.
func TestRebuilderWaitsForTheConsumer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		start := time.Now()
		r := Rebuilder{Client: b.Client, Prefix: prefix, Wait: 10 * time.Second, Poll: 5 * time.Millisecond}
		done := make(chan error, 1)
		go func() { done <- r.Members(ctx, rebuildID, func(string) error { return nil }) }()
		time.Sleep(30 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("Members returned %v before the consumer caught up", err)
		default:
		}
		if err := b.Client.Set(ctx, bigsegments.SyncTimeKey(prefix), bigsegments.UnixMillis(time.Now().Add(time.Millisecond)), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Members after the consumer caught up = %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("Members went on waiting after synchronized_on passed the call")
		}
	})
}
