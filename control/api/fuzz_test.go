package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// isBadRequest tells whether err is the API's 400 (or 413 for the body's
// size), what every decoder must answer for a client's input.
func isBadRequest(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge)
}

// FuzzEntryBody: a destination's or a mapping's body never panics the
// decoders; it is decoded to the one entry it names or refused with a 400.
func FuzzEntryBody(f *testing.F) {
	f.Add(false, `{"name":"production","redis":{"url":"redis://localhost:6379","password_env":"PW"},"prefix":"p"}`, "")
	f.Add(false, `{"redis":{"cluster_addrs":["a:1","b:2"],"tls":true}}`, "production")
	f.Add(false, `{"name":"x","redis":{"url":"redis://u:secret@h:1"}}`, "")
	f.Add(true, `{"name":"beta","source":{"csv":"/a.csv"},"segment":"beta","destinations":["production"],"schedule":"hourly"}`, "")
	f.Add(true, `{"source":{"push":true,"integration":"i","cohort":"c"},"segment":"s","destinations":["production"],"notify":{"email":{"to":["a@b.c"]}}}`, "m")
	f.Add(true, `{"name":"m","source":{"amplitude_cohort":"c","amplitude_project":"p"},"segment":"s","destinations":["production"],"schedule":"0 3 * * *","max_shrink":1e400}`, "")
	f.Add(true, `[1,2]`, "")
	f.Add(true, `{"name":"a\u2028b"} {}`, "")
	f.Fuzz(func(t *testing.T, mapping bool, body, pathName string) {
		obj, err := entryObject([]byte(body), pathName)
		if err != nil {
			if !isBadRequest(err) {
				t.Fatalf("entryObject: %v, want a 400", err)
			}
			return
		}
		dests := []map[string]any{{"name": "production", "redis": map[string]any{"url": "redis://localhost:6379"}}}
		var maps []map[string]any
		if mapping {
			maps = []map[string]any{obj}
		} else {
			dests = append(dests, obj)
		}
		c, err := decodeEntries(dests, maps, nil)
		if err != nil {
			if !isBadRequest(err) {
				t.Fatalf("decodeEntries: %v, want a 400", err)
			}
			return
		}
		name, _ := obj["name"].(string)
		if _, ok := c.Destination(name); !ok && !mapping {
			t.Fatalf("decoded without destination %q", name)
		}
		if mapping && (len(c.Mappings) != 1 || c.Mappings[0].Name != name) {
			t.Fatalf("decoded mappings %v, want %q", c.Mappings, name)
		}
	})
}

// FuzzStrictBody: the strictly decoded bodies (tokens, member edits)
// never panic and are decoded or refused with a 400.
func FuzzStrictBody(f *testing.F) {
	f.Add(`{"name":"ci","role":"writer"}`)
	f.Add(`{"keys":["a","b"],"generation":2,"context_kind":"device"}`)
	f.Add(`{"keys":"a"}`)
	f.Add(`{"name":1e999}`)
	f.Add(`{"unknown":true}`)
	f.Add("\xff")
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{&tokenCreate{}, &membersEdit{}} {
			if err := decodeStrict([]byte(body), v); err != nil && !isBadRequest(err) {
				t.Fatalf("%T: %v, want a 400", v, err)
			}
		}
		req := httptest.NewRequest("POST", "/x", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if b, err := readBody(req, 64); err != nil && !isBadRequest(err) {
			t.Fatalf("readBody: %v", err)
		} else if err == nil && len(b) > 64 {
			t.Fatalf("readBody read %d bytes over its limit", len(b))
		}
	})
}

// FuzzQuery: any query string is read or refused with a 400 naming a
// parameter it has (or none); cursors of every list are checked.
func FuzzQuery(f *testing.F) {
	f.Add("limit=10&cursor=a2JldGE")
	f.Add("status=failed&since=2026-12-07T18:00:00Z&until=2026-12-08T00:00:00%2B01:00")
	f.Add("limit=1&limit=2")
	f.Add("cursor=12.3&generation=4&prefix=%5B")
	f.Add("%zz=1;x")
	f.Fuzz(func(t *testing.T, raw string) {
		req := httptest.NewRequest("GET", "/x", nil)
		req.URL.RawQuery = raw
		q := newQuery(req, "mapping", "status", "since", "until", "cursor", "limit", "generation", "prefix")
		q.str("mapping")
		q.oneOf("status", runStates)
		q.time("since")
		q.time("until")
		limit := q.limit()
		q.intIn("generation", 1, 1<<30, 0)
		cursor := q.str("cursor")
		if err := q.err(); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("%v, want a 400", err)
			}
			return
		}
		if limit < 1 || limit > MaxLimit {
			t.Fatalf("limit %d", limit)
		}
		if _, err := pageOf([]string{"a", "b", "c"}, func(s string) string { return s }, cursor, limit); err != nil && !isBadRequest(err) {
			t.Fatalf("pageOf: %v", err)
		}
		if _, err := parseMembersCursor(cursor); err != nil && !isBadRequest(err) {
			t.Fatalf("members cursor: %v", err)
		}
	})
}
