package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

// Catalog is what the API reads and writes of the catalog
// (catalogstore.Store).
type Catalog interface {
	segments.Catalog
	Get(ctx context.Context, name string) (catalog.Mapping, error)
	AmplitudeProjects(ctx context.Context) ([]catalog.AmplitudeProject, error)
	Apply(ctx context.Context, c *catalog.Catalog) ([]catalogstore.Result, error)
	Delete(ctx context.Context, name string) error
	DeleteDestination(ctx context.Context, name string) error
	SetEnabled(ctx context.Context, name string, enabled bool) (catalogstore.Change, error)
}

// Tokens are the API's own tokens (auth.Store).
type Tokens interface {
	auth.Authenticator
	Create(ctx context.Context, name string, role auth.Role) (auth.Token, string, error)
	List(ctx context.Context) ([]auth.Token, error)
	Revoke(ctx context.Context, id string) error
}

// Runs is the run history (runstore.Store).
type Runs interface {
	Page(ctx context.Context, q runstore.Query) (runstore.Page, error)
	Get(ctx context.Context, id string) ([]runstore.Record, error)
	WriteExclusions(ctx context.Context, id, destination string, out io.Writer) error
}

// Syncer runs a mapping now, outside its schedule, and returns when the
// run ends (schedule.Scheduler's SyncNow, with its errors).
type Syncer interface {
	SyncNow(ctx context.Context, name string) error
}

// Editor adds and removes members of list segments through the event
// path (segments.Editor).
type Editor interface {
	Add(ctx context.Context, t segments.Target, keys []string) (producer.Summary, error)
	Remove(ctx context.Context, t segments.Target, keys []string) (producer.Summary, error)
}

// Deps are what the handlers work with; serve builds them once.
type Deps struct {
	Tokens  Tokens
	Catalog Catalog
	Runs    Runs
	// Connect returns the client of a destination's Redis (cached by its
	// owner): segments, members and exports are read through it.
	Connect segments.Connector
	// Test connects to a destination's Redis afresh, as the consumer
	// would, and returns the error met, nil when connected.
	Test func(ctx context.Context, d catalog.Destination) error
	// Sync runs mappings now; Edit edits list segments.
	Sync Syncer
	Edit Editor
	// Lookup, Status and Erase are the membership lookup, the status
	// report and the erase.
	Lookup Lookup
	Status Status
	Erase  Eraser
	// Log gets each request that failed on the server's side; never a
	// token nor a body. Default slog.Default().
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Config tunes the API. The zero value takes every default.
type Config struct {
	// MaxBodyBytes bounds a request body; more is answered 413. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SyncGrace is how long POST .../sync waits for a run to be refused
	// (busy, paused) before answering 202. Default DefaultSyncGrace.
	SyncGrace time.Duration
}

// Defaults.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultSyncGrace    = 300 * time.Millisecond
	// DefaultLimit and MaxLimit bound a page.
	DefaultLimit = 50
	MaxLimit     = 500
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, setting.Invalid("api-max-body-bytes", c.MaxBodyBytes, "a positive number of bytes"))
	}
	if c.SyncGrace < 0 {
		errs = append(errs, setting.Invalid("api-sync-grace", c.SyncGrace, "a positive duration"))
	}
	return errors.Join(errs...)
}

// API serves the admin API.
type API struct {
	cfg  Config
	deps Deps
	mw   auth.Middleware
	mux  *http.ServeMux

	// The runs POST .../sync started: Close cancels and waits for them.
	mu      sync.Mutex
	closed  bool
	cancels map[*int]context.CancelFunc
	wg      sync.WaitGroup
}

// New returns the API of deps; every dependency is required.
func New(cfg Config, deps Deps) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SyncGrace == 0 {
		cfg.SyncGrace = DefaultSyncGrace
	}
	if deps.Tokens == nil || deps.Catalog == nil || deps.Runs == nil || deps.Connect == nil || deps.Test == nil || deps.Sync == nil || deps.Edit == nil ||
		deps.Lookup == nil || deps.Status == nil || deps.Erase == nil {
		return nil, errors.New("api: every dependency is required")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &API{cfg: cfg, deps: deps, mux: http.NewServeMux(), cancels: map[*int]context.CancelFunc{}}
	a.mw = auth.Middleware{Tokens: deps.Tokens, Deny: a.deny}
	paths := http.NewServeMux() // every route's path, whatever the method
	allow := map[string][]string{}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.pattern(), a.guard(rt))
		if allow[rt.path] == nil {
			paths.Handle(rt.path, http.NotFoundHandler())
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	// Anything else under the prefix is a JSON 405 (a known path) or 404,
	// not the mux's text.
	a.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allow[pattern], ", "))
			a.fail(w, r, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: fmt.Sprintf("%s %s: want %s", r.Method, r.URL.Path, strings.Join(allow[pattern], " or "))})
			return
		}
		a.fail(w, r, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such API path: " + r.URL.Path})
	})
	return a, nil
}

// Prefix is where the API is served.
const Prefix = "/api/v1"

// Handler serves every route of the API: mount it at Prefix+"/".
func (a *API) Handler() http.Handler { return a.mux }

// Close cancels the runs the API started and waits for them; it is
// idempotent.
func (a *API) Close() error {
	a.mu.Lock()
	a.closed = true
	for _, cancel := range a.cancels {
		cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}

// background runs f, owned by the API (Close waits for it), on a context
// that outlives the request; false if the API is closed.
func (a *API) background(r *http.Request, f func(ctx context.Context)) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	key := new(int)
	a.cancels[key] = cancel
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.cancels, key)
			a.mu.Unlock()
			cancel()
		}()
		f(ctx)
	}()
	return true
}
