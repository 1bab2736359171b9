package api

import (
	"context"
	"net/http"

	"github.com/cohortsync/cohortsync/control/erase"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/schema"
)

// Lookup says which segments hold a context key, since which run
// (membership.Lookup).
type Lookup interface {
	Lookup(ctx context.Context, q membership.Query) (membership.Result, error)
}

// Status reports destinations' and segments' freshness (status.Checker).
type Status interface {
	Check(ctx context.Context, destination string) (status.Report, error)
}

// Eraser removes a context key from every segment of an environment
// through the event path (erase.Eraser, with its history).
type Eraser interface {
	Erase(ctx context.Context, env, contextKey string) (erase.Receipt, error)
}

// membershipJSON is a lookup's result as the API shows it.
type membershipJSON struct {
	membership.Result
	// Member says whether a generation listed includes the key.
	Member bool `json:"member"`
}

// contextKey is the path's context key, checked as events check keys.
func contextKey(r *http.Request) (string, error) {
	k := r.PathValue("contextKey")
	if err := schema.CheckIdentifier(k); err != nil {
		return "", badRequest("contextKey", "context key %q: want %s", k, schema.IdentifierForm)
	}
	return k, nil
}

func (a *API) lookup(w http.ResponseWriter, r *http.Request, segment string) error {
	if err := newQuery(r).err(); err != nil {
		return err
	}
	key, err := contextKey(r)
	if err != nil {
		return err
	}
	dest := r.PathValue("destination")
	if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
		return err
	}
	res, err := a.deps.Lookup.Lookup(r.Context(), membership.Query{Env: dest, ContextKey: key, Segment: segment})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, membershipJSON{Result: res, Member: res.In()})
	return nil
}

func (a *API) getMembership(w http.ResponseWriter, r *http.Request) error {
	_, segment, err := segmentPath(r)
	if err != nil {
		return err
	}
	return a.lookup(w, r, segment)
}

func (a *API) getContextSegments(w http.ResponseWriter, r *http.Request) error {
	return a.lookup(w, r, "")
}

func (a *API) getStatus(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "destination")
	dest := q.str("destination")
	if err := q.err(); err != nil {
		return err
	}
	if dest != "" {
		if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
			return err
		}
	}
	rep, err := a.deps.Status.Check(r.Context(), dest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// eraseRequest is the body of POST .../erase.
type eraseRequest struct {
	ContextKey string `json:"context_key"`
}

// eraseContext erases a context key from the destination's environment
// and answers its receipt. An erase that failed part way is stored with
// what it did; the answer is then the error, naming the receipt: erasing
// again is harmless.
func (a *API) eraseContext(w http.ResponseWriter, r *http.Request) error {
	var in eraseRequest
	if err := a.decode(r, &in); err != nil {
		return err
	}
	if err := schema.CheckIdentifier(in.ContextKey); err != nil {
		return badRequest("context_key", "context_key %q: want %s", in.ContextKey, schema.IdentifierForm)
	}
	dest := r.PathValue("destination")
	if _, err := a.deps.Catalog.Destination(r.Context(), dest); err != nil {
		return err
	}
	rec, err := a.deps.Erase.Erase(r.Context(), dest, in.ContextKey)
	if err != nil {
		if rec.ID != "" {
			e := classify(err)
			e.Message = "erase " + rec.ID + " failed part way (its receipt is stored; erasing again is harmless): " + err.Error()
			return e
		}
		return err
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}
