// Package api is the admin HTTP API of cohortsync serve, under /api/v1:
// JSON handlers on a net/http ServeMux for the catalog (destinations,
// mappings), the run history, segments, membership, status, erase and
// the API's own tokens, each behind control/auth's bearer tokens and
// roles.
//
// openapi.json, embedded and served at /api/v1/openapi.json, is the
// contract: the route table (routes.go) and the document are compared
// both ways by the tests, and every handler test's response is validated
// against it. The web console codes against it.
package api
