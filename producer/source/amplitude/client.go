package amplitude

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/producer/source/csvhttp"
)

// Hosts of Amplitude's data centers.
const (
	USBaseURL = "https://amplitude.com"
	EUBaseURL = "https://analytics.eu.amplitude.com"
)

// MaxParallel is how many requests Amplitude allows in progress at once per
// project.
const MaxParallel = 4

// Defaults of Options.
const (
	DefaultPollInterval  = 5 * time.Second
	DefaultPollTimeout   = time.Hour
	DefaultMaxRetryAfter = time.Minute
	// DefaultMaxReasks bounds how many times an expired presigned URL is
	// replaced by a fresh one within one download.
	DefaultMaxReasks = 5
)

// Credentials are a project's API key and secret key.
type Credentials struct {
	APIKey    string
	SecretKey string
}

// Options tune a Client.
type Options struct {
	// HTTP sends the requests; its redirect policy is not used (the Client
	// follows the file's 302 itself, without the credentials). Default
	// http.DefaultClient's transport and timeout.
	HTTP *http.Client
	// Retry bounds the retries of each request. Default retry's defaults.
	Retry retry.Policy
	// MaxRetryAfter caps a server's Retry-After. Default 1m.
	MaxRetryAfter time.Duration
	// PollInterval is the wait between two status requests of an export.
	// Default 5s: an export takes seconds to minutes, and each poll counts
	// against the project's rate limit.
	PollInterval time.Duration
	// PollTimeout bounds how long an export may stay in progress. Default 1h.
	PollTimeout time.Duration
	// MaxReasks bounds how many fresh presigned URLs one download asks for
	// when the previous one expired. Default 5.
	MaxReasks int
}

func (o Options) withDefaults() Options {
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = DefaultPollTimeout
	}
	if o.MaxReasks <= 0 {
		o.MaxReasks = DefaultMaxReasks
	}
	return o
}

// Client calls one project's API.
type Client struct {
	base  string // without a final slash
	host  string // for names
	creds Credentials
	http  *http.Client
	opts  Options
	slots chan struct{}
}

// New returns a Client of the project at baseURL (USBaseURL, EUBaseURL,
// or a proxy's or a test's) with creds. The URL is checked now: http or
// https, with a host, no query.
func New(baseURL string, creds Credentials, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("amplitude base URL %s: want http:// or https:// with a host, without credentials or query", csvhttp.Redact(baseURL))
	}
	if creds.APIKey == "" || creds.SecretKey == "" {
		return nil, errors.New("amplitude: an API key and a secret key are required")
	}
	opts = opts.withDefaults()
	hc := *opts.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: strings.TrimSuffix(baseURL, "/"), host: u.Host, creds: creds, http: &hc, opts: opts,
		slots: projectSlots(creds.APIKey)}, nil
}

// slots holds each project's semaphore, by a digest of its API key (the
// key itself is not kept as a map key so that a heap dump of the map
// shows no credential in clear).
var slots sync.Map // [sha256.Size]byte -> chan struct{}

// projectSlots is the process-wide semaphore of the project of apiKey.
func projectSlots(apiKey string) chan struct{} {
	ch, _ := slots.LoadOrStore(sha256.Sum256([]byte(apiKey)), make(chan struct{}, MaxParallel))
	return ch.(chan struct{})
}

// acquire takes one of the project's request slots; release gives it back.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-c.slots }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// response is a response whose body holds a request slot until closed.
type response struct {
	*http.Response
	release func()
}

func (r response) Read(p []byte) (int, error) { return r.Body.Read(p) }

func (r response) Close() error {
	err := r.Body.Close()
	r.release()
	return err
}

// get sends GET u (with the credentials when auth) until its status is one
// of want, retrying network errors, 408, 429 and 5xx; another status is a
// permanent *csvhttp.StatusError. name is u as errors show it. The caller
// closes the response.
func (c *Client) get(ctx context.Context, u, name string, auth bool, want ...int) (response, error) {
	var out response
	what := "call Amplitude"
	if !auth {
		what = "download from storage"
	}
	err := retry.Do(ctx, c.opts.Retry, what, func() error {
		release := func() {}
		if auth {
			var err error
			if release, err = c.acquire(ctx); err != nil {
				return retry.Permanent(err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			release()
			return retry.Permanent(fmt.Errorf("GET %s: %w", name, err))
		}
		if auth {
			req.SetBasicAuth(c.creds.APIKey, c.creds.SecretKey)
		}
		resp, err := c.http.Do(req) //nolint:bodyclose // returned to the caller, or closed by NewStatusError
		if err != nil {
			release()
			// url.Error repeats the URL with its query: keep only the cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("GET %s: %w", name, err)
		}
		for _, w := range want {
			if resp.StatusCode == w {
				out = response{Response: resp, release: release}
				return nil
			}
		}
		se := csvhttp.NewStatusError(resp, name)
		release()
		if !se.Retryable() {
			return retry.Permanent(se)
		}
		if err := csvhttp.WaitRetryAfter(ctx, resp.Header, c.opts.MaxRetryAfter); err != nil {
			return err
		}
		return se
	}, nil)
	return out, err
}

// getJSON GETs path of the API into v, accepting the statuses of want, and
// returns the status.
func (c *Client) getJSON(ctx context.Context, path string, v any, want ...int) (int, error) {
	resp, err := c.get(ctx, c.base+path, c.host+stripQuery(path), true, want...)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Close() }() // read in full below
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return 0, fmt.Errorf("GET %s: %d response: %w", c.host+stripQuery(path), resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

func stripQuery(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}

// Cohort is one cohort of a project's list.
type Cohort struct {
	ID           string
	Name         string
	Size         int64
	LastComputed time.Time // zero when never computed
	Archived     bool
}

// ListCohorts lists the project's cohorts, archived ones included.
func (c *Client) ListCohorts(ctx context.Context) ([]Cohort, error) {
	var body struct {
		Cohorts []struct {
			ID           string `json:"id"`
			Name         string `json:"name"`
			Size         int64  `json:"size"`
			LastComputed int64  `json:"lastComputed"` // milliseconds since the epoch
			Archived     bool   `json:"archived"`
		} `json:"cohorts"`
	}
	if _, err := c.getJSON(ctx, "/api/3/cohorts", &body, http.StatusOK); err != nil {
		return nil, fmt.Errorf("list amplitude cohorts: %w", err)
	}
	out := make([]Cohort, 0, len(body.Cohorts))
	for _, r := range body.Cohorts {
		co := Cohort{ID: r.ID, Name: r.Name, Size: r.Size, Archived: r.Archived}
		if r.LastComputed > 0 {
			co.LastComputed = time.UnixMilli(r.LastComputed).UTC()
		}
		out = append(out, co)
	}
	return out, nil
}
