package segmentstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// forEachBackend runs fn as a subtest on every Redis backend, with a
// context and a fresh prefix whose keys are deleted when the test ends.
func forEachBackend(t *testing.T, fn func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string)) {
	testenv.ForEachRedis(t, 30*time.Second, fn)
}

// change builds a Change of context kind "user" in run "run-<seq/100>".
func change(prefix, segment string, gen int, contextKey string, remove bool, seq uint64) Change {
	return Change{Prefix: prefix, Segment: segment, Generation: gen, ContextKind: "user",
		ContextKey: contextKey, Remove: remove, Seq: seq, Run: "run-" + strconv.FormatUint(seq/100, 10)}
}

// churn returns n changes over 4 segments, 2 generations and 97 context
// keys, every third one a removal, in sequence order.
func churn(prefix string, n int) []Change {
	out := make([]Change, n)
	for i := range out {
		out[i] = change(prefix, fmt.Sprintf("seg-%d", i%4), 1+i%2, fmt.Sprintf("user-%d", (i*7)%97), i%3 == 2, uint64(i+1))
	}
	return out
}

// srvErr is a Redis server error reply, as go-redis reports one.
type srvErr string

func (e srvErr) Error() string { return string(e) }
func (srvErr) RedisError()     {}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"success", nil, ClassOK},
		{"wrong type is the event's fault", srvErr("WRONGTYPE Operation against a key holding the wrong kind of value"), ClassEvent},
		{"wrapped wrong type", fmt.Errorf("sadd k: %w", srvErr("WRONGTYPE x")), ClassEvent},
		{"wrong type inside a script (Redis 6)", srvErr("ERR Error running script (call to f_1): @user_script:1: WRONGTYPE Operation against a key holding the wrong kind of value"), ClassEvent},
		{"other script error stays fatal", srvErr("ERR Error running script (call to f_1): @user_script:1: attempt to compare nil"), ClassFatal},
		{"loading", srvErr("LOADING Redis is loading the dataset in memory"), ClassTransient},
		{"try again", srvErr("TRYAGAIN Multiple keys request during rehashing of slot"), ClassTransient},
		{"cluster down", srvErr("CLUSTERDOWN The cluster is down"), ClassTransient},
		{"master down", srvErr("MASTERDOWN Link with MASTER is down"), ClassTransient},
		{"read only replica after failover", srvErr("READONLY You can't write against a read only replica."), ClassTransient},
		{"busy script", srvErr("BUSY Redis is busy running a script."), ClassTransient},
		{"out of memory", srvErr("OOM command not allowed when used memory > 'maxmemory'."), ClassTransient},
		{"max clients", srvErr("ERR max number of clients reached"), ClassTransient},
		{"moved not followed", srvErr("MOVED 3999 127.0.0.1:6381"), ClassTransient},
		{"network", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, ClassTransient},
		{"eof", io.EOF, ClassTransient},
		{"timeout", context.DeadlineExceeded, ClassTransient},
		{"pool timeout", redis.ErrPoolTimeout, ClassTransient},
		{"client closed", redis.ErrClosed, ClassFatal},
		{"no permission", srvErr("NOPERM User has no permissions to run the 'sadd' command"), ClassFatal},
		{"no auth", srvErr("NOAUTH Authentication required."), ClassFatal},
		{"unknown command", srvErr("ERR unknown command 'SADD'"), ClassFatal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestApplyStopsOnFatalRedisError: an error that would hit every change
// (here: the command is refused) is fatal, so that the consumer stops
// rather than dead-lettering the stream.
func TestApplyStopsOnFatalRedisError(t *testing.T) {
	rdb := testenv.Redis(t).Client
	rdb.AddHook(refuse{})
	w := NewWriter(rdb, time.Now)
	f, err := w.Apply(testenv.Context(t, 10*time.Second), []Change{change("p", "seg", 1, "k", false, 1)})
	if !errors.Is(err, ErrFatal) || len(f) != 0 || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("Apply = %v, %v; want a fatal NOPERM error", f, err)
	}
	if Classify(err) != ClassFatal {
		t.Errorf("Classify(%v) = %v, want the error to stay fatal when wrapped", err, Classify(err))
	}
}

type refuse struct{}

func (refuse) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (refuse) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (refuse) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			c.SetErr(srvErr("NOPERM User has no permissions to run the '" + c.Name() + "' command"))
		}
		return cmds[0].Err()
	}
}

func TestApplyTwiceIsIdempotent(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			prefix := testenv.Name(t)
			testenv.DropPrefix(t, b.Client, prefix)
			w := NewWriter(b.Client, time.Now)
			ptrs := churn(prefix, 300)
			ctx := testenv.Context(t, 30*time.Second)
			if f, err := w.Apply(ctx, ptrs); err != nil || len(f) != 0 {
				t.Fatalf("apply: %v %v", f, err)
			}
			once := testenv.Snapshot(t, b.Client, prefix)
			// Every change delivered again, and the first half a third time.
			if f, err := w.Apply(ctx, ptrs); err != nil || len(f) != 0 {
				t.Fatalf("apply again: %v %v", f, err)
			}
			if f, err := w.Apply(ctx, ptrs[:150]); err != nil || len(f) != 0 {
				t.Fatalf("apply half: %v %v", f, err)
			}
			// The half re-delivery re-applies old changes after newer ones: the
			// membership may change (that is what ordering means), but the
			// metadata must not move back. Re-apply the rest to restore order.
			if f, err := w.Apply(ctx, ptrs[150:]); err != nil || len(f) != 0 {
				t.Fatalf("apply rest: %v %v", f, err)
			}
			twice := testenv.Snapshot(t, b.Client, prefix)
			// last_applied differs between runs by design; compare the rest.
			for _, s := range []map[string]string{once, twice} {
				for k, v := range s {
					if strings.HasSuffix(k, ":meta") {
						s[k] = stripField(v, "last_applied")
					}
				}
			}
			if d := testenv.DiffSnapshots(once, twice); d != "" {
				t.Errorf("applying again changed Redis:\n%s", d)
			}
		})
	}
}

// stripField removes "field:value" from a snapshot's printed hash.
func stripField(v, field string) string {
	i := strings.Index(v, field+":")
	if i < 0 {
		return v
	}
	j := strings.IndexAny(v[i:], " ]")
	return v[:i] + v[i+j:]
}

// TestApplyRefusedChangeLeavesNoTrace pins issue 11 item 2: a change
// Redis refuses (WRONGTYPE: a foreign value at one of its keys) used to be
// half applied: the member index said "member" while the include set (and
// so the SDKs) said not, and the segment's last_seq moved to the refused
// change's. Now a refused change writes nothing: a foreign value at the
// include set fails that change alone, one at the segment's member index or
// metadata fails every change of that segment, the rest of the batch is
// applied, and last_seq is the highest applied one. Redis after the batch
// differs from Redis before only by the applied changes' keys.
func TestApplyRefusedChangeLeavesNoTrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		// Before: a foreign string at two include sets and at one segment's
		// metadata and another's member index; "gone" is a member of seg.
		for key, v := range map[string]string{
			bigsegments.IncludeKey(prefix, "bad"):      "not a set",
			bigsegments.IncludeKey(prefix, "badrm"):    "not a set",
			bigsegments.MetaKey(prefix, "broken.g1"):   "not a hash",
			bigsegments.MembersKey(prefix, "index.g1"): "not a set",
		} {
			if err := b.Client.Set(ctx, key, v, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		w := NewWriter(b.Client, time.Now)
		if f, err := w.Apply(ctx, []Change{
			change(prefix, "seg", 1, "gone", false, 1),
			change(prefix, "seg", 1, "badrm", false, 2), // refused: badrm's include set
			change(prefix, "broken", 1, "dave", false, 1),
		}); err != nil || len(f) != 2 {
			t.Fatalf("setting up: %v %v", f, err)
		}
		// badrm is in seg's member index although its include set is foreign:
		// a remove of badrm must not take it out either.
		if err := b.Client.HSet(ctx, bigsegments.MembersKey(prefix, "seg.g1"), "badrm", "2").Err(); err != nil {
			t.Fatal(err)
		}
		before := testenv.Snapshot(t, b.Client, prefix)

		changes := []Change{
			change(prefix, "seg", 1, "alice", false, 10),
			change(prefix, "seg", 1, "bad", false, 13),      // include set holds a string
			change(prefix, "broken", 1, "carol", false, 11), // segment metadata holds a string
			change(prefix, "broken", 1, "dave", true, 12),
			change(prefix, "seg", 1, "badrm", true, 14),   // include set holds a string
			change(prefix, "index", 1, "erin", false, 15), // member index holds a string
			change(prefix, "seg", 1, "gone", true, 12),
		}
		f, err := w.Apply(ctx, changes)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		var got []int
		for _, x := range f {
			got = append(got, x.Index)
			if x.Reason != ReasonWrongType || Classify(x.Err) != ClassEvent || !strings.Contains(x.Err.Error(), "WRONGTYPE") {
				t.Errorf("failure %+v: want reason %s and a WRONGTYPE error", x, ReasonWrongType)
			}
		}
		if want := []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
			t.Errorf("failed changes %v, want %v", got, want)
		}
		after := testenv.Snapshot(t, b.Client, prefix)
		inc := func(key string) string { return bigsegments.IncludeKey(prefix, key) }
		for _, k := range []string{inc("alice"), inc("gone"), bigsegments.MembersKey(prefix, "seg.g1"), bigsegments.MetaKey(prefix, "seg.g1")} {
			delete(before, k)
			delete(after, k)
		}
		if d := testenv.DiffSnapshots(before, after); d != "" {
			t.Errorf("the refused changes wrote to Redis:\n%s", d)
		}
		if inc, _, err := Membership(ctx, b.Client, prefix, "alice"); err != nil || !slices.Equal(inc, []string{"seg.g1"}) {
			t.Errorf("alice included in %q (%v), want seg.g1", inc, err)
		}
		if inc, _, err := Membership(ctx, b.Client, prefix, "gone"); err != nil || len(inc) != 0 {
			t.Errorf("gone included in %q (%v), want nothing", inc, err)
		}
		var members []string
		if err := Members(ctx, b.Client, prefix, "seg.g1", func(k string) error { members = append(members, k); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(members)
		if !slices.Equal(members, []string{"alice", "badrm"}) {
			t.Errorf("seg's member index %q, want alice and badrm (bad's add and badrm's remove refused)", members)
		}
		if info, err := Info(ctx, b.Client, prefix, "seg.g1"); err != nil || info.LastSeq != 12 {
			t.Errorf("Info(seg.g1) = %+v, %v; want last_seq 12, the highest applied (13 and 14 were refused)", info, err)
		}
	})
}

// TestApplyUndoesChangesRefusedHalfWay pins the rest of issue 11 item 2:
// when another writer replaces a segment's member index (or its metadata)
// between the writer's type check and its member writes, the writes that
// already landed are undone and the metadata does not move; an undone
// removal puts back the sequence number the member joined with.
func TestApplyUndoesChangesRefusedHalfWay(t *testing.T) {
	for _, replaced := range []string{"member index", "metadata"} {
		t.Run(replaced, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
				w := NewWriter(b.Client, time.Now)
				if f, err := w.Apply(ctx, []Change{change(prefix, "seg", 1, "kept", false, 1), change(prefix, "seg", 1, "leaving", false, 2)}); err != nil || len(f) != 0 {
					t.Fatalf("setting up: %v %v", f, err)
				}
				before := testenv.Snapshot(t, b.Client, prefix)
				key := bigsegments.MembersKey(prefix, "seg.g1")
				if replaced == "metadata" {
					key = bigsegments.MetaKey(prefix, "seg.g1")
				}
				hook := &raceHook{rdb: b.Client, key: key, after: 2}
				b.Client.AddHook(hook)
				t.Cleanup(func() { hook.off.Store(true) })
				f, err := w.Apply(ctx, []Change{
					change(prefix, "seg", 1, "new", false, 3),
					change(prefix, "seg", 1, "leaving", true, 4),
					change(prefix, "seg", 1, "kept", false, 5), // already in: nothing to undo
				})
				hook.off.Store(true)
				if err != nil || len(f) != 3 {
					t.Fatalf("Apply = %v, %v; want the three changes refused", f, err)
				}
				// The foreign value is the other writer's; the rest must be as before.
				after := testenv.Snapshot(t, b.Client, prefix, hook.key)
				delete(before, hook.key)
				if d := testenv.DiffSnapshots(before, after); d != "" {
					t.Errorf("changes refused half way left writes behind:\n%s", d)
				}
				if replaced == "metadata" {
					got, err := JoinedSince(ctx, b.Client, prefix, "leaving", []string{"seg.g1"})
					if err != nil || got[0] != (Since{Member: true, Seq: 2, Run: "run-0"}) {
						t.Errorf("JoinedSince(leaving) = %+v, %v; want seq 2 of run-0 restored", got, err)
					}
				}
			})
		})
	}
}

// raceHook replaces key by a string just before the after-th pipeline runs,
// as another writer racing the batch would.
type raceHook struct {
	rdb   redis.UniversalClient
	key   string
	after int
	n     atomic.Int32
	off   atomic.Bool
}

func (*raceHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*raceHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *raceHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !h.off.Load() && int(h.n.Add(1)) == h.after+1 {
			h.off.Store(true)
			if err := h.rdb.Set(ctx, h.key, "foreign", 0).Err(); err != nil {
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// TestMetadataMovesForwardOnly: a batch of older changes (a replay, a
// redelivery) leaves last_seq and last_run at the newest sequence number,
// compared exactly even above 2^53 where Lua's doubles would round, while
// last_applied says when the segment was last written: before issue 11
// item 7 it stayed at the batch of the highest sequence number, so a
// segment whose last_seq an event from another writer had pushed ahead
// looked unwritten for good.
func TestMetadataMovesForwardOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		applied := time.UnixMilli(1_700_000_000_000)
		w := NewWriter(b.Client, func() time.Time { return applied })
		const big = 1<<53 + 1
		for _, seq := range []uint64{10, 9, big, big - 1, 11} {
			c := change(prefix, "seg", 1, "alice", false, seq)
			c.Run = "run-" + strconv.FormatUint(seq, 10)
			if f, err := w.Apply(ctx, []Change{c}); err != nil || len(f) != 0 {
				t.Fatalf("Apply seq %d: %v %v", seq, f, err)
			}
			applied = applied.Add(time.Second)
		}
		info, err := Info(ctx, b.Client, prefix, "seg.g1")
		want := SegmentInfo{Members: 1, LastRun: "run-9007199254740993", LastSeq: big, LastApplied: time.UnixMilli(1_700_000_004_000), ContextKind: "user"}
		if err != nil || info != want {
			t.Errorf("Info = %+v, %v; want %+v", info, err, want)
		}
	})
}

func TestSetSynchronizedOn(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 30*time.Second)
			p1, p2 := testenv.Name(t), testenv.Name(t)
			testenv.DropPrefix(t, b.Client, p1)
			testenv.DropPrefix(t, b.Client, p2)
			w := NewWriter(b.Client, nil)
			at := time.UnixMilli(1_700_000_000_123)
			if err := w.SetSynchronizedOn(ctx, []string{p1, p2}, at.Add(999*time.Microsecond)); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{p1, p2} {
				got, ok, err := SyncTime(ctx, b.Client, p)
				if err != nil || !ok || !got.Equal(at) {
					t.Errorf("SyncTime(%s) = %v %v %v, want %v (milliseconds, truncated)", p, got, ok, err, at)
				}
			}
		})
	}
}

// TestApplyIndexesSegments: every segment ref a batch writes, removals
// included, is listed by Segments under its own prefix only, once.
func TestApplyIndexesSegments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		other := testenv.Name(t)
		testenv.DropPrefix(t, b.Client, other)
		w := NewWriter(b.Client, time.Now)
		batch := append(churn(prefix, 300), change(other, "elsewhere", 1, "k", true, 1))
		for range 2 {
			if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
				t.Fatalf("Apply: %v %v", f, err)
			}
		}
		list := func(p string) []string {
			var refs []string
			if err := Segments(ctx, b.Client, p, func(ref string) error { refs = append(refs, ref); return nil }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(refs)
			return slices.Compact(refs)
		}
		want := []string{"seg-0.g1", "seg-0.g2", "seg-1.g1", "seg-1.g2", "seg-2.g1", "seg-2.g2", "seg-3.g1", "seg-3.g2"}
		// churn pairs segment i%4 with generation 1+i%2: only half of the
		// combinations occur.
		want = slices.DeleteFunc(want, func(r string) bool {
			return r == "seg-0.g2" || r == "seg-1.g1" || r == "seg-2.g2" || r == "seg-3.g1"
		})
		if got := list(prefix); !slices.Equal(got, want) {
			t.Errorf("Segments(%s) = %q, want %q", prefix, got, want)
		}
		if got := list(other); !slices.Equal(got, []string{"elsewhere.g1"}) {
			t.Errorf("Segments(%s) = %q, want the removal's segment", other, got)
		}
	})
}

// TestApplyUnindexableFailsTheBatch: a segments index holding another type
// fails every change of the prefix before anything is written
// (dead-lettered with the reason), as a metadata key of another type does
// for its segment.
func TestApplyUnindexableFailsTheBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		if err := b.Client.Set(ctx, bigsegments.SegmentsKey(prefix), "not a set", 0).Err(); err != nil {
			t.Fatal(err)
		}
		f, err := NewWriter(b.Client, time.Now).Apply(ctx, []Change{change(prefix, "seg", 1, "alice", false, 1), change(prefix, "other", 1, "bob", false, 2)})
		if err != nil || len(f) != 2 {
			t.Fatalf("Apply = %v, %v; want both changes failed", f, err)
		}
		for _, x := range f {
			if x.Reason != ReasonWrongType || !strings.Contains(x.Err.Error(), "WRONGTYPE "+bigsegments.SegmentsKey(prefix)) {
				t.Errorf("failure %+v: want %s naming the index", x, ReasonWrongType)
			}
		}
		if in, _, err := Membership(ctx, b.Client, prefix, "alice"); err != nil || len(in) != 0 {
			t.Fatalf("alice's include set after the refused batch: %v, %v; want nothing written", in, err)
		}
	})
}

// TestReindex: segments whose metadata predates the index are added to it
// (on every master of a Cluster), other keys under the prefix and other
// prefixes are not, and a prefix with glob characters matches only itself.
func TestReindex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, base string) {
		prefix := base + "[x]*"
		other := base + "[x]*other"
		// DropPrefix's pattern is a glob too: "?x??*" matches both prefixes.
		testenv.DropPrefix(t, b.Client, base+"?x??*")
		w := NewWriter(b.Client, time.Now)
		var batch []Change
		for i := range 40 {
			batch = append(batch, change(prefix, fmt.Sprintf("seg-%02d", i), 1+i%3, "k", false, uint64(i+1)))
		}
		batch = append(batch, change(other, "elsewhere", 1, "k", false, 1))
		if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
			t.Fatal(f, err)
		}
		// As before the index existed.
		for _, p := range []string{prefix, other} {
			if err := b.Client.Del(ctx, bigsegments.SegmentsKey(p)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Client.Set(ctx, prefix+":cohortsync:{junk}:meta", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		n, err := Reindex(ctx, b.Client, prefix)
		if err != nil || n != 40 {
			t.Fatalf("Reindex = %d, %v; want the 40 segments", n, err)
		}
		var refs []string
		if err := Segments(ctx, b.Client, prefix, func(r string) error { refs = append(refs, r); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(refs)
		refs = slices.Compact(refs)
		if len(refs) != 40 || refs[0] != "seg-00.g1" || refs[39] != "seg-39.g1" {
			t.Errorf("index after Reindex = %q", refs)
		}
		if n, err := b.Client.Exists(ctx, bigsegments.SegmentsKey(other)).Result(); err != nil || n != 0 {
			t.Errorf("Reindex of %q indexed %q too (%d, %v)", prefix, other, n, err)
		}
	})
}

// TestInfos: the info of many segments, read in several pipelines, is each
// segment's, in the order asked; a segment never written reads as zero.
func TestInfos(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		const n = 2*infoBatch + 100
		batch := make([]Change, n)
		refs := make([]string, n+1)
		for i := range batch {
			batch[i] = change(prefix, fmt.Sprintf("seg-%04d", i), 1, fmt.Sprintf("k%d", i%3), false, uint64(i+1))
			refs[i] = bigsegments.Ref(batch[i].Segment, 1)
		}
		refs[n] = "never.g1"
		if f, err := NewWriter(b.Client, time.Now).Apply(ctx, batch); err != nil || len(f) != 0 {
			t.Fatal(f, err)
		}
		infos, err := Infos(ctx, b.Client, prefix, refs)
		if err != nil || len(infos) != n+1 {
			t.Fatalf("Infos = %d, %v", len(infos), err)
		}
		for i, info := range infos[:n] {
			if info.Members != 1 || info.LastSeq != uint64(i+1) || info.ContextKind != "user" {
				t.Fatalf("Infos[%d] = %+v, want 1 member, last_seq %d", i, info, i+1)
			}
		}
		if infos[n] != (SegmentInfo{}) {
			t.Errorf("Infos of a segment never written = %+v", infos[n])
		}
	})
}

// TestNoteOpFingerprints: a batch's changes fold into one memberOp per
// context key, found by the key's fingerprint, and keys whose
// fingerprints are the same (forced here; 48 bits of a SHA-256 make it
// rare) still get one memberOp each, found again by the key.
func TestNoteOpFingerprints(t *testing.T) {
	type note struct {
		key    string
		fp     uint64
		remove bool
		added  bool // the include write changed the set
		seq    uint64
	}
	for _, tc := range []struct {
		name  string
		notes []note
		want  []memberOp
	}{
		{"a key changed twice folds into its last change",
			[]note{{"a", 1, false, true, 5}, {"a", 1, true, true, 6}},
			[]memberOp{{key: "a", kind: opRemove}}},
		{"a re-add after a join keeps the join's seq",
			[]note{{"a", 1, false, true, 5}, {"a", 1, false, false, 6}},
			[]memberOp{{key: "a", kind: opFresh, seq: 5}}},
		{"keys with other fingerprints stay apart",
			[]note{{"a", 1, false, true, 5}, {"b", 2, false, false, 6}},
			[]memberOp{{key: "a", kind: opFresh, seq: 5}, {key: "b", kind: opKeep, seq: 6}}},
		{"keys sharing a fingerprint stay apart and are found again",
			[]note{
				{"a", 7, false, true, 1}, {"b", 7, false, true, 2}, {"c", 7, false, false, 3},
				{"b", 7, true, true, 4}, {"a", 7, false, false, 5}, {"c", 7, false, true, 6},
			},
			[]memberOp{{key: "a", kind: opFresh, seq: 1}, {key: "b", kind: opRemove}, {key: "c", kind: opFresh, seq: 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(nil, nil)
			w.segs = map[segKey]*segState{}
			s := w.addSeg(segKey{"p", "seg", 1})
			for _, n := range tc.notes {
				s.noteOp(&Change{ContextKey: n.key, Remove: n.remove, Seq: n.seq}, n.fp, n.added)
			}
			if !slices.Equal(s.ops, tc.want) {
				t.Errorf("ops = %+v, want %+v", s.ops, tc.want)
			}
		})
	}
}
