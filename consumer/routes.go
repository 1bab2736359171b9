package consumer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// ReasonUnknownEnvironment is the dead-letter reason of an event whose
// environment has no route (NewWithRoutes): it is refused rather than
// written under a default prefix, where it could change another
// environment's segment. Part of the dead-letter topic's contract.
const ReasonUnknownEnvironment = "unknown_environment"

// ReasonDestinationUnavailable is the dead-letter reason of an event set
// aside because its destination kept failing (RouteTableOptions.SetAside):
// the other destinations go on, and the owner repairs the set-aside
// destination's segments later.
const ReasonDestinationUnavailable = "destination_unavailable"

// Route is where the events of one environment are written: a destination's
// Redis (standalone or Cluster) and key prefix.
type Route struct {
	// Name names the destination in logs and errors. Default: the
	// environment.
	Name string
	// Client writes the destination. Routes may share a client (one Redis,
	// several prefixes): their writes then share one pipeline per batch.
	// Required; the caller owns it (see RouteTableOptions.Dropped).
	Client redis.UniversalClient
	// Prefix is the key prefix. Required.
	Prefix string
}

// RouteTableOptions configures a RouteTable.
type RouteTableOptions struct {
	// Dropped is called once for every client the table no longer uses:
	// no route of the current table names it and no batch or
	// synchronized_on write holding an older table still does. It is the
	// moment to close the client. A client is dropped once; the caller
	// must not put it in a later table (make a new client instead). Called
	// without the table's lock held, from the goroutine of Set or Close,
	// or of the consumer's apply loop or freshness tracker when they let
	// go of the last table naming it: it must not block for long. Default
	// none: the caller tracks its clients itself.
	Dropped func(redis.UniversalClient)
	// Refresh, when set, is called by the consumer before it dead-letters
	// events whose environment has no route (once per batch): it brings
	// the table up to date with its source (Set) if that changed. The
	// writer of a new destination and its first events does not wait for
	// every consumer's poller, so an unknown environment is first taken
	// for a table behind its source. An error from it is retried like a
	// Redis error of the batch: dead-lettering then could lose the events
	// of a destination just added. Default none: unknown environments are
	// dead-lettered at once.
	Refresh func(ctx context.Context) error
	// SetAsideAfter, when > 0 with SetAside, lets the consumer go on
	// without a destination whose writes have failed for this long (or at
	// once on an error retrying cannot fix, such as a refused password):
	// its events are dead-lettered as ReasonDestinationUnavailable instead
	// of holding up every destination's events on the same partitions.
	// Until a PING answers again (tried every SetAsideAfter), its later
	// events are set aside at once. Default 0: a failing destination is
	// retried (Config.RetryTimeout), then stops the consumer.
	SetAsideAfter time.Duration
	// SetAside records that events of the destinations names were set
	// aside, before they are dead-lettered and their offsets committed: the
	// owner's repair depends on that record (serve makes the next run of
	// each segment there read the segment back from Redis). An error keeps
	// the batch retrying.
	SetAside func(ctx context.Context, names []string) error
}

// RouteTable maps each event's environment to its Route. A poller (the
// destinations store's) replaces it whole with Set while the consumer
// runs: a batch resolves its events against the table current when its
// write attempt starts, and later batches see the new table, without a
// restart.
//
// Client lifetimes: each write attempt (and each synchronized_on write)
// holds the table it resolved against until its Redis calls have
// returned, so a client removed by Set stays usable until then; the table
// counts, per client, the tables that still name it (the current one and
// every replaced one still held) and passes it to RouteTableOptions.Dropped
// when that count reaches zero. The caller closes it there; closing a
// client earlier fails the batch using it (a fatal Redis error: the
// consumer stops).
type RouteTable struct {
	dropped       func(redis.UniversalClient)
	refresh       func(ctx context.Context) error
	setAsideAfter time.Duration
	setAside      func(ctx context.Context, names []string) error

	mu     sync.Mutex
	cur    *routeSet
	uses   map[redis.UniversalClient]int // live tables naming each client
	closed bool
}

// routeSet is one version of the table. It is immutable but for refs and
// retired, which the table's lock guards.
type routeSet struct {
	routes map[string]Route
	// fallback, when set, takes every environment without a route: New's
	// single Redis with Config.RedisPrefix. A RouteTable never has one.
	fallback *Route
	// targets are the distinct clients with the prefixes and route names
	// they serve, sorted by first route name: for preflight and
	// synchronized_on.
	targets []target

	refs    int  // holders: write attempts and synchronized_on writes in progress
	retired bool // replaced by Set or Close
}

// target is one client and what the table writes through it.
type target struct {
	client   redis.UniversalClient
	names    []string // route names, sorted
	prefixes []string // distinct, sorted
}

// NewRouteTable returns a table with routes, keyed by environment (see
// Validate in Set). An empty table is valid: every event is then
// dead-lettered as ReasonUnknownEnvironment.
func NewRouteTable(routes map[string]Route, opts RouteTableOptions) (*RouteTable, error) {
	s, err := newRouteSet(routes, nil)
	if err != nil {
		return nil, err
	}
	if opts.SetAsideAfter < 0 || (opts.SetAsideAfter > 0) != (opts.SetAside != nil) {
		return nil, errors.New("consumer: RouteTableOptions: SetAsideAfter > 0 and SetAside go together")
	}
	t := &RouteTable{dropped: opts.Dropped, refresh: opts.Refresh, setAsideAfter: opts.SetAsideAfter, setAside: opts.SetAside,
		uses: map[redis.UniversalClient]int{}}
	t.cur = s
	t.adopt(s)
	return t, nil
}

// staticRoutes is New's single-Redis routing as a table that is never
// replaced: env prefixes, then prefix for every other environment.
func staticRoutes(rdb redis.UniversalClient, prefix string, envPrefixes map[string]string) *RouteTable {
	routes := make(map[string]Route, len(envPrefixes))
	for env, p := range envPrefixes {
		routes[env] = Route{Name: env, Client: rdb, Prefix: p}
	}
	// Config.Validate has checked every name and prefix: newRouteSet cannot fail.
	s, err := newRouteSet(routes, &Route{Name: "default", Client: rdb, Prefix: prefix})
	if err != nil {
		panic(fmt.Sprintf("consumer: routes of a valid Config: %v", err))
	}
	t := &RouteTable{uses: map[redis.UniversalClient]int{}, cur: s}
	t.adopt(s)
	return t
}

// newRouteSet validates routes and indexes them.
func newRouteSet(routes map[string]Route, fallback *Route) (*routeSet, error) {
	var errs []error
	envs := make([]string, 0, len(routes))
	for env := range routes {
		envs = append(envs, env)
	}
	slices.Sort(envs) // the same errors in the same order on every run
	s := &routeSet{routes: make(map[string]Route, len(routes)), fallback: fallback}
	for _, env := range envs {
		r := routes[env]
		if r.Name == "" {
			r.Name = env
		}
		if want := checkName(env); want != "" {
			errs = append(errs, setting.Invalid("route", env, "an environment name that is %s", want))
		}
		if want := checkName(r.Prefix); want != "" {
			errs = append(errs, setting.Invalid("route", env+"="+r.Prefix, "a prefix that is %s", want))
		}
		switch {
		case r.Client == nil:
			errs = append(errs, setting.Invalid("route", env, "a Redis client (destination %q has none)", r.Name))
		case !reflect.TypeOf(r.Client).Comparable():
			// Clients are told apart by identity (==, map keys): go-redis's
			// are pointers.
			errs = append(errs, setting.Invalid("route", env, "a comparable Redis client such as *redis.Client (got %T)", r.Client))
		}
		s.routes[env] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	all := make([]Route, 0, len(routes)+1)
	for _, env := range envs {
		all = append(all, s.routes[env])
	}
	if fallback != nil {
		all = append(all, *fallback)
	}
	slices.SortStableFunc(all, func(a, b Route) int { return strings.Compare(a.Name, b.Name) })
	byClient := map[redis.UniversalClient]int{}
	for _, r := range all {
		i, ok := byClient[r.Client]
		if !ok {
			i = len(s.targets)
			byClient[r.Client] = i
			s.targets = append(s.targets, target{client: r.Client})
		}
		tg := &s.targets[i]
		if !slices.Contains(tg.names, r.Name) {
			tg.names = append(tg.names, r.Name)
		}
		if !slices.Contains(tg.prefixes, r.Prefix) {
			tg.prefixes = append(tg.prefixes, r.Prefix)
		}
	}
	for i := range s.targets {
		slices.Sort(s.targets[i].names)
		slices.Sort(s.targets[i].prefixes)
	}
	return s, nil
}

// lookup returns the route of env.
func (s *routeSet) lookup(env string) (Route, bool) {
	if r, ok := s.routes[env]; ok {
		return r, true
	}
	if s.fallback != nil {
		return *s.fallback, true
	}
	return Route{}, false
}

// Route returns the current route of env, for callers that only want to
// know (the consumer resolves through its own hold on the table).
func (t *RouteTable) Route(env string) (Route, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.lookup(env)
}

// ErrRouteTableClosed is returned by Set after Close.
var ErrRouteTableClosed = errors.New("route table closed")

// Set replaces the whole table with routes (keyed by environment; each
// route needs a client and a valid prefix, and the environment and prefix
// must be non-empty UTF-8 without control characters or surrounding
// blanks). Invalid routes leave the table as it was. Write attempts
// already started finish on the table they began with; the clients only
// the old table named go to RouteTableOptions.Dropped once the last of
// them is done, which may be during this call.
func (t *RouteTable) Set(routes map[string]Route) error {
	s, err := newRouteSet(routes, nil)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrRouteTableClosed
	}
	t.adopt(s)
	old := t.cur
	t.cur = s
	drop := t.retire(old)
	t.mu.Unlock()
	t.drop(drop)
	return nil
}

// Close retires the table: its clients are dropped once no batch uses them
// any longer (at once when the consumer has stopped). Later calls of Set
// fail; the consumer must not be run on a closed table (its events would
// all be dead-lettered). Idempotent.
func (t *RouteTable) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	old := t.cur
	t.cur = &routeSet{routes: map[string]Route{}}
	drop := t.retire(old)
	t.mu.Unlock()
	t.drop(drop)
}

// refreshed calls the Refresh option and tells whether the table is now
// another than s; false without a Refresh option.
func (t *RouteTable) refreshed(ctx context.Context, s *routeSet) (bool, error) {
	if t.refresh == nil {
		return false, nil
	}
	if err := t.refresh(ctx); err != nil {
		return false, fmt.Errorf("refresh the routes: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur != s, nil
}

// acquire returns the current table, held until release: its clients stay
// out of Dropped until then.
func (t *RouteTable) acquire() *routeSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur.refs++
	return t.cur
}

// release lets go of a table from acquire.
func (t *RouteTable) release(s *routeSet) {
	t.mu.Lock()
	s.refs--
	var drop []redis.UniversalClient
	if s.retired && s.refs == 0 {
		drop = t.forget(s)
	}
	t.mu.Unlock()
	t.drop(drop)
}

// adopt counts s's clients; the lock is held (or t is not yet shared).
func (t *RouteTable) adopt(s *routeSet) {
	for _, tg := range s.targets {
		t.uses[tg.client]++
	}
}

// retire marks s replaced and returns the clients to drop if nothing holds
// it; the lock is held.
func (t *RouteTable) retire(s *routeSet) []redis.UniversalClient {
	s.retired = true
	if s.refs > 0 {
		return nil
	}
	return t.forget(s)
}

// forget uncounts a retired, unheld table's clients and returns those no
// live table names any longer; the lock is held.
func (t *RouteTable) forget(s *routeSet) []redis.UniversalClient {
	var drop []redis.UniversalClient
	for _, tg := range s.targets {
		t.uses[tg.client]--
		if t.uses[tg.client] == 0 {
			delete(t.uses, tg.client)
			drop = append(drop, tg.client)
		}
	}
	return drop
}

func (t *RouteTable) drop(clients []redis.UniversalClient) {
	if t.dropped == nil {
		return
	}
	for _, c := range clients {
		t.dropped(c)
	}
}

// static reports whether t is New's single-Redis routing.
func (t *RouteTable) static() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.fallback != nil
}

// describe lists the current destinations for the logs, as
// "name[,name] -> prefix[,prefix]" per client.
func (t *RouteTable) describe() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, len(t.cur.targets))
	for i, tg := range t.cur.targets {
		out[i] = strings.Join(tg.names, ",") + " -> " + strings.Join(tg.prefixes, ",")
	}
	return out
}

// pingAll pings every client of s concurrently. The error names each
// destination that failed; it is permanent if one failed for good (a
// wrong password, say: see segmentstore.Classify).
func pingAll(ctx context.Context, s *routeSet) error {
	errs := make([]error, len(s.targets))
	var fatal atomic.Bool
	var wg sync.WaitGroup
	for i, tg := range s.targets {
		wg.Go(func() {
			err := tg.client.Ping(ctx).Err()
			if err == nil {
				return
			}
			if segmentstore.Classify(err) == segmentstore.ClassFatal {
				fatal.Store(true)
			}
			errs[i] = s.named(tg.names, atServer(tg.client, err))
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err != nil && fatal.Load() {
		return retry.Permanent(err)
	}
	return err
}

// atServer names client's server (and user) in err when err does not:
// go-redis names the address when it cannot connect, not when the server
// refuses the login or a command (WRONGPASS, NOPERM). Never the password.
func atServer(client redis.UniversalClient, err error) error {
	var addr, user string
	switch c := client.(type) {
	case *redis.Client:
		addr, user = c.Options().Addr, c.Options().Username
	case *redis.ClusterClient:
		addr, user = strings.Join(c.Options().Addrs, ","), c.Options().Username
	}
	if addr == "" || errors.Is(err, redis.ErrClosed) || strings.Contains(err.Error(), addr) {
		return err // no server, or named already
	}
	if user != "" {
		return fmt.Errorf("redis %s (user %s): %w", addr, user, err)
	}
	return fmt.Errorf("redis %s: %w", addr, err)
}

// named wraps err with the destinations it concerns; New's single Redis
// has no destinations to name, and keeps its errors as they were.
func (s *routeSet) named(names []string, err error) error {
	if s.fallback != nil {
		return err
	}
	return fmt.Errorf("destination %s: %w", strings.Join(names, ","), err)
}
