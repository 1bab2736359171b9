// Command demo syncs two sample cohort snapshots end to end on an in-process
// Kafka and a local or embedded Redis, and shows what a flag evaluator sees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cohortsync/cohortsync/demo"
	"github.com/cohortsync/cohortsync/pkg/envflag"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg demo.Config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	snapshots := fs.String("snapshots", "testdata/cohort-day1.csv,testdata/cohort-day2.csv", "cohort CSV exports synced in order, comma-separated")
	fs.StringVar(&cfg.Redis, "redis", "auto", "auto (redis-server if installed, else embedded), server or embedded")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep Kafka, Redis and the consumer running after the syncs, until Ctrl-C")
	if err := envflag.Parse(fs, os.Args[1:], "DEMO_", envflag.OSLookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	cfg.Snapshots = strings.Split(*snapshots, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}
