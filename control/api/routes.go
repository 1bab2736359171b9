package api

import (
	"net/http"

	"github.com/cohortsync/cohortsync/control/auth"
)

// Public is the role of a route served without a token: only the
// document.
const Public auth.Role = "public"

// route is one operation: its method and path (openapi.json's), the
// lowest role allowed (the document's x-role) and its handler. A handler
// returns its error for the API to answer (classify).
type route struct {
	method, path string
	role         auth.Role
	handle       func(w http.ResponseWriter, r *http.Request) error
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes is the route table: every operation of the API. The tests
// compare it with openapi.json both ways and check each route's 401 and
// 403 from it, so a route cannot be added without both.
//
// Roles: a reader reads everything but the tokens; a writer also changes
// mappings (create, update, delete, pause, resume, sync now), edits list
// segments and creates or updates destinations; only an admin deletes a
// destination (it strands whatever still reads it), manages tokens, and
// erases a context key (it rewrites every segment of an environment).
func (a *API) routes() []route {
	const v = Prefix
	return []route{
		{"GET", v + "/openapi.json", Public, a.spec},
		{"GET", v + "/whoami", auth.Reader, a.whoami},
		{"GET", v + "/tokens", auth.Admin, a.listTokens},
		{"POST", v + "/tokens", auth.Admin, a.createToken},
		{"DELETE", v + "/tokens/{id}", auth.Admin, a.revokeToken},

		{"GET", v + "/destinations", auth.Reader, a.listDestinations},
		{"POST", v + "/destinations", auth.Writer, a.createDestination},
		{"GET", v + "/destinations/{destination}", auth.Reader, a.getDestination},
		{"PUT", v + "/destinations/{destination}", auth.Writer, a.updateDestination},
		{"DELETE", v + "/destinations/{destination}", auth.Admin, a.deleteDestination},
		{"POST", v + "/destinations/{destination}/test", auth.Reader, a.testDestination},

		{"GET", v + "/mappings", auth.Reader, a.listMappings},
		{"POST", v + "/mappings", auth.Writer, a.createMapping},
		{"GET", v + "/mappings/{mapping}", auth.Reader, a.getMapping},
		{"PUT", v + "/mappings/{mapping}", auth.Writer, a.updateMapping},
		{"DELETE", v + "/mappings/{mapping}", auth.Writer, a.deleteMapping},
		{"POST", v + "/mappings/{mapping}/pause", auth.Writer, a.pauseMapping},
		{"POST", v + "/mappings/{mapping}/resume", auth.Writer, a.resumeMapping},
		{"POST", v + "/mappings/{mapping}/sync", auth.Writer, a.syncMapping},

		{"GET", v + "/runs", auth.Reader, a.listRuns},
		{"GET", v + "/runs/{run}", auth.Reader, a.getRun},
		{"GET", v + "/runs/{run}/exclusions", auth.Reader, a.runExclusions},

		{"GET", v + "/segments", auth.Reader, a.listSegments},
		{"GET", v + "/destinations/{destination}/segments/{segment}", auth.Reader, a.getSegment},
		{"GET", v + "/destinations/{destination}/segments/{segment}/members", auth.Reader, a.listMembers},
		{"GET", v + "/destinations/{destination}/segments/{segment}/export", auth.Reader, a.exportSegment},
		{"POST", v + "/destinations/{destination}/segments/{segment}/members/add", auth.Writer, a.addMembers},
		{"POST", v + "/destinations/{destination}/segments/{segment}/members/remove", auth.Writer, a.removeMembers},

		{"GET", v + "/destinations/{destination}/segments/{segment}/members/{contextKey}", auth.Reader, a.getMembership},
		{"GET", v + "/destinations/{destination}/contexts/{contextKey}/segments", auth.Reader, a.getContextSegments},
		{"GET", v + "/status", auth.Reader, a.getStatus},
		{"POST", v + "/destinations/{destination}/erase", auth.Admin, a.eraseContext},
	}
}

// guard serves rt: behind its role's token, with the body bounded, and
// the handler's error answered.
func (a *API) guard(rt route) http.Handler {
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes+1)
		if err := rt.handle(w, r); err != nil {
			a.fail(w, r, err)
		}
	}))
	if rt.role == Public {
		return h
	}
	return a.mw.Require(rt.role, h)
}

func (a *API) spec(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(Spec)
	return nil
}
