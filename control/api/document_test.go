package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/control/auth"
)

// routeTable is the route table of an API built without a world: the
// table does not depend on the dependencies.
func routeTable() []route { return (&API{}).routes() }

// TestDocumentMatchesRoutes: every route is documented with its role, and
// every documented operation is routed; every guarded operation declares
// 401 and 403.
func TestDocumentMatchesRoutes(t *testing.T) {
	doc, err := document()
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]auth.Role{}
	for _, rt := range routeTable() {
		key := rt.method + " " + rt.path
		if _, dup := routed[key]; dup {
			t.Errorf("%s is routed twice", key)
		}
		routed[key] = rt.role
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s is routed, not documented", key)
			continue
		}
		op := item.GetOperation(rt.method)
		if got, _ := op.Extensions["x-role"].(string); got != string(rt.role) {
			t.Errorf("%s: the document's x-role is %q, the route's %q", key, got, rt.role)
		}
		for _, status := range []string{"401", "403"} {
			if declared := op.Responses.Value(status) != nil; declared != (rt.role != Public) {
				t.Errorf("%s: declares %s: %v", key, status, declared)
			}
		}
		if op.Responses.Default() == nil {
			t.Errorf("%s declares no default (error) response", key)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			key := method + " " + path
			if _, ok := routed[key]; !ok {
				t.Errorf("%s is documented, not routed", key)
			}
		}
	}
	// Only the document itself is public.
	for key, role := range routed {
		if role == Public && key != "GET "+SpecPath {
			t.Errorf("%s is public", key)
		}
	}
}

// TestEveryRouteAuthenticates, generated from the route table: each route
// answers 401 without a token, with an unknown one and with a revoked one,
// and 403 to each role below its own; never reaching the handler.
func TestEveryRouteAuthenticates(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		for _, rt := range routeTable() {
			if rt.role == Public {
				continue
			}
			path := fill(rt.path)
			var body any
			if rt.method == "POST" || rt.method == "PUT" {
				body = `{}`
			}
			for name, token := range map[string]string{"no token": "", "unknown token": "csa_" + strings.Repeat("A", 43),
				"malformed token": "not-a-token", "revoked token": w.revoked} {
				res := w.do(rt.method, path, token, body)
				if code, _ := res.errField(t); res.status != http.StatusUnauthorized || code != CodeUnauthorized {
					t.Errorf("%s %s with %s: %d %s, want 401", rt.method, path, name, res.status, res.body)
				}
			}
			for _, role := range auth.Roles {
				if role.Allows(rt.role) {
					continue
				}
				res := w.do(rt.method, path, w.secret[role], body)
				if code, _ := res.errField(t); res.status != http.StatusForbidden || code != CodeForbidden {
					t.Errorf("%s %s as %s: %d %s, want 403", rt.method, path, role, res.status, res.body)
				}
			}
		}
	})
}

// fill puts a value in each of a path's parameters.
func fill(path string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.IndexByte(path[i:], '}')
		b.WriteString(path[:i] + "x")
		path = path[i+j+1:]
	}
}

// TestServesTheDocument: the document is served without a token, as
// embedded; an unknown path under the prefix is a JSON 404.
func TestServesTheDocument(t *testing.T) {
	eachWorld(t, func(t *testing.T, w *world) {
		res := w.do("GET", SpecPath, "", nil)
		if res.status != 200 || !bytes.Equal(res.body, Spec) || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
			t.Fatalf("%d %.100s", res.status, res.body)
		}
		res = w.do("GET", Prefix+"/nosuch", w.secret[auth.Admin], nil)
		if code, _ := res.errField(t); res.status != 404 || code != CodeNotFound {
			t.Fatalf("unknown path: %d %s", res.status, res.body)
		}
		for path, allow := range map[string]string{"/mappings/x": "GET, PUT, DELETE", "/tokens/x": "DELETE"} {
			res = w.do("PATCH", Prefix+path, w.secret[auth.Admin], "{}")
			if code, _ := res.errField(t); res.status != 405 || code != CodeMethodNotAllowed || res.header.Get("Allow") != allow {
				t.Errorf("PATCH %s: %d %v %s", path, res.status, res.header, res.body)
			}
		}
	})
}
