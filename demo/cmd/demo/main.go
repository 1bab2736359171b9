// Command demo syncs two sample cohort snapshots end to end on an in-process
// Kafka and a local or embedded Redis, and shows what a flag evaluator sees.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cohortsync/cohortsync/demo"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := demo.Config{Redis: "auto", Snapshots: []string{"testdata/cohort-day1.csv", "testdata/cohort-day2.csv"},
		Mappings: "demo/testdata/mappings.yaml"}
	fs := pflag.NewFlagSet("demo", pflag.ContinueOnError)
	s := setting.NewSet(fs)
	s.StringList(&cfg.Snapshots, "snapshots", "DEMO_SNAPSHOTS", "cohort CSV exports synced in order, comma-separated")
	s.String(&cfg.Redis, "redis", "DEMO_REDIS", "auto (redis-server if installed, else embedded), server or embedded")
	s.String(&cfg.Mappings, "mappings", "DEMO_MAPPINGS", "mapping file applied and run by serve's scheduler at the end (none: skip)")
	s.Bool(&cfg.Keep, "keep", "DEMO_KEEP", "keep Kafka, Redis and the consumer running after the syncs, until Ctrl-C")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "demo:", setting.FlagError(err))
		return 2
	}
	if err := s.ApplyEnv(os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}
