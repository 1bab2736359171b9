package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestTokens(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		admin := w.secret[auth.Admin]
		res := w.do("GET", Prefix+"/whoami", w.secret[auth.Reader], nil)
		if me := res.json(t); res.status != 200 || me["role"] != "reader" || me["name"] != "test-reader" {
			t.Fatalf("whoami: %d %s", res.status, res.body)
		}
		res = w.do("POST", Prefix+"/tokens", admin, map[string]any{"name": "ci pipeline", "role": "writer"})
		if res.status != http.StatusCreated || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create: %d %s", res.status, res.body)
		}
		created := res.json(t)
		secret, _ := created["secret"].(string)
		tok, _ := created["token"].(map[string]any)
		if !strings.HasPrefix(secret, auth.Prefix) || tok["role"] != "writer" || tok["name"] != "ci pipeline" {
			t.Fatalf("created %s", res.body)
		}
		w.never = append(w.never, secret) // shown once: never again
		res = w.do("GET", Prefix+"/whoami", secret, nil)
		if me := res.json(t); res.status != 200 || me["id"] != tok["id"] || me["last_used"] == nil {
			t.Fatalf("whoami with the new token: %d %s", res.status, res.body)
		}
		// Listed by name, paged, never with a secret.
		var names []string
		for _, it := range w.all(Prefix+"/tokens?limit=2", admin) {
			names = append(names, it.(map[string]any)["name"].(string))
		}
		if want := "ci pipeline,test-admin,test-reader,test-writer"; strings.Join(names, ",") != want {
			t.Fatalf("listed %v, want %s", names, want)
		}
		if res := w.do("DELETE", Prefix+"/tokens/"+tok["id"].(string), admin, nil); res.status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		if res := w.do("GET", Prefix+"/whoami", secret, nil); res.status != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d", res.status)
		}
		if res := w.do("DELETE", Prefix+"/tokens/"+tok["id"].(string), admin, nil); res.status != http.StatusNotFound {
			t.Fatalf("revoke twice: %d", res.status)
		}
		for _, tt := range []struct {
			name, body, field string
		}{
			{"no role", `{"name":"x"}`, "role"},
			{"unknown role", `{"name":"x","role":"root"}`, "role"},
			{"no name", `{"role":"reader"}`, "name"},
			{"long name", fmt.Sprintf(`{"name":%q,"role":"reader"}`, strings.Repeat("n", 101)), "name"},
			{"unknown field", `{"name":"x","role":"reader","expires":"never"}`, "expires"},
			{"wrong type", `{"name":7,"role":"reader"}`, "name"},
			{"not an object", `["x"]`, ""},
			{"two values", `{"name":"x","role":"reader"} {}`, ""},
			{"not JSON", `{"name":`, ""},
		} {
			res := w.do("POST", Prefix+"/tokens", admin, tt.body)
			if code, field := res.errField(t); res.status != 400 || code != CodeBadRequest || field != tt.field {
				t.Errorf("%s: %d %s, want 400 naming %q", tt.name, res.status, res.body, tt.field)
			}
		}
		checkBodyLimits(t, w, "POST", Prefix+"/tokens")
	})
}

// checkBodyLimits: a body over 1 MiB is a 413, another media type a 415,
// none a 400.
func checkBodyLimits(t *testing.T, w *world, method, path string) {
	t.Helper()
	big := `{"name":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	if res := w.do(method, path, w.secret[auth.Admin], big); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("%s %s with a big body: %d %.200s", method, path, res.status, res.body)
	}
	if res := w.do(method, path, w.secret[auth.Admin], ""); res.status != http.StatusBadRequest {
		t.Errorf("%s %s without a body: %d %s", method, path, res.status, res.body)
	}
	req, _ := http.NewRequestWithContext(w.ctx, method, w.srv.URL+path, strings.NewReader("name=x"))
	req.Header.Set("Authorization", "Bearer "+w.secret[auth.Admin])
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := w.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("%s %s as a form: %d", method, path, res.StatusCode)
	}
}

// destination is a destination body on the test's Redis.
func destination(w *world, name, prefix string) map[string]any {
	return map[string]any{"name": name, "redis": destRedis(w.b), "prefix": prefix}
}

func TestDestinations(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		writer := w.secret[auth.Writer]
		pfx := testenv.Name(t)
		for _, name := range []string{"staging", "production", "qa"} {
			res := w.do("POST", Prefix+"/destinations", writer, destination(w, name, pfx+"-"+name))
			if got := res.json(t); res.status != http.StatusCreated || got["name"] != name || got["environment"] != name || got["key_prefix"] != pfx+"-"+name {
				t.Fatalf("create %s: %d %s", name, res.status, res.body)
			}
		}
		// A password is never taken, nor echoed: the destination names
		// where serve reads it.
		secured := destination(w, "secured", pfx+"-secured")
		redis := secured["redis"].(map[string]any)
		redis["password"] = destPassword
		res := w.do("POST", Prefix+"/destinations", writer, secured)
		if _, field := res.errField(t); res.status != 400 || field != "redis.password" {
			t.Fatalf("inline password: %d %s", res.status, res.body)
		}
		delete(redis, "password")
		if w.b.URL != "" {
			redis["url"] = strings.Replace(w.b.URL, "redis://", "redis://user:"+destPassword+"@", 1)
			res = w.do("POST", Prefix+"/destinations", writer, secured)
			if _, field := res.errField(t); res.status != 400 || field != "redis.url" {
				t.Fatalf("password in the URL: %d %s", res.status, res.body)
			}
			redis["url"] = w.b.URL
		}
		redis["password_env"] = "DEST_PW"
		res = w.do("POST", Prefix+"/destinations", writer, secured)
		if got := res.json(t); res.status != 201 || got["redis"].(map[string]any)["password_env"] != "DEST_PW" {
			t.Fatalf("create secured: %d %s", res.status, res.body)
		}
		for _, tt := range []struct {
			name  string
			body  any
			field string
		}{
			{"no redis", map[string]any{"name": "x"}, "redis"},
			{"bad name", map[string]any{"name": "a b", "redis": destRedis(w.b)}, "name"},
			{"unknown field", map[string]any{"name": "x", "redis": destRedis(w.b), "colour": "red"}, "colour"},
			{"bad client-side id", map[string]any{"name": "x", "redis": destRedis(w.b), "client_side_id": "nope"}, "client_side_id"},
			{"bad env name", map[string]any{"name": "x", "redis": map[string]any{"url": "redis://h:1", "password_env": "1X"}}, "redis.password_env"},
			{"a string", `"production"`, ""},
		} {
			res := w.do("POST", Prefix+"/destinations", writer, tt.body)
			if code, field := res.errField(t); res.status != 400 || code != CodeBadRequest || field != tt.field {
				t.Errorf("%s: %d %s, want 400 naming %q", tt.name, res.status, res.body, tt.field)
			}
		}
		if res := w.do("POST", Prefix+"/destinations", writer, destination(w, "qa", pfx+"-qa2")); res.status != http.StatusConflict {
			t.Errorf("create twice: %d %s", res.status, res.body)
		}
		// Another destination on an environment or prefix already served.
		dup := destination(w, "qa-copy", pfx+"-qa")
		if res := w.do("POST", Prefix+"/destinations", writer, dup); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), `like destination \"qa\": want a prefix of its own`) {
			t.Errorf("sharing a prefix: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/destinations?limit=3", w.secret[auth.Reader], nil)
		page := res.json(t)
		if len(page["items"].([]any)) != 3 || page["next_cursor"] == nil {
			t.Fatalf("page 1: %s", res.body)
		}
		res = w.do("GET", Prefix+"/destinations?limit=3&cursor="+page["next_cursor"].(string), w.secret[auth.Reader], nil)
		if page := res.json(t); len(page["items"].([]any)) != 1 || page["items"].([]any)[0].(map[string]any)["name"] != "staging" || page["next_cursor"] != nil {
			t.Fatalf("page 2: %s", res.body)
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=zz", "cursor=!", "sort=name", "limit=1&limit=2"} {
			res := w.do("GET", Prefix+"/destinations?"+q, w.secret[auth.Reader], nil)
			field := strings.SplitN(q, "=", 2)[0]
			if code, f := res.errField(t); res.status != 400 || code != CodeBadRequest || f != field {
				t.Errorf("?%s: %d %s, want 400 naming %s", q, res.status, res.body, field)
			}
		}
		// Update: the name is the path's.
		qa := destination(w, "qa", pfx+"-qa")
		qa["fan_in"] = true
		if res := w.do("PUT", Prefix+"/destinations/qa", writer, qa); res.status != 200 || res.json(t)["fan_in"] != true {
			t.Fatalf("update: %d %s", res.status, res.body)
		}
		delete(qa, "name")
		if res := w.do("PUT", Prefix+"/destinations/qa", writer, qa); res.status != 200 {
			t.Fatalf("update without a name: %d %s", res.status, res.body)
		}
		if res := w.do("PUT", Prefix+"/destinations/qa", writer, destination(w, "other", pfx+"-qa")); res.status != 400 {
			t.Fatalf("rename: %d %s", res.status, res.body)
		}
		if res := w.do("PUT", Prefix+"/destinations/nosuch", writer, destination(w, "nosuch", pfx+"-n")); res.status != 404 {
			t.Fatalf("update of none: %d %s", res.status, res.body)
		}
		if res := w.do("GET", Prefix+"/destinations/nosuch", writer, nil); res.status != 404 {
			t.Fatalf("show none: %d", res.status)
		}
		// Test: connected, or the exact error, never the password (do
		// checks every answer for it).
		res = w.do("POST", Prefix+"/destinations/production/test", w.secret[auth.Reader], nil)
		if got := res.json(t); res.status != 200 || got["status"] != "connected" {
			t.Fatalf("test production: %d %s", res.status, res.body)
		}
		w.do("POST", Prefix+"/destinations/secured/test", w.secret[auth.Reader], nil) // AUTH with the password: connected or refused
		unset := destination(w, "unset", pfx+"-unset")
		unset["redis"].(map[string]any)["password_env"] = "DEST_PW_UNSET"
		w.do("POST", Prefix+"/destinations", writer, unset)
		res = w.do("POST", Prefix+"/destinations/unset/test", w.secret[auth.Reader], nil)
		if got := res.json(t); got["status"] != "error" || got["error"] != `destination "unset": redis password: environment variable DEST_PW_UNSET: not set` {
			t.Fatalf("test unset: %s", res.body)
		}
		broken := map[string]any{"name": "broken", "redis": map[string]any{"url": "redis://" + testenv.ClosedAddr(t)}, "prefix": pfx + "-broken"}
		w.do("POST", Prefix+"/destinations", writer, broken)
		res = w.do("POST", Prefix+"/destinations/broken/test", w.secret[auth.Reader], nil)
		if got := res.json(t); got["status"] != "error" || !strings.Contains(got["error"].(string), "connect") {
			t.Fatalf("test broken: %s", res.body)
		}
		// Delete: refused while a mapping names it.
		w.do("POST", Prefix+"/mappings", writer, csvMapping("beta", "beta", "qa"))
		if res := w.do("DELETE", Prefix+"/destinations/qa", w.secret[auth.Admin], nil); res.status != http.StatusConflict {
			t.Fatalf("delete in use: %d %s", res.status, res.body)
		}
		if res := w.do("DELETE", Prefix+"/destinations/staging", w.secret[auth.Admin], nil); res.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.status, res.body)
		}
		if res := w.do("DELETE", Prefix+"/destinations/staging", w.secret[auth.Admin], nil); res.status != http.StatusNotFound {
			t.Fatalf("delete twice: %d %s", res.status, res.body)
		}
		checkBodyLimits(t, w, "POST", Prefix+"/destinations")
	})
}

// csvMapping is a mapping body reading a CSV into segment on dests.
func csvMapping(name, segment string, dests ...string) map[string]any {
	return map[string]any{"name": name, "source": map[string]any{"csv": "/data/" + name + ".csv"}, "segment": segment,
		"destinations": dests, "schedule": "hourly"}
}

func TestMappings(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		writer, reader := w.secret[auth.Writer], w.secret[auth.Reader]
		pfx := testenv.Name(t)
		for _, d := range []string{"production", "staging"} {
			if res := w.do("POST", Prefix+"/destinations", writer, destination(w, d, pfx+"-"+d)); res.status != 201 {
				t.Fatalf("destination: %d %s", res.status, res.body)
			}
		}
		res := w.do("POST", Prefix+"/mappings", writer, csvMapping("beta", "beta-users", "production", "staging"))
		got := res.json(t)
		if res.status != 201 || got["enabled"] != true || got["id_property"] != "user_id" || got["context_kind"] != "user" || got["generation"] != 1.0 {
			t.Fatalf("create: %d %s", res.status, res.body)
		}
		push := map[string]any{"name": "partner", "source": map[string]any{"push": true}, "segment": "partner", "destinations": []string{"production"}}
		if res := w.do("POST", Prefix+"/mappings", writer, push); res.status != 201 {
			t.Fatalf("create push: %d %s", res.status, res.body)
		}
		for _, tt := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"missing destination", csvMapping("m", "s", "nosuch"), "destinations"},
			{"bad schedule", func() map[string]any { m := csvMapping("m", "s", "production"); m["schedule"] = "every hour"; return m }(), "schedule"},
			{"no source", map[string]any{"name": "m", "segment": "s", "destinations": []string{"production"}, "schedule": "daily"}, "source"},
			{"bad segment", csvMapping("m", "a b", "production"), "segment"},
			{"max shrink 1", func() map[string]any { m := csvMapping("m", "s", "production"); m["max_shrink"] = 1; return m }(), "max_shrink"},
			{"unknown project", map[string]any{"name": "m", "source": map[string]any{"amplitude_cohort": "c1", "amplitude_project": "nosuch"},
				"segment": "s", "destinations": []string{"production"}, "schedule": "daily"}, "source.amplitude_project"},
			{"destinations not a list", map[string]any{"name": "m", "source": map[string]any{"csv": "x"}, "segment": "s", "destinations": "production", "schedule": "daily"}, "destinations"},
		} {
			res := w.do("POST", Prefix+"/mappings", writer, tt.body)
			if code, field := res.errField(t); res.status != 400 || code != CodeBadRequest || field != tt.field {
				t.Errorf("%s: %d %s, want 400 naming %q", tt.name, res.status, res.body, tt.field)
			}
		}
		if res := w.do("POST", Prefix+"/mappings", writer, csvMapping("beta", "x", "production")); res.status != http.StatusConflict {
			t.Errorf("create twice: %d", res.status)
		}
		// Another mapping writing the same segment into the same destination.
		if res := w.do("POST", Prefix+"/mappings", writer, csvMapping("beta2", "beta-users", "production")); res.status/100 != 4 {
			t.Errorf("a second writer of a segment: %d %s", res.status, res.body)
		}
		upd := csvMapping("beta", "beta-users", "production")
		upd["max_shrink"] = 0.5
		if res := w.do("PUT", Prefix+"/mappings/beta", writer, upd); res.status != 200 || res.json(t)["max_shrink"] != 0.5 {
			t.Fatalf("update: %d %s", res.status, res.body)
		}
		if res := w.do("GET", Prefix+"/mappings/beta", reader, nil); res.status != 200 || len(res.json(t)["destinations"].([]any)) != 1 {
			t.Fatalf("show: %d %s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/mappings?limit=1", reader, nil)
		if page := res.json(t); len(page["items"].([]any)) != 1 || page["next_cursor"] == nil {
			t.Fatalf("list: %s", res.body)
		}
		// Sync now: 202, and the run appears in the history.
		res = w.do("POST", Prefix+"/mappings/beta/sync", writer, nil)
		if got := res.json(t); res.status != http.StatusAccepted || got["trigger"] != "manual" || got["runs"] != Prefix+"/runs?mapping=beta&trigger=manual" {
			t.Fatalf("sync: %d %s", res.status, res.body)
		}
		testenv.Eventually(t, 10*time.Second, "the manual run is recorded", func() bool {
			res := w.do("GET", Prefix+"/runs?mapping=beta&trigger=manual", reader, nil)
			return len(res.json(t)["items"].([]any)) == 1
		})
		if res := w.do("POST", Prefix+"/mappings/partner/sync", writer, nil); res.status != http.StatusConflict {
			t.Errorf("sync of a push mapping: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/nosuch/sync", writer, nil); res.status != http.StatusNotFound {
			t.Errorf("sync of none: %d %s", res.status, res.body)
		}
		// Pause and resume; a paused mapping does not sync.
		if res := w.do("POST", Prefix+"/mappings/beta/pause", writer, nil); res.status != 200 || res.json(t)["enabled"] != false {
			t.Fatalf("pause: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/beta/pause", writer, nil); res.status != 200 || res.json(t)["enabled"] != false {
			t.Fatalf("pause twice: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/beta/sync", writer, nil); res.status != http.StatusConflict {
			t.Errorf("sync of a paused mapping: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/beta/resume", writer, nil); res.status != 200 || res.json(t)["enabled"] != true {
			t.Fatalf("resume: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/nosuch/pause", writer, nil); res.status != 404 {
			t.Fatalf("pause none: %d %s", res.status, res.body)
		}
		// A run in progress: a second sync is refused.
		if res := w.do("POST", Prefix+"/mappings", writer, csvMapping("slow", "slow", "production")); res.status != 201 {
			t.Fatalf("create slow: %d", res.status)
		}
		if res := w.do("POST", Prefix+"/mappings/slow/sync", writer, nil); res.status != http.StatusAccepted {
			t.Fatalf("sync slow: %d %s", res.status, res.body)
		}
		if res := w.do("POST", Prefix+"/mappings/slow/sync", writer, nil); res.status != http.StatusConflict {
			t.Errorf("sync while a run is in progress: %d %s", res.status, res.body)
		}
		close(w.runner.hold)
		if res := w.do("DELETE", Prefix+"/mappings/beta", writer, nil); res.status != http.StatusNoContent {
			t.Fatalf("delete: %d", res.status)
		}
		if res := w.do("GET", Prefix+"/mappings/beta", reader, nil); res.status != 404 {
			t.Fatalf("show deleted: %d", res.status)
		}
		checkBodyLimits(t, w, "PUT", Prefix+"/mappings/partner")
	})
}
