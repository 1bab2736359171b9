package segments

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/launchdarkly/go-server-sdk-evaluation/v3/ldmodel"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalog/catalogtest"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/mappingrun/mappingruntest"
	"github.com/cohortsync/cohortsync/sdkcompat"
	"github.com/cohortsync/cohortsync/sdkcompat/ldgo"
)

var update = flag.Bool("update", false, "rewrite golden files")

// world is one destination on the test's Redis, a CSV mapping into it,
// a consumer applying the test's topic there, and the view and editor.
type world struct {
	t       *testing.T
	ctx     context.Context
	rdb     redis.UniversalClient
	prefix  string
	cohort  string // the mapping's CSV
	cat     *catalogtest.Catalog
	runner  *mappingrun.Runner
	view    *View
	editor  *Editor
	history *runstore.Store
}

func newWorld(t *testing.T, rb testenv.RedisBackend) *world {
	cw := mappingruntest.NewCSVWorld(t, rb, "beta-users", "beta")
	w := &world{t: t, ctx: cw.Ctx, rdb: rb.Client, prefix: cw.Prefix, cohort: cw.Cohort, cat: cw.Catalog}
	wr := cw.Writers
	var err error
	w.runner, err = mappingrun.New(mappingrun.Config{Producer: cw.Producer, Lease: wr.Lease, RebuildWait: 30 * time.Second}, cw.Kafka, rb.Client, w.cat, cw.Connect, nil, cw.Log)
	if err != nil {
		t.Fatal(err)
	}
	if w.history, err = runstore.New(rb.Client, runstore.Config{Prefix: cw.Control}); err != nil {
		t.Fatal(err)
	}
	w.view = &View{Catalog: w.cat, Connect: cw.Connect}
	w.editor = &Editor{Catalog: w.cat, Connect: cw.Connect, Locker: wr.Locker, Seq: wr.Seq, Streams: wr.Streams, Importer: w.runner,
		History: w.history, Topic: cw.Producer.Topic, Log: cw.Log}
	cw.Consume(t, rb.Client)
	return w
}

func (w *world) members(segment string) []string {
	w.t.Helper()
	var got []string
	if err := segmentstore.Members(w.ctx, w.rdb, w.prefix, bigsegments.Ref(segment, 1), func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	slices.Sort(got)
	return slices.Compact(got)
}

func (w *world) waitMembers(what, segment string, want ...string) {
	w.t.Helper()
	testenv.Eventually(w.t, 60*time.Second, what, func() bool { return slices.Equal(w.members(segment), want) })
	for _, k := range want { // as the SDKs read it, too
		in, _, err := segmentstore.Membership(w.ctx, w.rdb, w.prefix, k)
		if err != nil || !slices.Contains(in, bigsegments.Ref(segment, 1)) {
			w.t.Fatalf("%s: %s not included in %s (%q, %v)", what, k, segment, in, err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestListSegmentEditsAndSyncedRefusals: a mapping's segment refuses
// every direct write, naming the mapping; a list segment takes adds,
// removes and a CSV import through Kafka and the consumer, each recorded
// in the run history as a manual run; list and show report both with
// their source, owner, counts, last run and freshness; the export is the
// members, sorted.
func TestListSegmentEditsAndSyncedRefusals(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			w := newWorld(t, rb)
			ctx := w.ctx
			writeFile(t, w.cohort, "user_id\na\nb\nc\n")
			if _, err := w.runner.Run(ctx, w.cat.Mappings[0]); err != nil {
				t.Fatal(err)
			}
			w.waitMembers("the mapping's run applied", "beta", "a", "b", "c")

			vips := Target{Segment: "vips", Destination: "production"}
			sum, err := w.editor.Add(ctx, vips, []string{"x", "y", "x", "z"})
			if err != nil || sum.Added != 3 || sum.Outcome != producer.Succeeded || sum.Source != SourceManual {
				t.Fatalf("Add = %+v, %v; want 3 added (a repeated key once)", sum, err)
			}
			w.waitMembers("the adds applied", "vips", "x", "y", "z")
			if sum, err = w.editor.Remove(ctx, vips, []string{"y", "nobody"}); err != nil || sum.Removed != 2 {
				t.Fatalf("Remove = %+v, %v", sum, err)
			}
			w.waitMembers("the removes applied", "vips", "x", "z")
			list := filepath.Join(t.TempDir(), "vips.csv")
			writeFile(t, list, "user_id,plan\np,pro\n,free\nq,pro\np,pro\nz,pro\n")
			imp, err := w.editor.Import(ctx, vips, list, "")
			if err != nil {
				t.Fatal(err)
			}
			if imp.Added != 2 || imp.Removed != 1 || imp.Unchanged != 1 || imp.ExcludedTotal() != 1 || imp.Duplicates != 1 {
				t.Fatalf("Import = added %d removed %d unchanged %d excluded %v duplicates %d; want 2, 1, 1, one row, one duplicate",
					imp.Added, imp.Removed, imp.Unchanged, imp.Excluded, imp.Duplicates)
			}
			w.waitMembers("the import applied (diffed against the adds and removes)", "vips", "p", "q", "z")

			// Every direct write to the mapping's segment is refused, naming it.
			beta := Target{Segment: "beta", Destination: "production"}
			for op, edit := range map[string]func() error{
				"add":    func() error { _, err := w.editor.Add(ctx, beta, []string{"evil"}); return err },
				"remove": func() error { _, err := w.editor.Remove(ctx, beta, []string{"a"}); return err },
				"import": func() error { _, err := w.editor.Import(ctx, beta, list, ""); return err },
			} {
				err := edit()
				var se *SyncedError
				if !errors.Is(err, ErrSyncedSegment) || !errors.As(err, &se) || se.Mapping != "beta-users" || se.Op != op ||
					!strings.Contains(err.Error(), `mapping "beta-users"`) {
					t.Errorf("%s to a synced segment = %v, want a SyncedError naming mapping beta-users", op, err)
				}
			}
			if _, err := w.editor.Add(ctx, vips, []string{"ok", ""}); err == nil || !strings.Contains(err.Error(), `context key 2 "": want non-empty`) {
				t.Errorf("Add of an empty key = %v, want it refused", err)
			}
			if _, err := w.editor.Add(ctx, Target{Segment: "vips", Destination: "production", ContextKind: "device"}, []string{"d"}); err == nil ||
				!strings.Contains(err.Error(), `holds members of context kind "user", not "device"`) {
				t.Errorf("Add of another context kind = %v, want it refused", err)
			}
			time.Sleep(300 * time.Millisecond) // nothing refused may reach Redis
			if got := w.members("beta"); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Errorf("beta holds %q after refused writes, want a, b, c", got)
			}

			segs, err := w.view.List(ctx, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != 2 {
				t.Fatalf("List = %+v, want beta and vips", segs)
			}
			b, v := segs[0], segs[1]
			if b.Key != "beta" || b.Mapping != "beta-users" || b.Source != "csv" || b.SourceDetail != w.cohort || b.Members != 3 ||
				!b.Current || !b.Synced() || b.ContextKind != "user" || b.LastRun == "" || b.LastApplied.IsZero() {
				t.Errorf("beta = %+v", b)
			}
			if v.Key != "vips" || v.Mapping != "" || v.Source != SourceList || v.Members != 3 || v.LastRun != imp.Run ||
				v.LastSeq != imp.LastSeq || v.Synced() || v.Generation != 1 {
				t.Errorf("vips = %+v, want a list segment of 3 last written by the import %s", v, imp.Run)
			}
			for _, s := range segs {
				if s.SynchronizedOn.IsZero() || s.Stale() || s.SyncAge > time.Minute {
					t.Errorf("%s: synchronized on %v (age %v), want the consumer's recent time", s.Key, s.SynchronizedOn, s.SyncAge)
				}
			}
			if _, err := w.view.Show(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("Show of an unknown segment = %v, want ErrNotFound", err)
			}

			runs, err := w.history.List(ctx, runstore.Filter{Mapping: HistoryName("vips")})
			if err != nil {
				t.Fatal(err)
			}
			var triggers []string
			for _, r := range runs {
				triggers = append(triggers, r.Trigger+"/"+string(r.Summary.Outcome))
			}
			// The refused edits never started; the edit of another kind
			// neither: three runs, all manual.
			if !slices.Equal(triggers, []string{"manual/succeeded", "manual/succeeded", "manual/succeeded"}) || runs[0].ID != imp.Run {
				t.Errorf("history of vips = %q (newest %s), want three manual runs, the import newest", triggers, runs[0].ID)
			}

			// LaunchDarkly's Go SDK, given the definition show --ld-json
			// prints, evaluates the list segment from Redis.
			var def bytes.Buffer
			if err := WriteDefinition(&def, v); err != nil {
				t.Fatal(err)
			}
			res, err := ldgo.EvaluateClient(ctx, w.rdb, sdkcompat.Request{Prefix: w.prefix, SegmentKey: "vips", Generation: 1,
				ContextKind: "user", ContextKeys: []string{"p", "q", "z", "x", "y"}, Segment: def.Bytes()})
			if err != nil {
				t.Fatal(err)
			}
			var answers []string
			for _, r := range res {
				answers = append(answers, fmt.Sprintf("%s=%t/%s", r.Key, r.Value, r.BigSegmentsStatus))
			}
			if want := []string{"p=true/HEALTHY", "q=true/HEALTHY", "z=true/HEALTHY", "x=false/HEALTHY", "y=false/HEALTHY"}; !slices.Equal(answers, want) {
				t.Errorf("the Go SDK with the --ld-json definition answers %q, want %q", answers, want)
			}

			var out bytes.Buffer
			if _, err := Export(ctx, w.rdb, w.prefix, "vips.g1", &out, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			if out.String() != "user_id\np\nq\nz\n" {
				t.Errorf("export = %q", out.String())
			}
		})
	}
}

// TestListFindsSegmentsFromRedis: segments no mapping names are found in
// the destination's segments index, with their source told from their
// last run (a partner's push) and a mapping's other generation shown as
// not current; nothing else under the prefix is mistaken for one.
func TestListFindsSegmentsFromRedis(t *testing.T) {
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string) {
		cat := &catalogtest.Catalog{
			Dests: []catalog.Destination{{Name: "staging", Environment: "stg", PrefixMode: catalog.PrefixCustom, CustomPrefix: prefix}},
			Mappings: []catalog.Mapping{{Name: "pushed", Source: catalog.Source{Kind: catalog.SourcePush, Location: "hightouch/c9"},
				Segment: "beta", Destinations: []string{"staging"}, ContextKind: "device", Generation: 2, Enabled: true}},
		}
		applied := time.UnixMilli(1_800_000_000_000)
		wr := segmentstore.NewWriter(rb.Client, func() time.Time { return applied })
		ch := func(seg string, gen int, key, run string, seq uint64) segmentstore.Change {
			return segmentstore.Change{Prefix: prefix, Segment: seg, Generation: gen, ContextKind: "device", ContextKey: key, Seq: seq, Run: run}
		}
		if f, err := wr.Apply(ctx, []segmentstore.Change{
			ch("beta", 1, "k1", "20261201T000000Z-00000001", 1), ch("beta", 1, "k2", "20261201T000000Z-00000001", 2),
			ch("census-7", 1, "k1", "push-census-12-0a1b2c3d4e5f", 7),
		}); err != nil || len(f) != 0 {
			t.Fatal(f, err)
		}
		if err := rb.Client.Set(ctx, prefix+":cohortsync:unrelated", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		now := applied.Add(3 * time.Minute)
		if err := wr.SetSynchronizedOn(ctx, []string{prefix}, applied); err != nil {
			t.Fatal(err)
		}
		v := &View{Catalog: cat, Now: func() time.Time { return now },
			Connect: catalogtest.Connector(rb.Client)}
		segs, err := v.List(ctx, Filter{Destination: "staging"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range segs {
			got = append(got, fmt.Sprintf("%s g%d %s %s/%s owner=%s current=%t members=%d run=%s age=%v stale=%t",
				s.Key, s.Generation, s.ContextKind, s.Source, s.SourceDetail, s.Mapping, s.Current, s.Members, s.LastRun, s.SyncAge, s.Stale()))
		}
		want := []string{
			"beta g1 device push/hightouch/c9 owner=pushed current=false members=2 run=20261201T000000Z-00000001 age=3m0s stale=true",
			"beta g2 device push/hightouch/c9 owner=pushed current=true members=0 run= age=3m0s stale=true",
			"census-7 g1 device push/census owner= current=true members=1 run=push-census-12-0a1b2c3d4e5f age=3m0s stale=true",
		}
		if !slices.Equal(got, want) {
			t.Errorf("List =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if segs, err := v.Show(ctx, "census-7", ""); err != nil || len(segs) != 1 || segs[0].Destination != "staging" {
			t.Errorf("Show(census-7) = %+v, %v", segs, err)
		}
		if _, err := v.List(ctx, Filter{Destination: "nowhere"}); err == nil || !strings.Contains(err.Error(), `"nowhere"`) {
			t.Errorf("List of an unknown destination = %v", err)
		}
		// A destination whose Redis does not answer is left out, named;
		// the others are listed.
		cat.Dests = append(cat.Dests, catalog.Destination{Name: "down", Environment: "down", PrefixMode: catalog.PrefixCustom, CustomPrefix: prefix})
		v.Connect = func(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
			if d.Name == "down" {
				return nil, errors.New("dial tcp 127.0.0.1:1: connection refused")
			}
			return rb.Client, nil
		}
		segs, err = v.List(ctx, Filter{})
		if len(segs) != 3 || err == nil || err.Error() != `destination "down": dial tcp 127.0.0.1:1: connection refused` {
			t.Errorf("List with a destination down = %d segments, %v; want the 3 of staging and the error", len(segs), err)
		}
	})
}

// TestExportIsSortedAndBounded: a segment far larger than the sort's
// memory budget is exported whole, sorted, each member once, through
// chunks spilled to disk: the members never sit in memory together.
func TestExportIsSortedAndBounded(t *testing.T) {
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string) {
		const n = 60_000
		key := bigsegments.MembersKey(prefix, "big.g1")
		want := make([]string, 0, n)
		for i := 0; i < n; i += 5000 {
			batch := make([]any, 0, 5000)
			for j := i; j < i+5000; j++ {
				k := fmt.Sprintf("user-%07d@example.com", (j*7919)%n) // not in order
				batch = append(batch, k)
				want = append(want, k)
			}
			if err := rb.Client.SAdd(ctx, key, batch...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(want)
		var out bytes.Buffer
		st, err := Export(ctx, rb.Client, prefix, "big.g1", &out, ExportOptions{Header: "member", ChunkBytes: snapshot.MinChunkBytes, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		// 60,000 keys of 24 bytes (+16 of index) are 2.4 MB: in 64 KiB
		// chunks, some 36 of them.
		if st.Members != n || st.Runs < 30 {
			t.Errorf("Export stats %+v, want %d members through at least 30 spilled chunks", st, n)
		}
		if got := "member\n" + strings.Join(want, "\n") + "\n"; out.String() != got {
			t.Errorf("export differs from the sorted members (%d bytes, want %d)", out.Len(), len(got))
		}
	})
}

// TestDefinition: the flag data definition is pinned by a golden file and
// read by LaunchDarkly's own model as an unbounded segment of that
// generation and context kind.
func TestDefinition(t *testing.T) {
	var out bytes.Buffer
	if err := WriteDefinition(&out, Segment{Key: "beta-users", Generation: 3, ContextKind: "device"}); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, *update, filepath.Join("testdata", "ld-segment.json"), out.Bytes())
	var seg ldmodel.Segment
	if err := seg.UnmarshalJSON(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	if seg.Key != "beta-users" || !seg.Unbounded || seg.Generation.IntValue() != 3 || !seg.Generation.IsDefined() ||
		string(seg.UnboundedContextKind) != "device" || seg.Version != 3 || seg.Deleted {
		t.Errorf("LaunchDarkly's model reads %+v", seg)
	}
}

func TestPushedBy(t *testing.T) {
	for _, tc := range []struct {
		run, integration string
		ok               bool
	}{
		{"push-hightouch-3-0a1b2c3d4e5f", "hightouch", true},
		{"push-my-partner-12-0a1b2c3d4e5f", "my-partner", true},
		{"20261201T000000Z-00000001", "", false},
		{"push-x", "", false},
		{"push--1-ab", "", false},
	} {
		if got, ok := pushedBy(tc.run); got != tc.integration || ok != tc.ok {
			t.Errorf("pushedBy(%q) = %q, %t; want %q, %t", tc.run, got, ok, tc.integration, tc.ok)
		}
	}
}

func TestCheckKeys(t *testing.T) {
	got, err := CheckKeys([]string{"b", "a", "b"})
	if err != nil || !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("CheckKeys = %q, %v", got, err)
	}
	long := strings.Repeat("k", 1025)
	_, err = CheckKeys([]string{"ok", long, "\xff"})
	if err == nil || !strings.Contains(err.Error(), "context key 2") || !strings.Contains(err.Error(), "context key 3") {
		t.Errorf("CheckKeys of bad keys = %v, want both named", err)
	}
	if _, err := CheckKeys(nil); err == nil {
		t.Error("CheckKeys(nil) accepted no key")
	}
}
