package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/metrics"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// teardown runs cleanups in reverse order of registration: what was built
// last (and may use what came before) is closed first.
type teardown []func() error

func (t *teardown) push(f func() error) { *t = append(*t, f) }

func (t *teardown) run() error {
	var errs []error
	for i := len(*t) - 1; i >= 0; i-- {
		errs = append(errs, (*t)[i]())
	}
	*t = nil
	return errors.Join(errs...)
}

// serviceName is the telemetry resource's service.name.
const serviceName = "cohortsync"

// telemetryFromEnv builds the process's telemetry providers from the OTEL_*
// variables env reads, and registers their shutdown (a flush of the spans).
func telemetryFromEnv(ctx context.Context, env func(string) (string, bool), down *teardown) (*telemetry.Providers, error) {
	tel, err := telemetry.FromEnv(ctx, env, serviceName)
	if err != nil {
		return nil, err
	}
	down.push(func() error { return tel.Shutdown(context.WithoutCancel(ctx)) })
	return &tel, nil
}

// Sync runs one sync of the cohort CSV at path, read with opts, as req's
// Input, and writes its summary to stdout; logs go to stderr. Settings
// were validated by the caller (req without its Input); a CSV that cannot
// be opened is a *setting.Error of "csv". env reads the OTEL_* variables
// (see telemetry.FromEnv).
func Sync(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, cfg producer.Config, req producer.SyncRequest, path string, opts csvfile.Options, stdout, stderr io.Writer) (err error) {
	log, err := p.Logger(stderr)
	if err != nil {
		return err
	}
	var down teardown
	defer func() { err = errors.Join(err, down.run()) }()
	cfg.Logger = log
	// The run's span context goes into every event (W3C trace context by
	// default), so each consumer batch's span links to the sync.
	tel, err := telemetryFromEnv(ctx, env, &down)
	if err != nil {
		return err
	}
	cfg.TracerProvider, cfg.Propagator = tel.TracerProvider, tel.Propagator
	kf, err := openKafka(kc, &down)
	if err != nil {
		return err
	}
	src, err := csvfile.Open(path, opts)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return setting.Invalid("csv", path, "a readable cohort CSV file (%v)", err)
	}
	defer func() { _ = src.Close() }() // read-only: a close error loses nothing
	req.Input = src
	sum, err := producer.Sync(ctx, cfg, kf, req)
	if err != nil {
		// The partial summary is not printed: its counts are what the diff
		// enumerated, not what Kafka acknowledged. The next sync of the
		// segment republishes whatever was pending.
		return err
	}
	if _, err := sum.WriteTo(stdout); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// Consume runs a consumer group member writing to the Redis of rc until
// ctx is cancelled (nil) or it fails, and, when httpAddr is set, the
// process's HTTP server there (/metrics, /healthz, /readyz); either failing
// stops both. Settings were validated by the caller. env reads the OTEL_*
// variables (see telemetry.FromEnv).
func Consume(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config, httpAddr string, cfg consumer.Config, stderr io.Writer) (err error) {
	log, err := p.Logger(stderr)
	if err != nil {
		return err
	}
	var down teardown
	defer func() { err = errors.Join(err, down.run()) }()
	cfg.Logger = log
	// Each batch's span links to the sync runs it applies, through the
	// trace context the producer writes into message headers.
	tel, err := telemetryFromEnv(ctx, env, &down)
	if err != nil {
		return err
	}
	cfg.TracerProvider, cfg.Propagator = tel.TracerProvider, tel.Propagator
	kf, err := openKafka(kc, &down)
	if err != nil {
		return err
	}
	// go-redis logs every failed dial itself; the consumer already logs the
	// error it acts on, so keep go-redis's detail at debug level.
	redis.SetLogger(redisLogger{log})
	rdb, err := redisx.Open(rc)
	if err != nil {
		return err
	}
	down.push(func() error {
		if err := rdb.Close(); err != nil {
			return fmt.Errorf("close redis: %w", err)
		}
		return nil
	})
	var c *consumer.Consumer
	m := metrics.NewConsumer(func() consumer.Stats { return c.Stats() }) // scraped only once c is set
	cfg.Observer = m
	if c, err = consumer.New(cfg, rdb, kf); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if httpAddr != "" {
		srv := httpserver.New(httpAddr, log)
		srv.Handle("GET /metrics", m.Handler())
		srv.Check("consumer", func(context.Context) error { return c.Health() })
		srv.Ready("consumer", func(context.Context) error { return c.Ready() })
		g.Go(func() error { return srv.Run(gctx) })
	}
	g.Go(func() error { return c.Run(gctx) })
	return g.Wait()
}

// openKafka builds the process's one Kafka client factory, whose clients
// every part shares, and registers its close: after the parts', which were
// built later.
func openKafka(kc kafkax.Config, down *teardown) (*kafkax.Factory, error) {
	kf, err := kafkax.New(kc)
	if err != nil {
		return nil, err
	}
	down.push(kf.Close)
	return kf, nil
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
