package amplitudetest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// reply is a response read in full; err is the body's read error.
type reply struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	err        error
}

func get(t *testing.T, s *Server, path string, auth bool) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, "http") {
		req, _ = http.NewRequest(http.MethodGet, s.URL+path, nil)
	}
	if auth {
		req.SetBasicAuth(s.APIKey(), s.SecretKey())
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return reply{StatusCode: resp.StatusCode, Header: resp.Header, Body: b, err: err}
}

func decode(t *testing.T, r reply) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDocumentedFlow walks an export as sources.md documents it.
func TestDocumentedFlow(t *testing.T) {
	s := New(t, Config{Pending: 2, URLUses: 1, Cohorts: []Cohort{{ID: "c1", Name: "Power users",
		Users: []User{{AmplitudeID: 1, UserID: "alice", Props: map[string]string{"email": "a@x"}}, {AmplitudeID: 2}}}}})
	if r := get(t, s, "/api/3/cohorts", false); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without auth: %d, want 401", r.StatusCode)
	}
	list := decode(t, get(t, s, "/api/3/cohorts", true))
	if c := list["cohorts"].([]any)[0].(map[string]any); c["id"] != "c1" || c["size"] != 2.0 {
		t.Fatalf("list %v", list)
	}
	r := get(t, s, "/api/5/cohorts/request/c1?props=1&propKeys=email", true)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("request: %d", r.StatusCode)
	}
	rid := decode(t, r)["request_id"].(string)
	for i, want := range []int{202, 202, 200} {
		if r := get(t, s, "/api/5/cohorts/request-status/"+rid, true); r.StatusCode != want {
			t.Fatalf("status poll %d: %d, want %d", i, r.StatusCode, want)
		}
	}
	r = get(t, s, "/api/5/cohorts/request/"+rid+"/file", true)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusFound || loc == "" {
		t.Fatalf("file: %d %q", r.StatusCode, loc)
	}
	body := get(t, s, loc, false).Body
	if want := "amplitude_id,user_id,email\n1,alice,a@x\n2,,\n"; string(body) != want {
		t.Fatalf("file %q, want %q", body, want)
	}
	if r := get(t, s, loc, false); r.StatusCode != http.StatusForbidden {
		t.Fatalf("second use of a one-use URL: %d, want 403", r.StatusCode)
	}
}

func TestFaultsAndTruncation(t *testing.T) {
	s := New(t, Config{Inline: true, Gzip: true, TruncateGzip: true, Cohorts: []Cohort{{ID: "c1", Generate: 1000}}})
	s.Fail(EndpointRequest, 1, Fault{Status: 429, RetryAfter: "3"})
	if r := get(t, s, "/api/5/cohorts/request/c1?props=0", true); r.StatusCode != 429 || r.Header.Get("Retry-After") != "3" {
		t.Fatalf("fault: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	rid := decode(t, get(t, s, "/api/5/cohorts/request/c1?props=0", true))["request_id"].(string)
	get(t, s, "/api/5/cohorts/request-status/"+rid, true)
	zr, err := gzip.NewReader(bytes.NewReader(get(t, s, "/api/5/cohorts/request/"+rid+"/file", true).Body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(string(b), "amplitude_id,user_id\n1000000,user-0\n") {
		t.Fatalf("truncated gzip read %d bytes, %v; want its start and io.ErrUnexpectedEOF", len(b), err)
	}
	if s.Requests(EndpointRequest) != 2 {
		t.Fatalf("%d export requests, want 2", s.Requests(EndpointRequest))
	}
}

func TestCutAfter(t *testing.T) {
	s := New(t, Config{Inline: true, CutAfter: 100, Cohorts: []Cohort{{ID: "c1", Generate: 1000}}})
	rid := decode(t, get(t, s, "/api/5/cohorts/request/c1", true))["request_id"].(string)
	get(t, s, "/api/5/cohorts/request-status/"+rid, true)
	r := get(t, s, "/api/5/cohorts/request/"+rid+"/file", true)
	b, err := r.Body, r.err
	if err == nil || len(b) != 100 {
		t.Fatalf("read %d bytes, %v; want 100 and an error", len(b), err)
	}
}
