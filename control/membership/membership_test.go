package membership

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalog/catalogtest"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// TestLookup: which segments a key is in, with their source and since
// which run, on both backends; a member from before since-tracking says
// so; the history adds the run's trigger while it keeps the run.
func TestLookup(t *testing.T) {
	testenv.ForEachRedis(t, time.Minute, func(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string) {
		dest := catalogtest.Destination("production", prefix)
		cat := &catalogtest.Catalog{Dests: []catalog.Destination{dest}, Mappings: []catalog.Mapping{{
			Name: "beta", Segment: "beta-users", Destinations: []string{"production"}, Generation: 2, ContextKind: "user",
			Source: catalog.Source{Kind: catalog.SourceCSV, Location: "/data/beta.csv"},
		}}}
		history, err := runstore.New(rb.Client, runstore.Config{Prefix: prefix + ":control:"})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		run1, run2, edit := producer.NewRunID(t0), producer.NewRunID(t0.Add(time.Hour)), producer.NewRunID(t0.Add(2*time.Hour))
		for _, r := range []runstore.Record{
			{ID: run2, Mapping: "beta", Destination: "production", Trigger: "scheduled",
				Summary: producer.Summary{Run: run2, Started: t0.Add(time.Hour), FirstSeq: 10, LastSeq: 12, Outcome: producer.Succeeded}},
			{ID: run2, Mapping: "beta", Destination: "staging", Trigger: "scheduled",
				Summary: producer.Summary{Run: run2, Started: t0.Add(time.Hour), Outcome: producer.Failed}},
		} {
			if err := history.Add(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		w := segmentstore.NewWriter(rb.Client, time.Now)
		ch := func(seg string, gen int, key string, remove bool, seq uint64, run string) segmentstore.Change {
			return segmentstore.Change{Prefix: prefix, Segment: seg, Generation: gen, ContextKind: "user", ContextKey: key, Remove: remove, Seq: seq, Run: run}
		}
		for _, batch := range [][]segmentstore.Change{
			{ch("beta-users", 2, "alice", false, 1, run1), ch("beta-users", 2, "bob", false, 2, run1)},
			{ch("beta-users", 2, "alice", true, 10, run2), ch("beta-users", 2, "alice", false, 11, run2), ch("beta-users", 2, "carol", false, 12, run2)},
			{ch("vips", 1, "alice", false, 5, edit)},
		} {
			if f, err := w.Apply(ctx, batch); err != nil || len(f) != 0 {
				t.Fatalf("Apply: %v %v", f, err)
			}
		}
		// An older release's segment: a set index, no run index; and an
		// exclusion some other tool wrote.
		if err := rb.Client.SAdd(ctx, bigsegments.MembersKey(prefix, "legacy.g1"), "alice").Err(); err != nil {
			t.Fatal(err)
		}
		if err := segmentstore.WriteFixture(ctx, rb.Client, prefix, segmentstore.Fixture{
			Include: map[string][]string{"alice": {"legacy.g1"}}, Exclude: map[string][]string{"alice": {"blocked.g3"}}}); err != nil {
			t.Fatal(err)
		}
		l := &Lookup{Catalog: cat, Connect: catalogtest.Connector(rb.Client), Runs: history}

		res, err := l.Lookup(ctx, Query{Env: "production", ContextKey: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		want := []Entry{
			{Segment: "beta-users", Generation: 2, Ref: "beta-users.g2", Included: true, Source: "csv", SourceDetail: "/data/beta.csv", Mapping: "beta", Current: true,
				Since: &Since{Known: true, Seq: 11, Run: run2, RunStarted: t0.Add(time.Hour), RunTrigger: "scheduled", RunStatus: "succeeded"}},
			{Segment: "blocked", Generation: 3, Ref: "blocked.g3", Excluded: true, Source: "list", Current: true},
			{Segment: "legacy", Generation: 1, Ref: "legacy.g1", Included: true, Source: "list", Current: true, Since: &Since{Note: UnknownSince}},
			{Segment: "vips", Generation: 1, Ref: "vips.g1", Included: true, Source: "list", Current: true,
				Since: &Since{Known: true, Seq: 5, Run: edit, Note: "run no longer in the run history"}},
		}
		if got, wantJSON := mustJSON(t, res.Segments), mustJSON(t, want); got != wantJSON {
			t.Errorf("Lookup(alice) segments\n got %s\nwant %s", got, wantJSON)
		}
		if res.Destination != "production" || res.Prefix != prefix || res.ContextHash != bigsegments.HashContextKey("alice") || !res.In() {
			t.Errorf("Lookup(alice) = %+v", res)
		}

		for _, tc := range []struct {
			name    string
			q       Query
			in      bool
			entries int
			since   uint64
		}{
			{"in the segment, since the first run", Query{Env: "production", ContextKey: "bob", Segment: "beta-users"}, true, 1, 2},
			{"not in the segment", Query{Env: "production", ContextKey: "bob", Segment: "vips"}, false, 0, 0},
			{"nowhere", Query{Env: "production", ContextKey: "nobody"}, false, 0, 0},
			{"another member, since the second run", Query{Env: "production", ContextKey: "carol", Segment: "beta-users"}, true, 1, 12},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := l.Lookup(ctx, tc.q)
				if err != nil || res.In() != tc.in || len(res.Segments) != tc.entries || res.Segments == nil {
					t.Fatalf("Lookup(%+v) = %+v, %v", tc.q, res, err)
				}
				if tc.entries > 0 && res.Segments[0].Since.Seq != tc.since {
					t.Errorf("since seq %d, want %d", res.Segments[0].Since.Seq, tc.since)
				}
			})
		}
		if _, err := l.Lookup(ctx, Query{Env: "nowhere", ContextKey: "alice"}); !errors.Is(err, ErrUnknownEnvironment) {
			t.Errorf("Lookup in an unknown environment = %v, want ErrUnknownEnvironment", err)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
