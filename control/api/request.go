package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// readBody reads the request's JSON body, at most max bytes: 415 for
// another media type, 413 for more, 400 for no body or one that is not
// JSON.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: fmt.Sprintf("Content-Type %q: want application/json", ct)}
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("", "read the body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("the body is over %d bytes", limit)}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest("", "want a JSON body")
	}
	return b, nil
}

// decodeStrict decodes body into v, refusing unknown fields, a second
// value and type mismatches, each a 400 naming the field.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return badRequest("", "want one JSON value, found more after it")
	}
	return nil
}

// jsonError is the 400 of a body encoding/json refused.
func jsonError(err error) *Error {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("", "want a JSON object, not %s", te.Value)
		}
		return badRequest(field, "%s: want %s, not %s", field, jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return badRequest("", "not JSON: %v (at byte %d)", se, se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return badRequest(field, "unknown field %q", field)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("", "not JSON: it ends early")
	}
	return badRequest("", "not JSON: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// query reads a request's query parameters: each known at most once,
// none unknown, each a 400 naming it otherwise.
type query struct {
	v    url.Values
	errs []*Error
}

func newQuery(r *http.Request, known ...string) *query {
	q := &query{v: r.URL.Query()}
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		q.errs = append(q.errs, badRequest("", "the query does not parse: %v", err))
	}
	for _, name := range slices.Sorted(maps.Keys(q.v)) {
		switch {
		case !slices.Contains(known, name):
			q.errs = append(q.errs, badRequest(name, "unknown query parameter %q (known: %s)", name, strings.Join(known, ", ")))
		case len(q.v[name]) > 1:
			q.errs = append(q.errs, badRequest(name, "query parameter %q given %d times", name, len(q.v[name])))
		}
	}
	return q
}

// str is parameter name, "" when absent; a value that is not UTF-8 or
// longer than 1024 bytes is refused.
func (q *query) str(name string) string {
	s := q.v.Get(name)
	if !utf8.ValidString(s) || len(s) > 1024 {
		q.errs = append(q.errs, badRequest(name, "%s: want UTF-8 of at most 1024 bytes", name))
		return ""
	}
	return s
}

// oneOf is parameter name, one of allowed or "".
func (q *query) oneOf(name string, allowed []string) string {
	s := q.str(name)
	if s != "" && !slices.Contains(allowed, s) {
		q.errs = append(q.errs, badRequest(name, "%s %q: want one of %s", name, s, strings.Join(allowed, ", ")))
		return ""
	}
	return s
}

// intIn is parameter name, an integer in [lo, hi], or def when absent.
func (q *query) intIn(name string, lo, hi, def int) int {
	s := q.v.Get(name)
	if s == "" {
		if _, given := q.v[name]; given {
			q.errs = append(q.errs, badRequest(name, "%s: want an integer from %d to %d, not empty", name, lo, hi))
		}
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		q.errs = append(q.errs, badRequest(name, "%s %q: want an integer from %d to %d", name, s, lo, hi))
		return def
	}
	return n
}

// time is parameter name, an RFC 3339 time, zero when absent.
func (q *query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.errs = append(q.errs, badRequest(name, "%s %q: want an RFC 3339 time such as 2026-12-07T18:00:00Z", name, s))
	}
	return t
}

// limit is the page size: limit, 1 to MaxLimit, default DefaultLimit.
func (q *query) limit() int { return q.intIn("limit", 1, MaxLimit, DefaultLimit) }

// err is the first problem found, nil if none.
func (q *query) err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return q.errs[0]
}
