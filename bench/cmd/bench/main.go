// Command bench measures cohortsync end to end against a real Kafka broker and
// Redis, beside raw references measured in the same run (see BENCHMARKS.md;
// scripts/bench.sh starts the services and runs it).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := bench.Config{Members: 1_000_000}
	var cpuProfile string
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	s := setting.NewSet(fs)
	s.StringList(&cfg.Brokers, "kafka-brokers", "KAFKA_BROKERS", "real Kafka brokers, comma-separated host:port (required)")
	s.String(&cfg.Redis.URL, "redis-url", "REDIS_URL", "standalone Redis URL (this or --redis-cluster-addrs)")
	s.StringList(&cfg.Redis.ClusterAddrs, "redis-cluster-addrs", "REDIS_CLUSTER_ADDRS", "Redis Cluster masters, comma-separated host:port")
	s.Int(&cfg.Members, "members", "BENCH_MEMBERS", "members of the synthetic cohort")
	s.Int(&cfg.ConsumerBatch, "consumer-batch", "BENCH_CONSUMER_BATCH", "the consumer's --batch-size (default its own)")
	s.String(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", setting.FlagError(err))
		return 2
	}
	if err := errors.Join(s.ApplyEnv(os.LookupEnv), s.Explain(cfg.Validate())); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close() // nothing was written
			fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			// The profile is only complete once closed: say if it is not.
			if err := f.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: --cpuprofile:", err)
			}
		}()
	}
	res, err := bench.Run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := res.WriteTable(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench: write the table:", err)
		return 1
	}
	return 0
}
