// Command producer syncs cohort snapshots to the membership topic; see
// package producer and "producer sync --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cohortsync/cohortsync/producer"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return producer.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
}
