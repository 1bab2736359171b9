package api

import (
	"net/http"

	"github.com/cohortsync/cohortsync/control/auth"
)

func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	t, _ := auth.FromContext(r.Context())
	writeJSON(w, http.StatusOK, t)
	return nil
}

func tokenKey(t auth.Token) string { return t.Name + "\x00" + t.ID }

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "cursor", "limit")
	cursor, limit := q.str("cursor"), q.limit()
	if err := q.err(); err != nil {
		return err
	}
	ts, err := a.deps.Tokens.List(r.Context())
	if err != nil {
		return err
	}
	p, err := pageOf(ts, tokenKey, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// tokenCreate is POST /tokens' body.
type tokenCreate struct {
	Name string    `json:"name"`
	Role auth.Role `json:"role"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var in tokenCreate
	if err := a.decode(r, &in); err != nil {
		return err
	}
	if err := auth.CheckName(in.Name); err != nil {
		return badRequest("name", "%v", err)
	}
	if !in.Role.Valid() {
		_, err := auth.ParseRole(string(in.Role))
		return badRequest("role", "%v", err)
	}
	t, secret, err := a.deps.Tokens.Create(r.Context(), in.Name, in.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"token": t, "secret": secret})
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := a.deps.Tokens.Revoke(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decode reads r's body into v strictly (decodeStrict).
func (a *API) decode(r *http.Request, v any) error {
	b, err := readBody(r, a.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}
