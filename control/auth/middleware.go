package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Authenticator checks requests' bearer tokens (Store does).
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (Token, error)
}

// Denial is why a request was refused: Status is 401 (no usable token),
// 403 (the token's role is too low) or 503 (the tokens could not be
// read); Err says why, never with the token.
type Denial struct {
	Status int
	Err    error
}

// Middleware guards handlers with tokens.
type Middleware struct {
	Tokens Authenticator
	// Deny writes a refusal in the API's own error format.
	Deny func(w http.ResponseWriter, r *http.Request, d Denial)
}

// Errors of a refusal.
var (
	ErrNoToken  = errors.New("no bearer token: send Authorization: Bearer <token>")
	ErrRoleLow  = errors.New("the token's role may not do this")
	errBadToken = errors.New("unknown or revoked token")
)

// Require serves h to requests whose token has at least role need, and
// puts the token in the request's context (FromContext).
func (m Middleware) Require(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cohortsync"`)
			m.Deny(w, r, Denial{Status: http.StatusUnauthorized, Err: ErrNoToken})
			return
		}
		t, err := m.Tokens.Authenticate(r.Context(), secret)
		switch {
		case errors.Is(err, ErrUnauthorized):
			w.Header().Set("WWW-Authenticate", `Bearer realm="cohortsync", error="invalid_token"`)
			m.Deny(w, r, Denial{Status: http.StatusUnauthorized, Err: errBadToken})
			return
		case err != nil:
			m.Deny(w, r, Denial{Status: http.StatusServiceUnavailable, Err: err})
			return
		case !t.Role.Allows(need):
			m.Deny(w, r, Denial{Status: http.StatusForbidden, Err: errors.Join(ErrRoleLow, errors.New("role "+string(t.Role)+", needs "+string(need)))})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, t)))
	})
}

// bearer is the token of an Authorization header "Bearer <token>" (the
// scheme is case-insensitive, RFC 7235).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

type tokenKey struct{}

// FromContext is the token a Require'd request was authenticated with.
func FromContext(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(Token)
	return t, ok
}
