// Command consumer applies cohortsync membership events from Kafka to Redis
// in the LaunchDarkly Big Segments layout. See package consumer.
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
