package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// Error codes, the "code" of every error body (openapi.json's Error).
const (
	CodeBadRequest        = "bad_request"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeTooLarge          = "payload_too_large"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeUnavailable       = "unavailable"
	CodeInternal          = "internal"
	maxMessageBytes       = 4096
	internalErrorResponse = "the server failed; its log has the error"
)

// Error is an API error: its status and the body {"error": {...}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the query parameter or body field at fault.
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// badRequest is a 400 naming field.
func badRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflict(field string, err error) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Field: field, Message: err.Error()}
}

// classify turns what a handler returned into an API error: the errors of
// the stores and of the domain that a client caused get their 4xx, a
// backend that cannot be reached 503, anything else 500.
func classify(err error) *Error {
	var (
		ae      *Error
		missing *catalogstore.MissingDestinationError
		project *catalogstore.MissingProjectError
		sharing *catalogstore.SharingError
		inUse   *catalogstore.InUseError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &missing):
		return badRequest("destinations", "%s", trimStore(err))
	case errors.As(err, &project):
		return badRequest("source.amplitude_project", "%s", trimStore(err))
	case errors.As(err, &sharing):
		return conflict("", errors.New(trimStore(sharing)))
	case errors.As(err, &inUse):
		return conflict("", errors.New(trimStore(inUse)))
	case errors.Is(err, segments.ErrSyncedSegment), errors.Is(err, segments.ErrContextKind), errors.Is(err, snapshot.ErrLocked):
		return conflict("", err)
	case errors.Is(err, schedule.ErrBusy), errors.Is(err, schedule.ErrPaused), errors.Is(err, schedule.ErrPush):
		return conflict("", err)
	case errors.Is(err, catalogstore.ErrNotFound), errors.Is(err, runstore.ErrNotFound), errors.Is(err, segments.ErrNotFound),
		errors.Is(err, auth.ErrNotFound), errors.Is(err, schedule.ErrNotFound), errors.Is(err, membership.ErrUnknownEnvironment):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: trimStore(err)}
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: err.Error()}
	}
	var se *catalog.SecretError
	if errors.As(err, &se) { // a destination's password cannot be read where serve runs
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: internalErrorResponse}
}

// trimStore drops a store's package name from its message: the API's
// users did not call it.
func trimStore(err error) string {
	msg := err.Error()
	for _, p := range []string{"catalogstore: ", "runstore: ", "auth: ", "schedule: "} {
		if len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	return msg
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every response type marshals; a failure is a bug, answered as one.
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode the response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // a client that went away needs no answer
}

// fail answers err. A 5xx is logged with the request's method and path
// (never its headers, query or body: tokens and keys stay out of logs).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAfterStart) {
		a.deps.Log.ErrorContext(r.Context(), "admin api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		return
	}
	e := classify(err)
	if e.Status >= 500 {
		a.deps.Log.ErrorContext(r.Context(), "admin api request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "error", err)
	}
	if len(e.Message) > maxMessageBytes {
		e.Message = e.Message[:maxMessageBytes] + "..."
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// deny answers auth's refusals.
func (a *API) deny(w http.ResponseWriter, r *http.Request, d auth.Denial) {
	code := map[int]string{http.StatusUnauthorized: CodeUnauthorized, http.StatusForbidden: CodeForbidden}[d.Status]
	if code == "" {
		a.fail(w, r, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the tokens cannot be read: " + d.Err.Error()})
		return
	}
	a.fail(w, r, &Error{Status: d.Status, Code: code, Message: d.Err.Error()})
}
