// Command bench is make bench: issue 12's targets measured against a real
// Kafka broker and redis-server beside their references in the same run,
// printed as one Markdown table on stdout, progress on stderr (see
// BENCHMARKS.md; scripts/bench.sh starts the services, builds the
// cohortsync binary and runs it).
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
	"github.com/cohortsync/cohortsync/bench/suite"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func main() { os.Exit(run()) }

func run() int {
	cfg := suite.Config{}.WithDefaults()
	var cpuProfile string
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	s := setting.NewSet(fs)
	s.StringList(&cfg.Brokers, "kafka-brokers", "KAFKA_BROKERS", "real Kafka brokers, comma-separated host:port (required)")
	s.String(&cfg.RedisURL, "redis-url", "REDIS_URL", "standalone redis-server URL (required; the redis-cli --pipe reference speaks to one server)")
	s.String(&cfg.Cohortsync, "cohortsync-bin", "BENCH_COHORTSYNC_BIN", "the cohortsync binary whose sync command is the producer (required; scripts/bench.sh builds it)")
	s.Int(&cfg.Members, "members", "BENCH_MEMBERS", "members of the steady apply, concurrent and first sync cohorts, and of the memory and lookup measures")
	s.Int(&cfg.Large, "large", "BENCH_LARGE", "members of the large first sync, its 1% churn re-sync and the replayed topic")
	s.Int(&cfg.Lookups, "lookups", "BENCH_LOOKUPS", "SDK lookups and raw SMEMBERS round trips timed (at most the members)")
	s.String(&cfg.RedisCLI, "redis-cli", "BENCH_REDIS_CLI", "the redis-cli executable of the --pipe reference")
	s.Int(&cfg.ConsumerBatch, "consumer-batch", "BENCH_CONSUMER_BATCH", "the consumer's --batch-size (0: its own default)")
	s.Int(&cfg.ConsumerPipelines, "consumer-pipelines", "BENCH_CONSUMER_PIPELINES", "the consumer's --pipelines (0: its own default)")
	s.Int(&cfg.ConsumerAppliers, "consumer-appliers", "BENCH_CONSUMER_APPLIERS", "the consumer's --appliers (0: its own default)")
	s.StringList(&cfg.Targets, "targets", "BENCH_TARGETS", "issue 12 targets to measure, 1 to 5 comma-separated (default all)")
	s.Duration(&cfg.PhaseTimeout, "phase-timeout", "BENCH_PHASE_TIMEOUT", "bound on each phase: one sync, one drain, one replay, the lookups")
	s.String(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process (consumer, references; not the producer process) to this file")
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
	rows, err := suite.Run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := bench.WriteTable(os.Stdout, suite.Caption(cfg), rows); err != nil {
		fmt.Fprintln(os.Stderr, "bench: write the table:", err)
		return 1
	}
	if !bench.Passed(rows) {
		fmt.Fprintln(os.Stderr, "bench: not every target met (see the result column)")
	}
	return 0
}
