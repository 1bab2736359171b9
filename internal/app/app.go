package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/metrics"
	"github.com/cohortsync/cohortsync/internal/progress"
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

// base is what every command builds first, once per process: the logger,
// the telemetry providers and the Kafka client factory. down tears them
// (and whatever the command adds) down in reverse order.
type base struct {
	log  *slog.Logger
	tel  telemetry.Providers
	kf   *kafkax.Factory
	down teardown
}

// start builds the base of a command: the logger writes to stderr, the
// telemetry comes from the OTEL_* variables env reads (see
// telemetry.FromEnv), the Kafka clients from kc. On error, what was built
// is torn down.
func start(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, stderr io.Writer) (_ *base, err error) {
	log, err := p.Logger(stderr)
	if err != nil {
		return nil, err
	}
	b := &base{log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, b.down.run())
		}
	}()
	if b.tel, err = telemetry.FromEnv(ctx, env, serviceName); err != nil {
		return nil, err
	}
	b.down.push(func() error { return b.tel.Shutdown(context.WithoutCancel(ctx)) })
	if b.kf, err = kafkax.New(kc); err != nil {
		return nil, err
	}
	b.down.push(b.kf.Close)
	return b, nil
}

// Sync runs one sync of the cohort CSV at path, read with opts, as req's
// Input, and writes its summary to stdout; logs go to stderr. Settings
// were validated by the caller (req without its Input); a CSV that cannot
// be opened is a *setting.Error of "csv". env reads the OTEL_* variables
// (see telemetry.FromEnv).
func Sync(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, cfg producer.Config, req producer.SyncRequest, path string, opts csvfile.Options, stdout, stderr io.Writer) (err error) {
	p.applyMemoryLimit(env)
	rep := progress.New(stderr, progress.Config{Mode: p.Progress})
	b, err := start(ctx, p, env, kc, rep.Writer())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.down.run()) }()
	rep.Start(ctx, b.log)
	defer rep.Stop()
	// The run's span context goes into every event (W3C trace context by
	// default), so each consumer batch's span links to the sync.
	cfg.Logger, cfg.TracerProvider, cfg.Propagator = b.log, b.tel.TracerProvider, b.tel.Propagator
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
	req.Meter = new(producer.Meter)
	rep.Watch("segment", req.Segment, req.Meter)
	sum, err := producer.Sync(ctx, cfg, b.kf, req)
	rep.Stop() // the bar's line ends before the summary or the error
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
	b, err := start(ctx, p, env, kc, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.down.run()) }()
	// Each batch's span links to the sync runs it applies, through the
	// trace context the producer writes into message headers.
	cfg.Logger, cfg.TracerProvider, cfg.Propagator = b.log, b.tel.TracerProvider, b.tel.Propagator
	// go-redis logs every failed dial itself; the consumer already logs the
	// error it acts on, so keep go-redis's detail at debug level.
	setRedisLogger(redisLogger{b.log})
	rdb, err := redisx.Open(rc)
	if err != nil {
		return err
	}
	b.down.push(func() error {
		if err := rdb.Close(); err != nil {
			return fmt.Errorf("close redis: %w", err)
		}
		return nil
	})
	var c *consumer.Consumer
	m := metrics.NewConsumer(func() consumer.Stats { return c.Stats() }) // scraped only once c is set
	cfg.Observer = m
	if c, err = consumer.New(cfg, rdb, b.kf); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if httpAddr != "" {
		srv := httpserver.New(httpAddr, b.log)
		srv.Handle("GET /metrics", m.Handler())
		// As serve's: liveness fails only when the consumer is stuck; Kafka
		// or Redis being unreachable makes it unready, not restarted.
		srv.Check("consumer", func(context.Context) error { return c.Alive() })
		srv.Ready("consumer", func(context.Context) error { return errors.Join(c.Health(), c.Ready()) })
		g.Go(func() error { return srv.Run(gctx) })
	}
	g.Go(func() error { return c.Run(gctx) })
	return g.Wait()
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
