package csvhttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/producer/source"
)

const cohort = "user_id,amplitude_id\nalice,1\n,2\nbob,3\n"

var fast = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 10 * time.Second}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func read(t *testing.T, url string) ([]string, source.Stats, error) {
	t.Helper()
	s, err := New(nil, url, Options{Retry: fast})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.Read(ctx, func(k string) error { keys = append(keys, k); return nil }, nil)
	return keys, st, err
}

// TestRead covers the responses a CSV URL really gives.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replies  []func(w http.ResponseWriter) // one per request; the last repeats
		want     []string
		err      string // substring of the error; "" for none
		requests int64
	}{
		{name: "plain CSV", replies: []func(http.ResponseWriter){ok([]byte(cohort))}, want: []string{"alice", "bob"}, requests: 1},
		{name: "gzip file", replies: []func(http.ResponseWriter){ok(gz(t, cohort))}, want: []string{"alice", "bob"}, requests: 1},
		{name: "5xx is retried", replies: []func(http.ResponseWriter){status(503, ""), status(500, ""), ok([]byte(cohort))}, want: []string{"alice", "bob"}, requests: 3},
		{name: "429 waits for Retry-After", replies: []func(http.ResponseWriter){status(429, "1"), ok([]byte(cohort))}, want: []string{"alice", "bob"}, requests: 2},
		{name: "404 is not retried", replies: []func(http.ResponseWriter){status(404, "")}, err: "404 Not Found: no such export", requests: 1},
		{name: "403 is not retried", replies: []func(http.ResponseWriter){status(403, "")}, err: "403 Forbidden", requests: 1},
		{name: "a body cut short fails the read", replies: []func(http.ResponseWriter){truncated([]byte(cohort))}, err: "unexpected EOF", requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				tc.replies[min(i, len(tc.replies)-1)](w)
			}))
			defer srv.Close()
			start := time.Now()
			keys, _, err := read(t, srv.URL+"/export.csv?X-Amz-Signature=secret")
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Read = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Read = %v, want an error with %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("error %q shows the URL's query", err)
			}
			if tc.err == "" && !slices.Equal(keys, tc.want) {
				t.Fatalf("keys %q, want %q", keys, tc.want)
			}
			if got := n.Load(); got != tc.requests {
				t.Fatalf("%d requests, want %d", got, tc.requests)
			}
			if tc.name == "429 waits for Retry-After" && time.Since(start) < time.Second {
				t.Fatalf("retried after %v, before the 1s Retry-After", time.Since(start))
			}
		})
	}
}

func ok(body []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { _, _ = w.Write(body) }
}

func status(code int, retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		if code == 404 {
			_, _ = w.Write([]byte("no such export\n"))
		}
	}
}

// truncated promises more bytes than it sends, as a connection dropped
// mid-download does.
func truncated(body []byte) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write(body)
		hj, _ := w.(http.Hijacker)
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
}

// TestNewChecksTheURL: what is not an http(s) URL is refused before a run
// starts, and the refusal does not repeat a password.
func TestNewChecksTheURL(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"ftp://host/x.csv", "ftp://host/x.csv: want http:// or https:// with a host"},
		{"https:///x.csv", "want http:// or https:// with a host"},
		{"s3://user:hunter2@bucket/x.csv", "s3://user:xxxxx@bucket/x.csv: want http"},
		{"http://[::1", "not a URL"},
	} {
		_, err := New(nil, tc.url, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q) = %v, want an error with %q", tc.url, err, tc.err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@host/a.csv?sig=1#x": "https://u:xxxxx@host/a.csv?...",
		"https://host/a.csv":             "https://host/a.csv",
		"https://u@host/a.csv":           "https://u@host/a.csv",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCancelStopsRetries: a cancelled run does not keep retrying.
func TestCancelStopsRetries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	s, err := New(nil, srv.URL, Options{Retry: retry.Policy{Initial: 10 * time.Millisecond, Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = s.Read(ctx, func(string) error { return nil }, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want the context's error", err)
	}
}
