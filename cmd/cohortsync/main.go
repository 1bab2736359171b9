// Command cohortsync keeps LaunchDarkly Big Segments in sync with analytics
// cohorts; see "cohortsync --help" and package internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cohortsync/cohortsync/internal/cli"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
}
