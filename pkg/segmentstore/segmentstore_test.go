package segmentstore

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestReaders(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			c, prefix := b.Client, testenv.Name(t)
			const ref = "amplitude-7khm89cz.g1"
			// Written raw, the way the consumer and the LaunchDarkly Relay
			// Proxy do, so the readers are checked against the layout and
			// not against themselves.
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(c.SAdd(ctx, bigsegments.IncludeKey(prefix, "alice"), ref, "other.g3").Err())
			must(c.SAdd(ctx, bigsegments.ExcludeKey(prefix, "alice"), "vip.g1").Err())
			var keys []any
			for i := range 2500 {
				keys = append(keys, fmt.Sprintf("user-%04d", i))
			}
			must(c.SAdd(ctx, bigsegments.MembersKey(prefix, ref), keys...).Err())
			must(c.HSet(ctx, bigsegments.MetaKey(prefix, ref), bigsegments.MetaLastRun, "run-9", bigsegments.MetaLastSeq, "18446744073709551615",
				bigsegments.MetaLastApplied, "1772366400000", bigsegments.MetaContextKind, "user").Err())
			must(c.Set(ctx, bigsegments.SyncTimeKey(prefix), "1772366400123", 0).Err())

			inc, exc, err := Membership(ctx, c, prefix, "alice")
			if err != nil || !slices.Equal(inc, []string{ref, "other.g3"}) || !slices.Equal(exc, []string{"vip.g1"}) {
				t.Errorf("Membership(alice) = %q, %q, %v", inc, exc, err)
			}
			inc, exc, err = Membership(ctx, c, prefix, "nobody")
			if err != nil || len(inc) != 0 || len(exc) != 0 {
				t.Errorf("Membership(nobody) = %q, %q, %v", inc, exc, err)
			}

			info, err := Info(ctx, c, prefix, ref)
			want := SegmentInfo{Members: 2500, LastRun: "run-9", LastSeq: 18446744073709551615, LastApplied: time.UnixMilli(1772366400000), ContextKind: "user"}
			if err != nil || info != want {
				t.Errorf("Info = %+v, %v\nwant %+v", info, err, want)
			}
			if info, err := Info(ctx, c, prefix, "never.g1"); err != nil || info != (SegmentInfo{}) {
				t.Errorf("Info(never written) = %+v, %v", info, err)
			}

			seen := map[string]bool{}
			if err := Members(ctx, c, prefix, ref, func(k string) error { seen[k] = true; return nil }); err != nil || len(seen) != 2500 {
				t.Errorf("Members saw %d keys, %v; want 2500", len(seen), err)
			}
			stop := errors.New("enough")
			n := 0
			if err := Members(ctx, c, prefix, ref, func(string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
				t.Errorf("Members with a failing callback = %v after %d calls", err, n)
			}

			ts, ok, err := SyncTime(ctx, c, prefix)
			if err != nil || !ok || !ts.Equal(time.UnixMilli(1772366400123)) {
				t.Errorf("SyncTime = %v, %v, %v", ts, ok, err)
			}
			if _, ok, err := SyncTime(ctx, c, prefix+"-missing"); ok || err != nil {
				t.Errorf("SyncTime(missing) = %v, %v", ok, err)
			}
		})
	}
}

func TestReadersRejectMalformedValues(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			c, prefix := b.Client, testenv.Name(t)
			for _, tc := range []struct {
				name, field, value, want string
			}{
				{"last_seq not a number", bigsegments.MetaLastSeq, "-1", prefix + `:cohortsync:{s.g1}:meta field last_seq: "-1" is not an unsigned integer`},
				{"last_applied not a number", bigsegments.MetaLastApplied, "yesterday", prefix + `:cohortsync:{s.g1}:meta field last_applied: "yesterday" is not unix milliseconds`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					key := bigsegments.MetaKey(prefix, "s.g1")
					if err := c.Del(ctx, key).Err(); err != nil {
						t.Fatal(err)
					}
					if err := c.HSet(ctx, key, tc.field, tc.value).Err(); err != nil {
						t.Fatal(err)
					}
					if _, err := Info(ctx, c, prefix, "s.g1"); err == nil || err.Error() != tc.want {
						t.Errorf("Info = %v\nwant %s", err, tc.want)
					}
				})
			}
			if err := c.Set(ctx, bigsegments.SyncTimeKey(prefix), "soon", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := SyncTime(ctx, c, prefix); err == nil || err.Error() != prefix+`:big_segments_synchronized_on: "soon" is not unix milliseconds` {
				t.Errorf("SyncTime = %v", err)
			}
			if err := c.Set(ctx, bigsegments.MembersKey(prefix, "s.g1"), "a string", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if err := Members(ctx, c, prefix, "s.g1", func(string) error { return nil }); err == nil {
				t.Error("Members of a string key succeeded")
			}
		})
	}
}
