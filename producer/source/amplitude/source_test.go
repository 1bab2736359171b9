package amplitude

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
)

var fast = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 10 * time.Second}

func fastOptions() Options {
	return Options{Retry: fast, PollInterval: time.Millisecond, PollTimeout: 10 * time.Second}
}

var users = []amplitudetest.User{
	{AmplitudeID: 11, UserID: "alice", Props: map[string]string{"email": "alice@example.com"}},
	{AmplitudeID: 12, UserID: "", Props: map[string]string{"email": "anon@example.com"}},
	{AmplitudeID: 13, UserID: "bob"},
}

func cohorts() []amplitudetest.Cohort {
	return []amplitudetest.Cohort{{ID: "7khm89cz", Name: "Power users", Users: users,
		LastComputed: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}}
}

func client(t *testing.T, srv *amplitudetest.Server, creds Credentials) *Client {
	t.Helper()
	if creds == (Credentials{}) {
		creds = Credentials{APIKey: srv.APIKey(), SecretKey: srv.SecretKey()}
	}
	c, err := New(srv.URL, creds, fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	keys []string
	excl []source.Exclusion
	st   source.Stats
	err  error
}

func read(t *testing.T, src source.Source) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var r result
	r.st, r.err = src.Read(ctx, func(k string) error { r.keys = append(r.keys, k); return nil },
		func(e source.Exclusion) error { r.excl = append(r.excl, e); return nil })
	slices.Sort(r.keys)
	return r
}

// TestRead covers what the export really does, against the fake API.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      amplitudetest.Config
		faults   map[amplitudetest.Endpoint]amplitudetest.Fault // one each
		creds    Credentials
		property string
		want     []string
		excluded int64
		err      string // substring of the error; "" for none
		counts   map[amplitudetest.Endpoint]int
		slow     time.Duration // the read takes at least this
	}{
		{name: "inline plain file, user_id, an anonymous user excluded", cfg: amplitudetest.Config{Inline: true},
			want: []string{"alice", "bob"}, excluded: 1,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointRequest: 1, amplitudetest.EndpointFile: 1, amplitudetest.EndpointDownload: 0}},
		{name: "302 to a presigned gzip file", cfg: amplitudetest.Config{Gzip: true},
			want: []string{"alice", "bob"}, excluded: 1,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointFile: 1, amplitudetest.EndpointDownload: 1}},
		{name: "202 JOB INPROGRESS is polled until JOB COMPLETED", cfg: amplitudetest.Config{Pending: 3},
			want: []string{"alice", "bob"}, excluded: 1,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointStatus: 4}},
		{name: "an expired presigned URL is asked again", cfg: amplitudetest.Config{ExpiredURLs: 2},
			want: []string{"alice", "bob"}, excluded: 1,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointFile: 3, amplitudetest.EndpointDownload: 3}},
		{name: "presigned URLs that always expire fail after the bounded re-asks", cfg: amplitudetest.Config{URLTTL: time.Nanosecond},
			err:    "Request has expired",
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointFile: DefaultMaxReasks + 1}},
		{name: "429 waits for Retry-After", cfg: amplitudetest.Config{Inline: true},
			faults: map[amplitudetest.Endpoint]amplitudetest.Fault{amplitudetest.EndpointRequest: {Status: 429, RetryAfter: "1"}},
			want:   []string{"alice", "bob"}, excluded: 1, slow: time.Second,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointRequest: 2}},
		{name: "500 is retried", cfg: amplitudetest.Config{},
			faults: map[amplitudetest.Endpoint]amplitudetest.Fault{amplitudetest.EndpointStatus: {Status: 500}, amplitudetest.EndpointFile: {Status: 503}, amplitudetest.EndpointDownload: {Status: 500}},
			want:   []string{"alice", "bob"}, excluded: 1,
			counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointStatus: 2, amplitudetest.EndpointFile: 2, amplitudetest.EndpointDownload: 2}},
		{name: "wrong credentials: 401 reported, not retried", cfg: amplitudetest.Config{},
			creds: Credentials{APIKey: "test-api-key", SecretKey: "wrong-secret-xyzzy"},
			err:   "401 Unauthorized", counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointRequest: 1}},
		{name: "an unknown cohort: 404 reported, not retried", cfg: amplitudetest.Config{Cohorts: []amplitudetest.Cohort{}},
			err: "404 Not Found", counts: map[amplitudetest.Endpoint]int{amplitudetest.EndpointRequest: 1}},
		{name: "a user property is requested and keys the members", cfg: amplitudetest.Config{Inline: true}, property: "email",
			want: []string{"alice@example.com", "anon@example.com"}, excluded: 1},
		{name: "amplitude_id keys every member", cfg: amplitudetest.Config{Gzip: true}, property: ColumnAmplitudeID,
			want: []string{"11", "12", "13"}},
		{name: "a truncated gzip fails the read", cfg: amplitudetest.Config{Gzip: true, TruncateGzip: true},
			err: "unexpected EOF"},
		{name: "a body cut short fails the read", cfg: amplitudetest.Config{Inline: true, CutAfter: 40},
			err: "unexpected EOF"},
		{name: "a gzip body cut short fails the read", cfg: amplitudetest.Config{Gzip: true, CutAfter: 30},
			err: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Cohorts == nil {
				tc.cfg.Cohorts = cohorts()
			}
			srv := amplitudetest.New(t, tc.cfg)
			for e, f := range tc.faults {
				srv.Fail(e, 1, f)
			}
			start := time.Now()
			r := read(t, client(t, srv, tc.creds).Source("7khm89cz", tc.property))
			switch {
			case tc.err == "" && r.err != nil:
				t.Fatalf("Read = %v", r.err)
			case tc.err != "" && (r.err == nil || !strings.Contains(r.err.Error(), tc.err)):
				t.Fatalf("Read = %v, want an error with %q", r.err, tc.err)
			case r.err != nil && (strings.Contains(r.err.Error(), srv.SecretKey()) || strings.Contains(r.err.Error(), "xyzzy") || strings.Contains(r.err.Error(), "sig-")):
				t.Fatalf("error %q shows a secret", r.err)
			}
			if tc.err == "" {
				if !slices.Equal(r.keys, tc.want) {
					t.Fatalf("keys %q, want %q", r.keys, tc.want)
				}
				if r.st.Excluded[cohortcsv.ReasonEmptyID] != tc.excluded || int64(len(r.excl)) != tc.excluded {
					t.Fatalf("stats %+v, exclusions %+v; want %d empty_id", r.st, r.excl, tc.excluded)
				}
			}
			for e, n := range tc.counts {
				if got := srv.Requests(e); got != n {
					t.Errorf("%d %s requests, want %d", got, e, n)
				}
			}
			if time.Since(start) < tc.slow {
				t.Fatalf("took %v, want at least %v", time.Since(start), tc.slow)
			}
			if srv.DownloadsWithAuth() != 0 {
				t.Fatal("the presigned download received the project's credentials")
			}
		})
	}
}

// TestExportQuery pins how the mapped property is requested.
func TestExportQuery(t *testing.T) {
	for property, want := range map[string]string{
		"":                "props=0",
		ColumnUserID:      "props=0",
		ColumnAmplitudeID: "props=0",
		"email":           "propKeys=email&props=1",
		"gp:plan tier":    "propKeys=gp%3Aplan+tier&props=1",
	} {
		srv := amplitudetest.New(t, amplitudetest.Config{Inline: true, Cohorts: cohorts()})
		_ = read(t, client(t, srv, Credentials{}).Source("7khm89cz", property)) // the query is what is checked
		if q := srv.ExportQueries(); len(q) != 1 || q[0].Encode() != want {
			t.Errorf("property %q: export queries %v, want %s", property, q, want)
		}
	}
}

// TestParallelLimit: many exports of one project at once never have more
// than MaxParallel requests in progress, so Amplitude never answers 429.
func TestParallelLimit(t *testing.T) {
	srv := amplitudetest.New(t, amplitudetest.Config{Inline: true, Cohorts: cohorts(), Latency: 20 * time.Millisecond, MaxParallel: MaxParallel, Pending: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for range 12 {
		// Separate Clients of one project share the project's slots.
		c := client(t, srv, Credentials{})
		wg.Go(func() {
			if r := read(t, c.Source("7khm89cz", "")); r.err != nil {
				errs <- r.err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.MaxInFlight(); n > MaxParallel || n < 2 {
		t.Fatalf("at most %d requests in progress at once, want 2..%d", n, MaxParallel)
	}
}

func TestPollTimeout(t *testing.T) {
	srv := amplitudetest.New(t, amplitudetest.Config{Pending: 1 << 30, Cohorts: cohorts()})
	opts := fastOptions()
	opts.PollTimeout = 50 * time.Millisecond
	c, err := New(srv.URL, Credentials{APIKey: srv.APIKey(), SecretKey: srv.SecretKey()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := read(t, c.Source("7khm89cz", "")); !errors.Is(r.err, ErrExportTimeout) {
		t.Fatalf("Read = %v, want ErrExportTimeout", r.err)
	}
}

func TestListCohorts(t *testing.T) {
	srv := amplitudetest.New(t, amplitudetest.Config{Cohorts: append(cohorts(), amplitudetest.Cohort{ID: "big", Name: "Everyone", Generate: 2_000_000, Archived: true})})
	got, err := client(t, srv, Credentials{}).ListCohorts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Cohort{
		{ID: "7khm89cz", Name: "Power users", Size: 3, LastComputed: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{ID: "big", Name: "Everyone", Size: 2_000_000, Archived: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListCohorts = %+v, want %+v", got, want)
	}
	_, err = client(t, srv, Credentials{APIKey: "test-api-key", SecretKey: "nope-secret"}).ListCohorts(context.Background())
	var se interface{ Retryable() bool }
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "nope-secret") || !errors.As(err, &se) {
		t.Fatalf("with a wrong secret: %v, want a 401 that does not show it", err)
	}
}

func TestNewChecks(t *testing.T) {
	creds := Credentials{APIKey: "k", SecretKey: "s3cr3t"}
	for _, tc := range []struct {
		base  string
		creds Credentials
		err   string
	}{
		{"ftp://amplitude.com", creds, "want http:// or https://"},
		{"https://user:hunter2@amplitude.com", creds, "without credentials"},
		{"https://amplitude.com?x=1", creds, "without credentials or query"},
		{USBaseURL, Credentials{APIKey: "k"}, "secret key are required"},
	} {
		_, err := New(tc.base, tc.creds, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q) = %v, want an error with %q", tc.base, err, tc.err)
		}
	}
	for _, base := range []string{USBaseURL, EUBaseURL, "http://127.0.0.1:8080/"} {
		if _, err := New(base, creds, Options{}); err != nil {
			t.Errorf("New(%q) = %v", base, err)
		}
	}
}

// TestCancelStopsRetries: a cancelled run does not keep retrying.
func TestCancelStopsRetries(t *testing.T) {
	srv := amplitudetest.New(t, amplitudetest.Config{Cohorts: cohorts()})
	srv.Fail(amplitudetest.EndpointRequest, 1000, amplitudetest.Fault{Status: http.StatusServiceUnavailable})
	c, err := New(srv.URL, Credentials{APIKey: srv.APIKey(), SecretKey: srv.SecretKey()}, Options{Retry: retry.Policy{Initial: 10 * time.Millisecond, Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Source("7khm89cz", "").Read(ctx, func(string) error { return nil }, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want the context's error", err)
	}
}
