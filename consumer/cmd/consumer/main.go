package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/pkg/envflag"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := consumer.ParseFlags("consumer", os.Args[1:], envflag.OSLookup, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer: invalid configuration:", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	// Read the W3C trace context the producer writes into message headers,
	// so each batch's span links to the sync runs it applies.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	// go-redis logs every failed dial itself; the consumer already logs the
	// error it acts on, so keep go-redis's detail at debug level.
	redis.SetLogger(redisLogger{cfg.Logger})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := consumer.Run(ctx, cfg); err != nil {
		cfg.Logger.Error("consumer stopped", "err", err)
		return 1
	}
	return 0
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
