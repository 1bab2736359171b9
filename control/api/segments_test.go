package api

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// withSegments stores destination production and mapping beta (synced
// segment beta, 5 members) and writes list segment vip (300 users and 3
// admins) as the consumer would; it returns the destination's prefix and
// vip's members.
func withSegments(t *testing.T, w *world) (string, []string) {
	t.Helper()
	writer := w.secret[auth.Writer]
	prefix := testenv.Name(t) + "-prod"
	if res := w.do("POST", Prefix+"/destinations", writer, destination(w, "production", prefix)); res.status != 201 {
		t.Fatalf("destination: %d %s", res.status, res.body)
	}
	if res := w.do("POST", Prefix+"/mappings", writer, csvMapping("beta", "beta", "production")); res.status != 201 {
		t.Fatalf("mapping: %d %s", res.status, res.body)
	}
	// What the consumer would have written: a synced segment and a
	// list segment of 300 users and 3 admins.
	var vip []string
	var changes []segmentstore.Change
	for i := range 300 {
		vip = append(vip, fmt.Sprintf("user-%03d", i))
	}
	vip = append(vip, "admin-a", "admin-b", "admin-c")
	for i, k := range vip {
		changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "vip", Generation: 1, ContextKind: "user", ContextKey: k, Seq: uint64(i + 1), Run: "r1"})
	}
	for i := range 5 {
		changes = append(changes, segmentstore.Change{Prefix: prefix, Segment: "beta", Generation: 1, ContextKind: "user", ContextKey: fmt.Sprint("b", i), Seq: uint64(i + 1), Run: "r2"})
	}
	sw := segmentstore.NewWriter(w.b.Client, nil)
	if failures, err := sw.Apply(w.ctx, changes); err != nil || len(failures) > 0 {
		t.Fatalf("write fixture: %v %v", failures, err)
	}
	if err := sw.SetSynchronizedOn(w.ctx, []string{prefix}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return prefix, vip
}

func TestSegments(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		writer, reader := w.secret[auth.Writer], w.secret[auth.Reader]
		_, vip := withSegments(t, w)
		res := w.do("GET", Prefix+"/segments", reader, nil)
		items := res.json(t)["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("list: %s", res.body)
		}
		beta, list := items[0].(map[string]any), items[1].(map[string]any)
		if beta["key"] != "beta" || beta["source"] != "csv" || beta["synced"] != true || beta["mapping"] != "beta" || beta["members"] != 5.0 || beta["stale"] != false {
			t.Errorf("beta: %v", beta)
		}
		if list["key"] != "vip" || list["source"] != "list" || list["synced"] != false || list["members"] != 303.0 || list["ref"] != "vip.g1" {
			t.Errorf("vip: %v", list)
		}
		res = w.do("GET", Prefix+"/segments?destination=production&limit=1", reader, nil)
		page := res.json(t)
		res = w.do("GET", Prefix+"/segments?destination=production&limit=1&cursor="+page["next_cursor"].(string), reader, nil)
		if items := res.json(t)["items"].([]any); len(items) != 1 || items[0].(map[string]any)["key"] != "vip" {
			t.Errorf("page 2: %s", res.body)
		}
		if res := w.do("GET", Prefix+"/segments?destination=nosuch", reader, nil); res.status != 404 {
			t.Errorf("unknown destination: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/destinations/production/segments/vip", reader, nil)
		if got := res.json(t); res.status != 200 || len(got["generations"].([]any)) != 1 {
			t.Fatalf("show: %d %s", res.status, res.body)
		}
		for _, path := range []string{"/destinations/production/segments/nosuch", "/destinations/nosuch/segments/vip"} {
			if res := w.do("GET", Prefix+path, reader, nil); res.status != 404 {
				t.Errorf("%s: %d %s", path, res.status, res.body)
			}
		}
		// Members, paged: every one once, whatever the page size.
		members := func(q string) []string {
			t.Helper()
			var out []string
			for _, k := range w.all(Prefix+"/destinations/production/segments/vip/members?"+q, reader) {
				out = append(out, k.(string))
			}
			slices.Sort(out)
			return out
		}
		want := slices.Sorted(slices.Values(vip))
		for _, limit := range []int{1, 7, 50, 500} {
			if got := members(fmt.Sprintf("limit=%d", limit)); !slices.Equal(got, want) {
				t.Fatalf("limit %d: %d members, want %d", limit, len(got), len(want))
			}
		}
		if got := members("prefix=admin-&limit=2"); !slices.Equal(got, []string{"admin-a", "admin-b", "admin-c"}) {
			t.Errorf("prefix admin-: %v", got)
		}
		if got := members("prefix=user-[0"); len(got) != 0 {
			t.Errorf("a glob in the prefix is taken literally: %v", got)
		}
		for q, field := range map[string]string{"cursor=x": "cursor", "limit=9999": "limit", "generation=0": "generation", "search=a": "search"} {
			res := w.do("GET", Prefix+"/destinations/production/segments/vip/members?"+q, reader, nil)
			if _, f := res.errField(t); res.status != 400 || f != field {
				t.Errorf("?%s: %d %s", q, res.status, res.body)
			}
		}
		if res := w.do("GET", Prefix+"/destinations/production/segments/vip/members?generation=7", reader, nil); res.status != 404 {
			t.Errorf("no such generation: %d %s", res.status, res.body)
		}
		// Export: CSV, sorted, header user_id.
		res = w.do("GET", Prefix+"/destinations/production/segments/vip/export", reader, nil)
		rows, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil || res.status != 200 || len(rows) != len(vip)+1 || rows[0][0] != "user_id" || rows[1][0] != "admin-a" || !strings.Contains(res.header.Get("Content-Disposition"), "vip.g1") {
			t.Fatalf("export: %d %v %.200s", res.status, err, res.body)
		}
		// Edits go through Kafka; a synced segment refuses them.
		res = w.do("POST", Prefix+"/destinations/production/segments/beta/members/add", writer, map[string]any{"keys": []string{"x"}})
		if code, _ := res.errField(t); res.status != http.StatusConflict || code != CodeConflict || !strings.Contains(string(res.body), "synced by mapping") {
			t.Fatalf("add to a synced segment: %d %s", res.status, res.body)
		}
		res = w.do("POST", Prefix+"/destinations/production/segments/vip/members/add", writer, map[string]any{"keys": []string{"new-1", "new-2", "new-1"}})
		sum, _ := res.json(t)["summary"].(map[string]any)
		if res.status != 200 || sum["added"] != 2.0 || sum["events"] != 2.0 || sum["outcome"] != "succeeded" {
			t.Fatalf("add: %d %s", res.status, res.body)
		}
		res = w.do("POST", Prefix+"/destinations/production/segments/vip/members/remove", writer, map[string]any{"keys": []string{"user-001"}})
		if sum, _ := res.json(t)["summary"].(map[string]any); res.status != 200 || sum["removed"] != 1.0 {
			t.Fatalf("remove: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/runs?mapping=list:vip", reader, nil)
		if items := res.json(t)["items"].([]any); len(items) != 2 {
			t.Fatalf("the edits' runs: %s", res.body)
		}
		res = w.do("POST", Prefix+"/destinations/production/segments/vip/members/add", writer, map[string]any{"keys": []string{"d"}, "context_kind": "device"})
		if res.status != http.StatusConflict {
			t.Errorf("another context kind: %d %s", res.status, res.body)
		}
		many := make([]string, MaxEditKeys+1)
		for i := range many {
			many[i] = fmt.Sprint(i)
		}
		for name, tt := range map[string]struct {
			body  any
			field string
		}{
			"no keys":        {map[string]any{"keys": []string{}}, "keys"},
			"too many keys":  {map[string]any{"keys": many}, "keys"},
			"an empty key":   {map[string]any{"keys": []string{"a", ""}}, "keys"},
			"keys not list":  {map[string]any{"keys": "a"}, "keys"},
			"kind multi":     {map[string]any{"keys": []string{"a"}, "context_kind": "multi"}, "context_kind"},
			"negative gen":   {map[string]any{"keys": []string{"a"}, "generation": -1}, "generation"},
			"unknown field":  {map[string]any{"keys": []string{"a"}, "op": "add"}, "op"},
			"no body fields": {map[string]any{}, "keys"},
		} {
			res := w.do("POST", Prefix+"/destinations/production/segments/vip/members/add", writer, tt.body)
			if code, f := res.errField(t); res.status != 400 || code != CodeBadRequest || f != tt.field {
				t.Errorf("%s: %d %.300s, want 400 naming %s", name, res.status, res.body, tt.field)
			}
		}
		if res := w.do("POST", Prefix+"/destinations/nosuch/segments/vip/members/add", writer, map[string]any{"keys": []string{"a"}}); res.status != 404 {
			t.Errorf("unknown destination: %d %s", res.status, res.body)
		}
		checkBodyLimits(t, w, "POST", Prefix+"/destinations/production/segments/vip/members/remove")
	})
}
