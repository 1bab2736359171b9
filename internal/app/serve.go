package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/api"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/console"
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/runwatch"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/metrics"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/receiver"
	"github.com/cohortsync/cohortsync/producer/schedule"
)

// Parts of serve.
const (
	PartScheduler = "scheduler"
	PartConsumer  = "consumer"
	PartReceiver  = "receiver"
)

// Parts lists every part serve can run, in the order they start.
var Parts = []string{PartScheduler, PartConsumer, PartReceiver}

// DefaultParts are the parts serve runs unless told: the receiver, which
// listens for partners, is asked for.
var DefaultParts = []string{PartScheduler, PartConsumer}

// Defaults of ServeConfig.
const (
	DefaultCatalogPoll   = 5 * time.Second
	DefaultSetAsideAfter = 30 * time.Second
)

// ServeConfig is what cohortsync serve runs.
type ServeConfig struct {
	// Parts to run, a subset of Parts. Default DefaultParts.
	Parts []string
	// Runs configures the scheduler's mapping runs.
	Runs mappingrun.Config
	// Schedule configures the scheduler; its Prefix and Timeout are the
	// catalog store's.
	Schedule schedule.Config
	// Consumer configures the consumer; its routes come from the
	// destinations in the catalog store.
	Consumer consumer.Config
	// SetAsideAfter is how long the consumer retries a destination that
	// keeps failing before it sets its events aside (dead-lettered, and
	// repaired by the next run of each segment there) so that the other
	// destinations go on; 0 turns that off (a failing destination stops
	// the consumer after Consumer.RetryTimeout). Default
	// DefaultSetAsideAfter; less than Consumer.RetryTimeout.
	SetAsideAfter time.Duration
	// CatalogPoll is how often the consumer checks the catalog's version
	// for changed destinations. Default DefaultCatalogPoll.
	CatalogPoll time.Duration
	// HTTPAddr serves /metrics, /healthz and /readyz; "" for none.
	HTTPAddr string
	// AdminAPI serves the admin API (control/api) under /api/v1 on
	// HTTPAddr when there is one, whatever the parts: every replica has
	// the control Redis it needs. Its tokens are made with cohortsync
	// tokens create.
	AdminAPI bool
	// API tunes the admin API.
	API api.Config
	// ReceiverAddr is where the receiver part listens for partner pushes
	// (host:port); required with that part.
	ReceiverAddr string
	// Receiver tunes the receiver part.
	Receiver receiver.Config
	// RunsRetention is how long runs are kept in the history. Default
	// runstore.DefaultRetention.
	RunsRetention time.Duration
	// ApplyCheck is how often the scheduler and receiver parts check whether published
	// runs are applied (their consumer group, Consumer.GroupID, committed
	// past them). Default runwatch.DefaultInterval.
	ApplyCheck time.Duration
	// Notify tells whom each mapping names how the scheduler's runs
	// ended; see notify.Config.
	Notify notify.Config
}

// Validate reports every invalid setting as a *setting.Error.
func (c ServeConfig) Validate() error {
	var errs []error
	for _, p := range c.Parts {
		if !slices.Contains(Parts, p) {
			errs = append(errs, setting.Invalid("parts", strings.Join(c.Parts, ","), "a comma-separated subset of %s", strings.Join(Parts, ", ")))
			break
		}
	}
	if c.CatalogPoll < 0 {
		errs = append(errs, setting.Invalid("catalog-poll", c.CatalogPoll, "a positive duration"))
	}
	if c.runs(PartScheduler) {
		errs = append(errs, c.Runs.Validate(), c.Schedule.Validate())
	}
	if c.runs(PartScheduler) || c.runs(PartReceiver) {
		errs = append(errs, c.Notify.Validate(), runwatch.Config{GroupID: cmp.Or(c.Consumer.GroupID, consumer.DefaultGroupID), Interval: c.ApplyCheck}.Validate())
	}
	errs = append(errs, runstore.Config{Retention: c.RunsRetention}.Validate())
	if c.runs(PartConsumer) {
		errs = append(errs, c.Consumer.Validate())
		retryTimeout := orDefault(c.Consumer.RetryTimeout, consumer.DefaultRetryTimeout)
		if c.SetAsideAfter < 0 || c.SetAsideAfter >= retryTimeout {
			errs = append(errs, setting.Invalid("set-aside-after", c.SetAsideAfter, "a duration below --retry-timeout (%v), 0 for never", retryTimeout))
		}
	}
	if c.runs(PartReceiver) {
		errs = append(errs, c.Receiver.Validate())
		if c.ReceiverAddr == "" {
			errs = append(errs, setting.Invalid("receiver-addr", "", "a host:port to listen on, with the receiver part"))
		} else if httpserver.ValidateAddr(c.ReceiverAddr) != nil {
			errs = append(errs, setting.Invalid("receiver-addr", c.ReceiverAddr, "host:port (host may be empty)"))
		}
	}
	if c.AdminAPI && c.HTTPAddr != "" {
		errs = append(errs, c.API.Validate())
		if !c.runs(PartScheduler) && !c.runs(PartReceiver) { // else checked above
			errs = append(errs, c.Notify.Validate())
		}
	}
	return errors.Join(append(errs, httpserver.ValidateAddr(c.HTTPAddr))...)
}

func (c ServeConfig) runs(part string) bool {
	if len(c.Parts) == 0 {
		return slices.Contains(DefaultParts, part)
	}
	return slices.Contains(c.Parts, part)
}

// Serve runs the parts of cfg in one process until ctx is cancelled (nil)
// or one of them fails, which stops the others: the scheduler runs the
// stored mappings on their schedules, the consumer applies the topic to
// the stored destinations (following changes of the catalog without a
// restart). Every replica pointing at the same control Redis (rc, sc) and
// Kafka shares the work: each scheduled run happens once.
func Serve(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg ServeConfig, stderr io.Writer) error {
	r, err := startRuns(ctx, p, env, kc, rc, sc, cfg.Runs, cfg.RunsRetention, stderr)
	if err != nil {
		return err
	}
	return errors.Join(serve(ctx, r, env, sc, cfg), r.down.run())
}

func serve(ctx context.Context, r *runs, env func(string) (string, bool), sc catalogstore.Config, cfg ServeConfig) error {
	g, gctx := errgroup.WithContext(ctx)
	var srv *httpserver.Server
	if cfg.HTTPAddr != "" {
		srv = httpserver.New(cfg.HTTPAddr, r.log)
	}
	var sets []metrics.Set // served together on /metrics
	var n *notify.Notifier // of the parts that run mappings' runs: the scheduler and receiver
	var sched *schedule.Scheduler
	if cfg.runs(PartScheduler) || cfg.runs(PartReceiver) {
		nm := metrics.NewNotifications()
		ncfg := cfg.Notify
		nm.Attach(&ncfg)
		sets = append(sets, nm)
		var err error
		if n, err = startNotifier(ctx, r, env, ncfg); err != nil {
			return err
		}
	}
	if cfg.runs(PartScheduler) {
		scfg := cfg.Schedule
		scfg.Prefix, scfg.Timeout = sc.Prefix, sc.Timeout
		sm := metrics.NewScheduler(scfg.Clock)
		sm.Attach(&scfg)
		sets = append(sets, sm)
		var err error
		sched, err = schedule.New(scfg, r.control, r.store, runAdapter{runner: r.runner, history: r.history, pub: r.pub, log: r.log, notifier: n}, r.log)
		if err != nil {
			return err
		}
		if srv != nil {
			// Readiness, not liveness: a restart does not bring the control
			// Redis back, and would restart every replica at once.
			srv.Ready("catalog", func(ctx context.Context) error { _, err := r.store.Version(ctx); return err })
		}
		g.Go(func() error { return sched.Run(gctx) })
	}
	if cfg.runs(PartScheduler) || cfg.runs(PartReceiver) {
		// The parts that publish runs also tell when they are applied.
		w, err := runwatch.New(runwatch.Config{GroupID: cmp.Or(cfg.Consumer.GroupID, consumer.DefaultGroupID), Interval: cfg.ApplyCheck,
			OnSettled: notifySettled(n, r.store, r.log)}, r.history, r.pub.kc, r.pub.gaps, r.log)
		if err != nil {
			return err
		}
		g.Go(func() error { return w.Run(gctx) })
	}
	apiOn := srv != nil && cfg.AdminAPI
	if cfg.runs(PartConsumer) && (cfg.runs(PartScheduler) || cfg.runs(PartReceiver) || apiOn) {
		// The scheduler's runs (or the receiver, or the API's) would
		// create the topics at their first publish; the consumer needs
		// them to start.
		if err := publish.EnsureTopics(ctx, cfg.Runs.Producer.Config, r.kf); err != nil {
			return err
		}
	}
	if cfg.runs(PartConsumer) {
		gaps, err := segmentlease.NewGaps(r.control, segmentlease.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		rt := &routeFollower{store: r.store, env: env, log: r.log, poll: orDefault(cfg.CatalogPoll, DefaultCatalogPoll),
			setAsideAfter: cfg.SetAsideAfter, gaps: gaps}
		table, err := rt.start(ctx)
		if err != nil {
			return err
		}
		defer table.Close() // after the consumer has returned (g.Wait below)
		var c *consumer.Consumer
		m := metrics.NewConsumer(func() consumer.Stats { return c.Stats() }) // scraped only once c is set
		ccfg := cfg.Consumer
		ccfg.Logger, ccfg.TracerProvider, ccfg.Propagator, ccfg.Observer = r.log, r.tel.TracerProvider, r.tel.Propagator, m
		if c, err = consumer.NewWithRoutes(ccfg, table, r.kf); err != nil {
			return err
		}
		sets = append(sets, m)
		if srv != nil {
			// Liveness fails only when the consumer is stuck; Kafka or a
			// destination's Redis being unreachable makes it unready.
			srv.Check("consumer", func(context.Context) error { return c.Alive() })
			srv.Ready("consumer", func(context.Context) error { return errors.Join(c.Health(), c.Ready()) })
		}
		g.Go(func() error { return c.Run(gctx) })
		g.Go(func() error { return rt.follow(gctx) })
	}
	if cfg.runs(PartReceiver) {
		run, m, err := startReceiver(ctx, r, sc, cfg, n)
		if err != nil {
			return err
		}
		sets = append(sets, m)
		g.Go(func() error { return run(gctx) })
	}
	if apiOn {
		if n == nil { // the API's sync now runs mappings, who may name whom to tell
			var err error
			if n, err = startNotifier(ctx, r, env, cfg.Notify); err != nil {
				return err
			}
		}
		closeAPI, err := mountAPI(ctx, srv, r, env, sc, cfg, sched, n)
		if err != nil {
			return err
		}
		// After the server stopped (g.Wait): then no request starts a run.
		defer func() { _ = closeAPI() }()
		console.Register(srv) // the web console at /console/, calling the admin API from the browser
	}
	if srv != nil {
		srv.Handle("GET /metrics", metrics.Handler(sets...))
		g.Go(func() error { return srv.Run(gctx) })
	}
	return g.Wait()
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// routeFollower keeps the consumer's routes equal to the stored
// destinations: it polls the catalog's version and rebuilds the table
// when it moves. A catalog it cannot read leaves the last good table in
// place (an empty table would dead-letter every event).
type routeFollower struct {
	store *catalogstore.Store
	env   func(string) (string, bool)
	log   *slog.Logger
	poll  time.Duration

	setAsideAfter time.Duration
	gaps          *segmentlease.Gaps

	mu      sync.Mutex
	table   *consumer.RouteTable
	version uint64 // of the catalog the table was read from
}

// start reads the catalog once and returns the first table; a catalog
// that cannot be read or a destination that cannot be opened fails the
// start, so a misconfigured replica does not start consuming.
func (f *routeFollower) start(ctx context.Context) (*consumer.RouteTable, error) {
	v, routes, err := f.read(ctx)
	if err != nil {
		return nil, err
	}
	opts := consumer.RouteTableOptions{Dropped: f.dropped, Refresh: f.refresh}
	if f.setAsideAfter > 0 {
		opts.SetAsideAfter, opts.SetAside = f.setAsideAfter, f.setAside
	}
	t, err := consumer.NewRouteTable(routes, opts)
	if err != nil {
		closeRoutes(routes)
		return nil, err
	}
	f.table, f.version = t, v
	return t, nil
}

// setAside records a gap for each destination whose events the consumer
// set aside: the next run of each of its segments reads it back.
func (f *routeFollower) setAside(ctx context.Context, names []string) error {
	for _, n := range names {
		if err := f.gaps.Record(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (f *routeFollower) dropped(c redis.UniversalClient) {
	if err := c.Close(); err != nil {
		f.log.Warn("close a destination's redis", "error", err)
	}
}

// follow polls until ctx ends. Its errors are logged, not returned: the
// consumer goes on with the last table.
func (f *routeFollower) follow(ctx context.Context) error {
	tick := time.NewTicker(f.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := f.refresh(ctx); err != nil {
			f.log.WarnContext(ctx, "follow the catalog's destinations; keeping the current ones", "error", err)
		}
	}
}

// refresh sets the table anew if the catalog's version moved. The poller
// calls it, and the consumer before it dead-letters an environment it has
// no route for (RouteTableOptions.Refresh): both may at once.
func (f *routeFollower) refresh(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.store.Version(ctx)
	if err != nil {
		return err
	}
	if v == f.version {
		return nil
	}
	v, routes, err := f.read(ctx)
	if err != nil {
		return err
	}
	if err := f.table.Set(routes); err != nil {
		closeRoutes(routes)
		return err
	}
	f.version = v
	f.log.InfoContext(ctx, "destinations changed", "version", v, "environments", len(routes))
	return nil
}

// read returns the catalog's version and a route per stored destination,
// with new clients (one per distinct Redis): a table must never get back a
// client it dropped, so clients are not reused across tables.
func (f *routeFollower) read(ctx context.Context) (uint64, map[string]consumer.Route, error) {
	// The version is read first: a change after it makes the next poll
	// read again, never miss it.
	v, err := f.store.Version(ctx)
	if err != nil {
		return 0, nil, err
	}
	ds, err := f.store.Destinations(ctx)
	if err != nil {
		return 0, nil, err
	}
	routes := make(map[string]consumer.Route, len(ds))
	clients := map[string]redis.UniversalClient{}
	for _, d := range ds {
		c, err := f.client(d, clients)
		if err != nil {
			closeRoutes(routes)
			return 0, nil, err
		}
		routes[d.Environment] = consumer.Route{Name: d.Name, Client: c, Prefix: d.Prefix()}
	}
	return v, routes, nil
}

func (f *routeFollower) client(d catalog.Destination, clients map[string]redis.UniversalClient) (redis.UniversalClient, error) {
	cfg, err := d.RedisConfig(f.env, os.ReadFile)
	if err != nil {
		return nil, err
	}
	cfg = withRedisDefaults(cfg)
	key := configKey(cfg)
	if c, ok := clients[key]; ok {
		return c, nil
	}
	c, err := redisx.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	clients[key] = c
	return c, nil
}

// closeRoutes closes the clients of routes no table took.
func closeRoutes(routes map[string]consumer.Route) {
	seen := map[redis.UniversalClient]bool{}
	for _, r := range routes {
		if !seen[r.Client] {
			seen[r.Client] = true
			_ = r.Client.Close() // never used: nothing to lose
		}
	}
}

// configKey identifies a resolved Redis configuration: equal configs
// share a client.
func configKey(cfg redisx.Config) string {
	b, _ := json.Marshal(cfg) // strings, a bool, ints and a duration always marshal
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withRedisDefaults fills what a destination's Redis settings leave to
// the process: pool size and timeout.
func withRedisDefaults(cfg redisx.Config) redisx.Config {
	if cfg.PoolSize == 0 {
		cfg.PoolSize = redisx.DefaultPoolSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = redisx.DefaultTimeout
	}
	return cfg
}
