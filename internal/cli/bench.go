package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/telemetry"
)

func newBench(lookup func(string) (string, bool)) *cobra.Command {
	proc := app.DefaultProcess()
	var (
		kc kafkax.Config
		rc redisx.Config
	)
	cfg := bench.DefaultSizing()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Size a deployment: apply synthetic events from your Kafka to your Redis and compare with the Redis's raw rate",
		Long: fmt.Sprintf(`Produces --events synthetic membership events (adds of distinct members to
one segment) to a topic of its own, measures the raw rate of the Redis at
hand (pipelined SADDs of the bare LaunchDarkly include sets, the first
--reference-events of the members), then applies the events with the real
consumer under a Redis prefix of its own, printing the consumer's lag every
--lag-interval on stderr. On stdout: events produced per second, events
applied per second from the consumer's first assignment until it caught up,
their ratio to the raw SADD rate, and the lag over time.

The topic and prefix default to %s<run id>. It refuses a
topic that holds messages and a prefix holding Big Segments data (its
big_segments_synchronized_on, or cohortsync's store id, lost-store mark or
segment list) unless --force; with --force, the topic's own events are
applied under the prefix too and counted. At the end it removes what it
wrote: the benchmark's segment from the include sets, cohortsync's keys of
that segment, the store keys the run created (one there before stays,
synchronized_on as the consumer moved it), its consumer group, and the
topic if it created it (a topic that existed stays, with the synthetic events).`, bench.NamePrefix),
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindKafkaConn(s, &kc, func() {
		s.String(&cfg.Topic, "topic", "BENCH_TOPIC", "topic of the synthetic events (default a new one, deleted at the end)")
	})
	bindRedis(s, &rc)
	const p = "BENCH_"
	s.Int(&cfg.Events, "events", p+"EVENTS", "synthetic events produced and applied")
	s.Int(&cfg.ReferenceEvents, "reference-events", p+"REFERENCE_EVENTS", "include sets the raw SADD reference writes (at most --events)")
	s.String(&cfg.Prefix, "redis-prefix", p+"REDIS_PREFIX", "Redis prefix written (default a new one)")
	s.Bool(&cfg.Force, "force", p+"FORCE", "run even when the topic holds messages or the prefix holds Big Segments data")
	s.Int(&cfg.Partitions, "topic-partitions", p+"TOPIC_PARTITIONS", "partitions of the topic when the run creates it")
	s.Int(&cfg.ReplicationFactor, "topic-replication-factor", p+"TOPIC_REPLICATION_FACTOR", "replication factor of the topic when the run creates it")
	s.Int(&cfg.ConsumerBatch, "consumer-batch-size", p+"CONSUMER_BATCH_SIZE", "the consumer's --batch-size (0: its default)")
	s.Int(&cfg.ConsumerAppliers, "consumer-appliers", p+"CONSUMER_APPLIERS", "the consumer's --appliers (0: its default)")
	s.Duration(&cfg.LagInterval, "lag-interval", p+"LAG_INTERVAL", "how often the consumer's lag is checked and printed")
	s.Duration(&cfg.Timeout, "timeout", p+"TIMEOUT", "bound on the whole run")
	bindProcess(s, &proc)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := errors.Join(s.ApplyEnv(lookup), kc.Validate(), rc.Validate(), cfg.Validate(), proc.Validate(), telemetry.CheckEnv(lookup)); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Bench(cmd.Context(), proc, lookup, kc, rc, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}
