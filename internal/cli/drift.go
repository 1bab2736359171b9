package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/consumer/drift"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/producer"
)

// bindDrift binds what check and rebuild share: Kafka, Redis, consume's
// routing of environments to prefixes (same flags and variables, so one
// deployment's settings serve all three), the environments compared and
// the sorts.
func bindDrift(s *setting.Set, kc *kafkax.Config, rc *redisx.Config, scope *app.DriftScope, cfg *drift.Config, envEnv string) {
	bindKafka(s, kc, &cfg.Topic, setting.NonZero)
	bindRedis(s, rc)
	s.String(&scope.Prefix, "redis-prefix", "CONSUMER_REDIS_PREFIX", "Redis key prefix of every environment not in --env-prefix, as given to consume", setting.NonZero)
	s.StringMap(&scope.EnvPrefixes, "env-prefix", "CONSUMER_ENV_PREFIX", "per-environment Redis prefixes, env=prefix,..., as given to consume")
	s.StringList(&scope.Envs, "env", envEnv, "environments whose destinations are compared, comma-separated")
	s.String(&cfg.TempDir, "sort-dir", "DRIFT_SORT_DIR", "directory of the sort files, a record per event and per member (default the system's temporary directory)")
	s.Int64(&cfg.SortChunkBytes, "sort-chunk-bytes", "DRIFT_SORT_CHUNK_BYTES", "memory budget of each sort, in bytes")
}

// validatePrefixes checks the routing settings as consume does.
func validatePrefixes(scope app.DriftScope, group string) error {
	return consumer.Config{RedisPrefix: scope.Prefix, EnvPrefixes: scope.EnvPrefixes, GroupID: group}.Validate()
}

func newDriftDefaults() (app.DriftScope, drift.Config) {
	return app.DriftScope{Prefix: bigsegments.DefaultPrefix}, drift.Config{Topic: producer.DefaultConfig().Topic, Group: consumer.DefaultGroupID, SortChunkBytes: 64 << 20}
}

func newCheck(lookup func(string) (string, bool)) *cobra.Command {
	var (
		kc     kafkax.Config
		rc     redisx.Config
		asJSON bool
	)
	scope, cfg := newDriftDefaults()
	cmd := &cobra.Command{
		Use:   "check [--env ENV,...] [--json]",
		Short: "Compare what Redis holds with what the membership topic says, and report drift per segment",
		Long: `Reads the membership topic from the first offset every partition still
holds to the consumer group's committed offsets (what it has applied; with
an empty --group-id, to the end), keeps each membership's latest event
(what a replay leaves in Redis), and compares it with every segment of the
destinations: their member indexes, and for each member the log expects,
its include set (what SDKs read). Prints per segment the members on each
side, the members missing and extra (with examples); --json prints the
same as JSON. Memberships with events after the group's offsets, which a
running consumer may apply while Redis is read, are counted as changing,
not as drift. Exit status 3 when anything drifted, 0 when not.

The destinations are consume's: --redis-prefix and --env-prefix route
each environment to a prefix of the Redis of --redis-url or
--redis-cluster-addrs. --env restricts the comparison to the prefixes of
those environments. Memory is bounded by --sort-chunk-bytes (the events
and members go through external sorts under --sort-dir), whatever the
number of members. After drift, see README "Runbook: check, rebuild, replay".`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindDrift(s, &kc, &rc, &scope, &cfg, "CHECK_ENV")
	s.String(&cfg.Group, "group-id", "CONSUMER_GROUP_ID", "the consumer group applying the topic: Redis is compared with the log up to its committed offsets")
	s.Bool(&asJSON, "json", "CHECK_JSON", "print the report as JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := errors.Join(s.ApplyEnv(lookup), kc.Validate(), rc.Validate(), validatePrefixes(scope, cfg.Group)); err != nil {
			return usage(s, err)
		}
		err := app.Check(cmd.Context(), kc, rc, scope, cfg, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		if errors.Is(err, app.ErrDrift) {
			return &exitError{code: ExitDrift, err: err}
		}
		return failed(s, err)
	}
	return cmd
}

func newRebuild(lookup func(string) (string, bool)) *cobra.Command {
	var (
		kc kafkax.Config
		rc redisx.Config
	)
	scope, cfg := newDriftDefaults()
	cmd := &cobra.Command{
		Use:   "rebuild --env ENV[,ENV...] [--group-id GROUP]",
		Short: "Refill emptied or drifted destinations from the membership topic, reported STALE until the consumers caught up",
		Long: `Makes the destinations of the environments of --env hold what the
membership topic says (see cohortsync check): it writes the members that
are missing and removes the extra ones, through the consumer's own writer.

Run it with the consumer group stopped (it refuses while the group has
members): first it holds the destinations' freshness back (it writes
<prefix>:cohortsync:store_lost, which consumers honour, and deletes
big_segments_synchronized_on, so SDKs report the store STALE, never a
half-filled one as current); then it reads the topic, repairs, checks
again that nothing drifts, and deletes the mark. Start the consumers
afterwards: they resume from their committed offsets and mark the store
current once they have caught up. Other destinations are not touched.

If it fails, the mark stays (the destinations stay STALE); run it again.
A topic whose retention removed events (a partition no longer starting at
offset 0) cannot say who those events added: such members are kept, and
counted. See README "Redis lost its data".`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindDrift(s, &kc, &rc, &scope, &cfg, "REBUILD_ENV")
	s.String(&cfg.Group, "group-id", "CONSUMER_GROUP_ID", "the consumer group applying the topic; it must have no members", setting.NonZero)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var errs []error
		if err := errors.Join(s.ApplyEnv(lookup), kc.Validate(), rc.Validate(), validatePrefixes(scope, cfg.Group)); err != nil {
			errs = append(errs, err)
		}
		if len(scope.Envs) == 0 {
			errs = append(errs, setting.Missing("env", "the environments whose destinations to rebuild"))
		}
		if err := errors.Join(errs...); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Rebuild(cmd.Context(), kc, rc, scope, cfg, cmd.OutOrStdout()))
	}
	return cmd
}
