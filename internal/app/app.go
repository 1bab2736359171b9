package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/redisconn"
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

// Sync runs one sync of the cohort CSV at path, read with opts, and writes
// its summary to stdout; logs go to stderr. Settings were validated by the
// caller; a CSV that cannot be opened is a *setting.Error of "csv".
func Sync(ctx context.Context, p Process, cfg producer.Config, req producer.SyncRequest, path string, opts csvfile.Options, stdout, stderr io.Writer) (err error) {
	log, err := p.Logger(stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	// Events carry W3C trace context, so a tracer provider installed here
	// links each consumer batch to the sync that produced it.
	otel.SetTextMapPropagator(propagation.TraceContext{})
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
	sum, err := producer.Sync(ctx, cfg, req)
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
// ctx is cancelled (nil) or it fails. Settings were validated by the
// caller.
func Consume(ctx context.Context, p Process, rc redisconn.Config, cfg consumer.Config, stderr io.Writer) (err error) {
	log, err := p.Logger(stderr)
	if err != nil {
		return err
	}
	var down teardown
	defer func() { err = errors.Join(err, down.run()) }()
	cfg.Logger = log
	// Read the W3C trace context the producer writes into message headers,
	// so each batch's span links to the sync runs it applies.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	// go-redis logs every failed dial itself; the consumer already logs the
	// error it acts on, so keep go-redis's detail at debug level.
	redis.SetLogger(redisLogger{log})
	rdb, err := redisconn.Open(rc)
	if err != nil {
		return err
	}
	down.push(func() error {
		if err := rdb.Close(); err != nil {
			return fmt.Errorf("close redis: %w", err)
		}
		return nil
	})
	c, err := consumer.New(cfg, rdb)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
