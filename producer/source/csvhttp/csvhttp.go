package csvhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer/source"
)

// Options of an HTTP CSV source.
type Options struct {
	// IDColumn is the header of the column holding the context key.
	// Default cohortcsv.DefaultIDColumn ("user_id").
	IDColumn string
	// Retry bounds the retries of the request. Default retry's defaults.
	Retry retry.Policy
	// MaxRetryAfter caps a server's Retry-After. Default 1m.
	MaxRetryAfter time.Duration
}

// DefaultMaxRetryAfter is Options.MaxRetryAfter's default.
const DefaultMaxRetryAfter = time.Minute

// Source reads one cohort CSV from a URL. It is read once.
type Source struct {
	client *http.Client
	url    string
	name   string
	opts   Options
	read   bool
}

var _ source.Source = (*Source)(nil)

// New returns the Source of the CSV at rawURL, fetched with client
// (http.DefaultClient if nil). The URL is checked now: http or https, with
// a host.
func New(client *http.Client, rawURL string, opts Options) (*Source, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cohort CSV URL: %w", errors.New(Redact(rawURL)+": not a URL"))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cohort CSV URL %s: want http:// or https:// with a host", Redact(rawURL))
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Source{client: client, url: rawURL, name: Redact(rawURL), opts: opts}, nil
}

// Redact returns rawURL without its password and with its query replaced
// by "...", so that names and errors never carry a secret.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	u.Fragment = ""
	return u.String()
}

// Name is the redacted URL.
func (s *Source) Name() string { return s.name }

// Kind is "csv": a CSV fetched over HTTP is a CSV snapshot.
func (s *Source) Kind() string { return "csv" }

// StatusError is a response other than 200.
type StatusError struct {
	URL    string // redacted
	Status int
	Body   string // the start of the body, for the message
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retryable tells whether a later attempt may succeed.
func (e *StatusError) Retryable() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Read fetches the CSV and parses it as cohortcsv.Read does a file.
func (s *Source) Read(ctx context.Context, emit func(key string) error, exclude func(source.Exclusion) error) (source.Stats, error) {
	if s.read {
		return source.Stats{}, errors.New("csv source " + s.name + ": already read")
	}
	s.read = true
	body, err := s.open(ctx)
	if err != nil {
		return source.Stats{}, err
	}
	defer func() { _ = body.Close() }() // read in full or failed: nothing to lose
	var onExclusion func(cohortcsv.Exclusion) error
	if exclude != nil {
		onExclusion = func(e cohortcsv.Exclusion) error {
			return exclude(source.Exclusion{Row: e.Row, Line: e.Line, Value: e.Value, Reason: e.Reason, Detail: e.Detail})
		}
	}
	st, err := cohortcsv.Read(ctx, body, cohortcsv.Options{IDColumn: s.opts.IDColumn}, emit, onExclusion)
	if err != nil {
		err = fmt.Errorf("GET %s: %w", s.name, err)
	}
	return source.Stats{Rows: st.Rows, Keys: st.Keys, Excluded: st.Excluded}, err
}

// open gets a 200 response, retrying what may pass.
func (s *Source) open(ctx context.Context) (io.ReadCloser, error) {
	maxWait := s.opts.MaxRetryAfter
	if maxWait <= 0 {
		maxWait = DefaultMaxRetryAfter
	}
	var body io.ReadCloser
	err := retry.Do(ctx, s.opts.Retry, "fetch cohort CSV "+s.name, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
		if err != nil {
			return retry.Permanent(fmt.Errorf("GET %s: %w", s.name, err))
		}
		resp, err := s.client.Do(req)
		if err != nil {
			// url.Error repeats the URL with its query: keep only the cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("GET %s: %w", s.name, err)
		}
		if resp.StatusCode == http.StatusOK {
			body = resp.Body
			return nil
		}
		se := NewStatusError(resp, s.name)
		if !se.Retryable() {
			return retry.Permanent(se)
		}
		if err := WaitRetryAfter(ctx, resp.Header, maxWait); err != nil {
			return err
		}
		return se
	}, nil)
	return body, err
}

// NewStatusError is the error of resp, a response of the resource named
// name (redacted): it reads the start of the body for the message and
// closes it.
func NewStatusError(resp *http.Response, name string) *StatusError {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200)) // for the message only
	_ = resp.Body.Close()
	return &StatusError{URL: name, Status: resp.StatusCode, Body: printable(snippet)}
}

// WaitRetryAfter waits what the Retry-After of header h asks (seconds or
// an HTTP date), at most maxWait; nothing without one. When ctx ends first
// it returns ctx's error marked retry.Permanent.
func WaitRetryAfter(ctx context.Context, h http.Header, maxWait time.Duration) error {
	wait, ok := retryAfter(h.Get("Retry-After"), time.Now())
	if !ok {
		return nil
	}
	t := time.NewTimer(min(wait, maxWait))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return retry.Permanent(fmt.Errorf("%w (while waiting %v as Retry-After asked)", ctx.Err(), wait))
	case <-t.C:
		return nil
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// printable keeps the start of a body fit for one line of a message.
func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
