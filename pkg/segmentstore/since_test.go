package segmentstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// at builds a Change of alice-like keys in segment seg of run.
func at(prefix, key string, remove bool, seq uint64, run string) Change {
	return Change{Prefix: prefix, Segment: "seg", Generation: 1, ContextKind: "user", ContextKey: key, Remove: remove, Seq: seq, Run: run}
}

// TestJoinedSince pins what "since which run" means: the add that let the
// key in for its current stay, kept across re-adds (a republication) and
// replays, reset by a removal, and mapped to its run by the run index.
func TestJoinedSince(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches [][]Change // applied in order, each as one Apply
		want    Since
		runs    []RunStart
	}{
		{"first add", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}}},
			Since{Member: true, Seq: 3, Run: "A"}, []RunStart{{"A", 3}}},
		{"a re-add keeps the first add", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}}, {{ContextKey: "k", Seq: 8, Run: "B"}}},
			Since{Member: true, Seq: 3, Run: "A"}, []RunStart{{"A", 3}, {"B", 8}}},
		{"removed then added again", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}}, {{ContextKey: "k", Seq: 5, Run: "B", Remove: true}}, {{ContextKey: "k", Seq: 9, Run: "C"}}},
			Since{Member: true, Seq: 9, Run: "C"}, []RunStart{{"A", 3}, {"B", 5}, {"C", 9}}},
		{"removed", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}}, {{ContextKey: "k", Seq: 5, Run: "B", Remove: true}}},
			Since{}, []RunStart{{"A", 3}, {"B", 5}}},
		{"a run over several batches has one entry, its lowest", [][]Change{
			{{ContextKey: "x", Seq: 11, Run: "A"}, {ContextKey: "k", Seq: 12, Run: "A"}}, {{ContextKey: "y", Seq: 10, Run: "A"}}, {{ContextKey: "z", Seq: 13, Run: "A"}}},
			Since{Member: true, Seq: 12, Run: "A"}, []RunStart{{"A", 10}}},
		{"a run between two others", [][]Change{
			{{ContextKey: "x", Seq: 1, Run: "A"}}, {{ContextKey: "y", Seq: 20, Run: "C"}}, {{ContextKey: "k", Seq: 10, Run: "B"}}},
			Since{Member: true, Seq: 10, Run: "B"}, []RunStart{{"A", 1}, {"B", 10}, {"C", 20}}},
		{"within one batch, a re-add keeps the first add", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}, {ContextKey: "k", Seq: 8, Run: "A"}}},
			Since{Member: true, Seq: 3, Run: "A"}, []RunStart{{"A", 3}}},
		{"within one batch, added, removed and added again", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}, {ContextKey: "k", Seq: 5, Run: "A", Remove: true}, {ContextKey: "k", Seq: 9, Run: "B"}}},
			Since{Member: true, Seq: 9, Run: "B"}, []RunStart{{"A", 3}, {"B", 9}}},
		{"within one batch, added and removed", [][]Change{{{ContextKey: "k", Seq: 3, Run: "A"}, {ContextKey: "k", Seq: 5, Run: "A", Remove: true}}},
			Since{}, []RunStart{{"A", 3}}},
		{"sequence numbers past 2^53 compare exactly", [][]Change{
			{{ContextKey: "x", Seq: 1<<53 + 1, Run: "A"}}, {{ContextKey: "k", Seq: 1<<53 + 2, Run: "B"}}},
			Since{Member: true, Seq: 1<<53 + 2, Run: "B"}, []RunStart{{"A", 1<<53 + 1}, {"B", 1<<53 + 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
				w := NewWriter(b.Client, time.Now)
				apply := func() {
					for _, batch := range tc.batches {
						for i := range batch {
							c := &batch[i]
							c.Prefix, c.Segment, c.Generation, c.ContextKind = prefix, "seg", 1, "user"
						}
						if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
							t.Fatalf("Apply: %v %v", f, err)
						}
					}
				}
				apply()
				check := func(when string) {
					got, err := JoinedSince(ctx, b.Client, prefix, "k", []string{"seg.g1", "other.g1"})
					if err != nil || len(got) != 2 || got[0] != tc.want || got[1] != (Since{}) {
						t.Errorf("%s: JoinedSince = %+v, %v; want %+v and nothing in other.g1", when, got, err, tc.want)
					}
					runs, err := Runs(ctx, b.Client, prefix, "seg.g1")
					if err != nil || !slices.Equal(runs, tc.runs) {
						t.Errorf("%s: Runs = %+v, %v; want %+v", when, runs, err, tc.runs)
					}
				}
				check("applied once")
				once := testenv.Snapshot(t, b.Client, prefix, bigsegments.MetaKey(prefix, "seg.g1"))
				apply() // a redelivery or a replay changes nothing
				check("applied twice")
				if d := testenv.DiffSnapshots(once, testenv.Snapshot(t, b.Client, prefix, bigsegments.MetaKey(prefix, "seg.g1"))); d != "" {
					t.Errorf("applying again changed Redis:\n%s", d)
				}
				w = NewWriter(b.Client, time.Now) // a restarted consumer replays them
				apply()
				check("replayed by another writer")
			})
		})
	}
}

// TestSetFormIndexKeepsWorking: a segment whose member index an older
// release wrote as a set keeps that form; its members, old and new, read
// as joined before since-tracking, and counts, scans and metadata work.
func TestSetFormIndexKeepsWorking(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		key := bigsegments.MembersKey(prefix, "seg.g1")
		if err := b.Client.SAdd(ctx, key, "old", "leaving").Err(); err != nil {
			t.Fatal(err)
		}
		w := NewWriter(b.Client, time.Now)
		if f, err := w.Apply(ctx, []Change{at(prefix, "new", false, 7, "R"), at(prefix, "leaving", true, 8, "R")}); err != nil || len(f) != 0 {
			t.Fatalf("Apply: %v %v", f, err)
		}
		if typ := b.Client.Type(ctx, key).Val(); typ != "set" {
			t.Errorf("member index is a %s, want it kept a set", typ)
		}
		got, err := JoinedSince(ctx, b.Client, prefix, "old", []string{"seg.g1"})
		if err != nil || got[0] != (Since{Member: true}) {
			t.Errorf("JoinedSince(old) = %+v, %v; want a member of unknown since", got, err)
		}
		got, err = JoinedSince(ctx, b.Client, prefix, "leaving", []string{"seg.g1"})
		if err != nil || got[0] != (Since{}) {
			t.Errorf("JoinedSince(leaving) = %+v, %v; want no member", got, err)
		}
		var members []string
		if err := Members(ctx, b.Client, prefix, "seg.g1", func(k string) error { members = append(members, k); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(members)
		info, err := Info(ctx, b.Client, prefix, "seg.g1")
		if err != nil || info.Members != 2 || info.LastSeq != 8 || !slices.Equal(members, []string{"new", "old"}) {
			t.Errorf("Info = %+v, %v, members %q; want 2 members (new, old), last_seq 8", info, err, members)
		}
	})
}

// TestJoinedSinceUnreachable: a Redis that cannot be reached is an error,
// never "not a member".
func TestJoinedSinceUnreachable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := testenv.Context(t, 10*time.Second)
	if got, err := JoinedSince(ctx, rdb, "p", "k", []string{"seg.g1"}); err == nil {
		t.Errorf("JoinedSince = %+v, want an error", got)
	}
	if got, err := Infos(ctx, rdb, "p", []string{"seg.g1"}); err == nil {
		t.Errorf("Infos = %+v, want an error", got)
	}
}

// TestForeignRunIndexRefusesTheSegment: a segment whose run index holds
// another type takes none of its changes (all or nothing), like one whose
// member index or metadata does.
func TestForeignRunIndexRefusesTheSegment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		if err := b.Client.Set(ctx, bigsegments.RunsKey(prefix, "seg.g1"), "not a zset", 0).Err(); err != nil {
			t.Fatal(err)
		}
		before := testenv.Snapshot(t, b.Client, prefix)
		w := NewWriter(b.Client, time.Now)
		f, err := w.Apply(ctx, []Change{at(prefix, "alice", false, 1, "A"), at(prefix, "bob", false, 2, "A")})
		if err != nil || len(f) != 2 || Classify(f[0].Err) != ClassEvent {
			t.Fatalf("Apply = %v, %v; want both changes refused as WRONGTYPE", f, err)
		}
		if d := testenv.DiffSnapshots(before, testenv.Snapshot(t, b.Client, prefix)); d != "" {
			t.Errorf("refused changes wrote to Redis:\n%s", d)
		}
	})
}

// TestMemberIndexRepairsAnAttemptCutShort pins the member index's writes
// since they became one variadic HSET per segment for the keys whose
// include write changed the set: an attempt stopped between the include
// write and the member-index write (a crash, a lost connection) leaves a
// member in the include set and not in the index, or (a removal) out of the
// include set and still in the index. The next delivery must repair both,
// and a batch larger than one variadic command must be written whole.
func TestMemberIndexRepairsAnAttemptCutShort(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		members := bigsegments.MembersKey(prefix, "seg.g1")
		// "half-in" is in the include set only; "half-out" was removed from
		// the include set but its index entry (seq 2) is left.
		if err := b.Client.SAdd(ctx, bigsegments.IncludeKey(prefix, "half-in"), "seg.g1").Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.HSet(ctx, members, "half-out", "2").Err(); err != nil {
			t.Fatal(err)
		}
		batch := []Change{at(prefix, "half-in", false, 5, "R"), at(prefix, "half-out", false, 6, "R")}
		for i := range 2*maxFields + 10 {
			batch = append(batch, at(prefix, fmt.Sprintf("k%05d", i), false, uint64(10+i), "R"))
		}
		w := NewWriter(b.Client, time.Now)
		if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
			t.Fatalf("Apply: %v %v", f, err)
		}
		for key, want := range map[string]Since{
			"half-in":  {Member: true, Seq: 5, Run: "R"},                    // filled in by the redelivery
			"half-out": {Member: true, Seq: 6, Run: "R"},                    // the leftover replaced: this add let it in
			"k02009":   {Member: true, Seq: 10 + 2*maxFields + 9, Run: "R"}, // in the third HSET
		} {
			got, err := JoinedSince(ctx, b.Client, prefix, key, []string{"seg.g1"})
			if err != nil || got[0] != want {
				t.Errorf("JoinedSince(%s) = %+v, %v; want %+v", key, got, err, want)
			}
		}
		info, err := Info(ctx, b.Client, prefix, "seg.g1")
		if err != nil || info.Members != int64(len(batch)) {
			t.Fatalf("Info = %+v, %v; want %d members", info, err, len(batch))
		}
		// All of them leave in one batch, over several variadic HDELs.
		for i := range batch {
			batch[i].Remove, batch[i].Seq = true, batch[i].Seq+100_000
		}
		if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
			t.Fatalf("Apply removals: %v %v", f, err)
		}
		if n, err := b.Client.Exists(ctx, members).Result(); err != nil || n != 0 {
			t.Errorf("member index after every member left: exists=%d, %v", n, err)
		}
		if in, _, err := Membership(ctx, b.Client, prefix, "k00000"); err != nil || len(in) != 0 {
			t.Errorf("k00000 still included in %q (%v)", in, err)
		}
	})
}
