// Command bench measures cohortsync end to end against a real Kafka broker and
// Redis, beside raw references measured in the same run (see BENCHMARKS.md;
// scripts/bench.sh starts the services and runs it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/pkg/envflag"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg bench.Config
	var brokers envflag.StringList
	var cluster envflag.StringList
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Var(&brokers, "kafka-brokers", "real Kafka brokers, comma-separated host:port (required)")
	fs.StringVar(&cfg.Redis.URL, "redis-url", "", "standalone Redis URL (this or --redis-cluster-addrs)")
	fs.Var(&cluster, "redis-cluster-addrs", "Redis Cluster masters, comma-separated host:port")
	fs.IntVar(&cfg.Members, "members", 1_000_000, "members of the synthetic cohort")
	fs.IntVar(&cfg.ConsumerBatch, "consumer-batch", 0, "the consumer's --batch-size (default its own)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := envflag.Parse(fs, os.Args[1:], "", envflag.OSLookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	cfg.Brokers, cfg.Redis.ClusterAddrs = brokers, cluster
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	res.WriteTable(os.Stdout)
	return 0
}
