package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestMembershipLookup(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		reader := w.secret[auth.Reader]
		withSegments(t, w)
		res := w.do("GET", Prefix+"/destinations/production/segments/vip/members/user-007", reader, nil)
		got := res.json(t)
		segs, _ := got["segments"].([]any)
		if res.status != 200 || got["member"] != true || got["segment"] != "vip" || len(segs) != 1 {
			t.Fatalf("user-007 in vip: %d %s", res.status, res.body)
		}
		since := segs[0].(map[string]any)["since"].(map[string]any)
		if since["known"] != true || since["run"] != "r1" || since["seq"] != 8.0 {
			t.Errorf("since: %v", since)
		}
		res = w.do("GET", Prefix+"/destinations/production/segments/beta/members/user-007", reader, nil)
		if got := res.json(t); res.status != 200 || got["member"] != false || len(got["segments"].([]any)) != 0 {
			t.Fatalf("user-007 in beta: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/destinations/production/contexts/b3/segments", reader, nil)
		if got := res.json(t); res.status != 200 || got["member"] != true || got["segments"].([]any)[0].(map[string]any)["mapping"] != "beta" {
			t.Fatalf("b3's segments: %d %s", res.status, res.body)
		}
		// A key with a slash, escaped in the path.
		res = w.do("GET", Prefix+"/destinations/production/contexts/a%2Fb/segments", reader, nil)
		if got := res.json(t); res.status != 200 || got["context_key"] != "a/b" || got["member"] != false {
			t.Fatalf("a/b: %d %s", res.status, res.body)
		}
		for path, want := range map[string]int{
			"/destinations/nosuch/contexts/x/segments":               404,
			"/destinations/production/contexts/x/segments?segment=s": 400,
			"/destinations/production/contexts/%FF/segments":         400,
		} {
			if res := w.do("GET", Prefix+path, reader, nil); res.status != want {
				t.Errorf("%s: %d %s, want %d", path, res.status, res.body, want)
			}
		}
	})
}

func TestStatus(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		reader := w.secret[auth.Reader]
		withSegments(t, w)
		broken := map[string]any{"name": "broken", "redis": map[string]any{"url": "redis://" + testenv.ClosedAddr(t)}, "prefix": "broken"}
		if res := w.do("POST", Prefix+"/destinations", w.secret[auth.Writer], broken); res.status != 201 {
			t.Fatalf("broken: %d %s", res.status, res.body)
		}
		res := w.do("GET", Prefix+"/status?destination=production", reader, nil)
		dests := res.json(t)["destinations"].([]any)
		if res.status != 200 || len(dests) != 1 {
			t.Fatalf("status: %d %s", res.status, res.body)
		}
		prod := dests[0].(map[string]any)
		if prod["available"] != true || prod["potentially_stale"] != false || len(prod["segments"].([]any)) != 2 {
			t.Errorf("production: %v", prod)
		}
		res = w.do("GET", Prefix+"/status", reader, nil)
		all := res.json(t)["destinations"].([]any)
		if b := all[0].(map[string]any); len(all) != 2 || b["name"] != "broken" || b["available"] != false || b["potentially_stale"] != true || len(b["last_errors"].([]any)) == 0 {
			t.Errorf("broken: %s", res.body)
		}
		if res := w.do("GET", Prefix+"/status?destination=nosuch", reader, nil); res.status != 404 {
			t.Errorf("unknown destination: %d", res.status)
		}
		if res := w.do("GET", Prefix+"/status?env=production", reader, nil); res.status != 400 {
			t.Errorf("unknown parameter: %d", res.status)
		}
	})
}

func TestErase(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		admin := w.secret[auth.Admin]
		withSegments(t, w)
		res := w.do("POST", Prefix+"/destinations/production/erase", admin, map[string]any{"context_key": "user-007"})
		got := res.json(t)
		if res.status != 200 || got["context_key"] != "user-007" || got["erased_list"] != true || got["id"] == "" {
			t.Fatalf("erase: %d %s", res.status, res.body)
		}
		removed := 0
		for _, s := range got["segments"].([]any) {
			r := s.(map[string]any)
			if r["was_member"] == true {
				removed++
				if r["segment"] != "vip" {
					t.Errorf("removed from %v", r)
				}
			}
		}
		if removed != 1 || len(got["segments"].([]any)) != 2 {
			t.Errorf("segments: %v", got["segments"])
		}
		testenv.Eventually(t, 10*time.Second, "the erase in the run history", func() bool {
			res := w.do("GET", Prefix+"/runs?mapping=erase:production", w.secret[auth.Reader], nil)
			return strings.Contains(string(res.body), got["id"].(string))
		})
		for name, tt := range map[string]struct {
			body   any
			status int
		}{
			"no key":        {map[string]any{}, 400},
			"empty key":     {map[string]any{"context_key": ""}, 400},
			"unknown field": {map[string]any{"context_key": "a", "segment": "vip"}, 400},
		} {
			if res := w.do("POST", Prefix+"/destinations/production/erase", admin, tt.body); res.status != tt.status {
				t.Errorf("%s: %d %s", name, res.status, res.body)
			}
		}
		if res := w.do("POST", Prefix+"/destinations/nosuch/erase", admin, map[string]any{"context_key": "a"}); res.status != http.StatusNotFound {
			t.Errorf("unknown destination: %d %s", res.status, res.body)
		}
		checkBodyLimits(t, w, "POST", Prefix+"/destinations/production/erase")
	})
}
