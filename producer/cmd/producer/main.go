// Command producer syncs cohort snapshots to the membership topic; see
// package producer and "producer sync --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cohortsync/cohortsync/producer"
)

func main() { os.Exit(run()) }

func run() int {
	// Events carry W3C trace context, so a tracer provider installed here
	// links each consumer batch to the sync that produced it.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return producer.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
}
