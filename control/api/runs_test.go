package api

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source"
)

func TestRuns(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		reader := w.secret[auth.Reader]
		start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		rec := func(i int, mapping, dest, trigger string, outcome producer.Outcome) runstore.Record {
			at := start.Add(time.Duration(i) * time.Minute)
			return runstore.Record{ID: producer.NewRunID(at), Mapping: mapping, Destination: dest, Trigger: trigger,
				Summary: producer.Summary{Run: producer.NewRunID(at), Segment: mapping, Started: at, Outcome: outcome, Added: int64(i), Excluded: map[string]int64{}}}
		}
		applied := rec(1, "beta", "production", "scheduled", producer.Succeeded)
		applied.Published, applied.Applied, applied.Barrier = applied.Summary.Started.Add(time.Second), applied.Summary.Started.Add(2*time.Second), map[int]int64{0: 3}
		fanned := rec(2, "beta", "staging", "manual", producer.Succeeded)
		fanned2 := fanned
		fanned2.Destination = "production"
		failed := rec(3, "power", "production", "scheduled", producer.Failed)
		failed.Summary.Error = "source: 404"
		running := rec(4, "power", "production", "manual", "")
		running.Progress = &runstore.Progress{Phase: "publishing", Done: 10, Total: 40, Updated: time.Now()}
		gone := rec(0, "gone", "production", "scheduled", "")
		gone.Progress = &runstore.Progress{Phase: "reading", Done: 1, Updated: time.Now().Add(-time.Hour)}
		for _, r := range []runstore.Record{gone, applied, fanned, fanned2, failed, running} {
			if err := w.runs.Add(w.ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		excl := []source.Exclusion{{Row: 1, Line: 2, Value: "", Reason: "empty_id"}, {Row: 7, Line: 8, Value: "a,b", Reason: "invalid_id"}}
		withExcl := rec(5, "gamma", "production", "scheduled", producer.Succeeded)
		withExcl.Summary.Excluded = map[string]int64{"empty_id": 1, "invalid_id": 1}
		if err := w.runs.AddWithExclusions(w.ctx, withExcl, excl); err != nil {
			t.Fatal(err)
		}
		list := func(q string) []string {
			t.Helper()
			var out []string
			for _, it := range w.all(Prefix+"/runs?limit=2&"+q, reader) {
				m := it.(map[string]any)
				out = append(out, m["mapping"].(string)+"/"+m["destination"].(string)+"/"+m["state"].(string))
			}
			return out
		}
		all := []string{"gamma/production/succeeded", "power/production/running", "power/production/failed", "beta/staging/succeeded", "beta/production/succeeded", "beta/production/applied", "gone/production/interrupted"}
		if got := list(""); len(got) != 7 || got[0] != all[0] || got[5] != all[5] || got[6] != all[6] {
			t.Fatalf("all: %v", got)
		}
		for q, want := range map[string][]string{
			"mapping=power":               {"power/production/running", "power/production/failed"},
			"destination=staging":         {"beta/staging/succeeded"},
			"trigger=manual&mapping=beta": {"beta/staging/succeeded", "beta/production/succeeded"},
			"status=failed":               {"power/production/failed"},
			"status=applied":              {"beta/production/applied"},
			"status=running":              {"power/production/running"},
			"since=" + start.Add(3*time.Minute).Format(time.RFC3339): {"gamma/production/succeeded", "power/production/running", "power/production/failed"},
			"until=" + start.Add(2*time.Minute).Format(time.RFC3339): {"beta/production/applied", "gone/production/interrupted"},
		} {
			got := list(q)
			if q == "trigger=manual&mapping=beta" {
				slices.Sort(got)
				slices.Sort(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("?%s: %v, want %v", q, got, want)
			}
		}
		for q, field := range map[string]string{"status=done": "status", "since=yesterday": "since", "limit=0": "limit", "cursor=xyz": "cursor",
			"segment=beta": "segment", "until=2026-01-01T00:00:00Z&since=2026-02-01T00:00:00Z": "until"} {
			res := w.do("GET", Prefix+"/runs?"+q, reader, nil)
			if code, f := res.errField(t); res.status != 400 || code != CodeBadRequest || f != field {
				t.Errorf("?%s: %d %s, want 400 naming %s", q, res.status, res.body, field)
			}
		}
		// Show: a record per destination, with state and words.
		res := w.do("GET", Prefix+"/runs/"+fanned.ID, reader, nil)
		if got := res.json(t); res.status != 200 || got["id"] != fanned.ID || len(got["records"].([]any)) != 2 {
			t.Fatalf("show: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/runs/"+failed.ID, reader, nil)
		if r := res.json(t)["records"].([]any)[0].(map[string]any); r["status"] != "failed" || r["summary"].(map[string]any)["error"] != "source: 404" {
			t.Fatalf("show failed: %s", res.body)
		}
		res = w.do("GET", Prefix+"/runs/"+running.ID, reader, nil)
		if r := res.json(t)["records"].([]any)[0].(map[string]any); r["state"] != "running" || r["progress"].(map[string]any)["phase"] != "publishing" {
			t.Fatalf("show running: %s", res.body)
		}
		for _, id := range []string{"20200101T000000Z-nosuch", "nosuch"} {
			if res := w.do("GET", Prefix+"/runs/"+id, reader, nil); res.status != 404 {
				t.Errorf("show %s: %d %s", id, res.status, res.body)
			}
		}
		// Exclusions: CSV, the destination chosen when there are several.
		res = w.do("GET", Prefix+"/runs/"+withExcl.ID+"/exclusions", reader, nil)
		if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") || !strings.Contains(res.header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("exclusions: %d %v %s", res.status, res.header, res.body)
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil || len(rows) != 3 || rows[2][2] != "a,b" || rows[1][3] != "empty_id" {
			t.Fatalf("exclusions %q: %v", rows, err)
		}
		if res := w.do("GET", Prefix+"/runs/"+fanned.ID+"/exclusions", reader, nil); res.status != 400 {
			t.Errorf("exclusions of a run into two destinations: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/runs/"+fanned.ID+"/exclusions?destination=staging", reader, nil)
		if rows, _ := csv.NewReader(strings.NewReader(string(res.body))).ReadAll(); res.status != 200 || len(rows) != 1 {
			t.Errorf("exclusions of one of them: %d %s", res.status, res.body)
		}
		if res := w.do("GET", Prefix+"/runs/"+fanned.ID+"/exclusions?destination=qa", reader, nil); res.status != http.StatusBadRequest {
			t.Errorf("exclusions of another destination: %d %s", res.status, res.body)
		}
		if res := w.do("GET", Prefix+"/runs/20200101T000000Z-x/exclusions", reader, nil); res.status != 404 {
			t.Errorf("exclusions of no run: %d %s", res.status, res.body)
		}
	})
}
