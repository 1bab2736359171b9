package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/erase"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

func newSegmentsLookup(lookup func(string) (string, bool)) *cobra.Command {
	var q membership.Query
	format := app.FormatTable
	cmd := &cobra.Command{
		Use:   "lookup --env ENV --context KEY [--segment SEGMENT] [--output table|json]",
		Short: "Which segments a context key is in, and since which run",
		Long: `Reads the context key's include and exclude sets in the destination of
environment ENV the way LaunchDarkly's SDKs do (included wins) and prints
each segment generation holding it: its state, source, owning mapping and,
when included, since when: the sequence number of the add that let the key
in (the first of its current stay, recorded by the consumer with the
membership) and its run, with the run's start and trigger while the run
history keeps it. A member that joined before this release tracked it
reads "unknown (before since-tracking)". With --segment, only that segment
(is the key in it, and since which run).`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&q.Env, "env", "", "the environment (or destination name) looked in (required)")
		s.String(&q.ContextKey, "context", "", "the context key (required)")
		s.String(&q.Segment, "segment", "", "only this segment")
		s.String(&format, "output", "", "output format: table or json")
	}, func() error {
		var errs []error
		if q.Env == "" {
			errs = append(errs, setting.Missing("env", "the environment looked in"))
		}
		if q.ContextKey == "" {
			errs = append(errs, setting.Missing("context", "the context key looked up"))
		}
		return errors.Join(append(errs, app.ValidateListFormat(format))...)
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.SegmentsLookup(cmd.Context(), rc, sc, lookup, q, format, cmd.OutOrStdout())
	})
}

func newStatus(lookup func(string) (string, bool)) *cobra.Command {
	var (
		dest   string
		cfg    status.Config
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status [--destination NAME] [--stale-after 2m] [--json]",
		Short: "Each destination's store status as the SDKs see it, and each segment's freshness and lag",
		Long: `Per destination: available (its Redis answers), potentially stale (as
LaunchDarkly's SDKs report a Big Segment store: big_segments_synchronized_on
missing or at least --stale-after old; set it to your SDKs' staleAfter),
the last sync time, the set-aside count and the last errors recorded
(failed runs, runs set aside, the store-lost mark). Per segment: members,
when the consumer last applied it, the highest sequence number applied and
published (the run history), their difference, and the runs published and
not yet applied. An unavailable destination is reported, not an error.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&dest, "destination", "", "only this destination")
		s.Duration(&cfg.StaleAfter, "stale-after", "STATUS_STALE_AFTER", "the SDKs' staleAfter (default 2m, theirs)")
		s.Int(&cfg.RecentRuns, "recent-runs", "STATUS_RECENT_RUNS", "newest runs read for errors and lag (default 200)")
		s.Bool(&asJSON, "json", "", "print JSON instead of tables")
	}, func() error { return cfg.Validate() }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.Status(cmd.Context(), rc, sc, lookup, dest, cfg, asJSON, cmd.OutOrStdout())
	})
}

// newErase builds erase and its show and forget subcommands.
func newErase(lookup func(string) (string, bool)) *cobra.Command {
	var (
		envName, contextKey string
		asJSON              bool
		ecfg                erase.Config
		kc                  kafkax.Config
		mc                  = newMappingControl()
		proc                = app.DefaultProcess()
		pcfg                = producer.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   "erase --env ENV --context KEY",
		Short: "Remove a context key from every segment of an environment, for good, with a receipt",
		Long: `Removes context key KEY from every segment of the destination serving
environment ENV (synced and list segments, every generation) through the
normal event path: one remove event per segment, under the segment's lease
(waiting up to --lock-wait for a run holding it) and numbered from its
shared sequence counter, so the consumer applies it in order with the runs
and a replay of the topic replays it. It returns once Kafka acknowledged
them, printing a receipt (also stored in the control Redis: erase show
RECEIPT) with the segments the key was removed from, each event's sequence
number and the barrier (topic end offsets) after which it is applied.

An erase sticks: the key goes on the environment's erased-keys list first,
and every later mapping run into that environment (scheduled, sync
--mapping, imports, rollbacks) leaves it out of its source with reason
"erased", shown in the run's exclusions. Partner pushes and direct list
edits are explicit and not filtered. erase forget takes a key off the list.`,
		Args: cobra.NoArgs,
	}
	storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&envName, "env", "", "the environment (or destination name) erased from (required)")
		s.String(&contextKey, "context", "", "the context key erased (required)")
		s.Duration(&ecfg.LockWait, "lock-wait", "ERASE_LOCK_WAIT", "how long to wait for a segment a run holds (default 2m)")
		s.Bool(&asJSON, "json", "", "print the receipt as JSON")
		bindKafka(s, &kc, &pcfg.Topic)
		s.String(&pcfg.StateDir, "state-dir", "PRODUCER_STATE_DIR", "directory of the segments' snapshot state (a cache of the shared state)")
		bindLease(s, &mc, "the erase")
		bindRetention(s, &mc)
		bindProcess(s, &proc)
	}, func() error {
		var errs []error
		if envName == "" {
			errs = append(errs, setting.Missing("env", "the environment erased from"))
		}
		if contextKey == "" {
			errs = append(errs, setting.Missing("context", "the context key erased"))
		}
		return errors.Join(append(errs, ecfg.Validate(), kc.Validate(), proc.Validate(), runstore.Config{Retention: mc.retention}.Validate())...)
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		mc.store = sc
		mcfg := mc.runConfig(pcfg)
		if err := mcfg.Validate(); err != nil {
			return err
		}
		return app.Erase(cmd.Context(), proc, lookup, kc, rc, sc, mcfg, app.RunOptions{Retention: mc.retention}, ecfg, envName, contextKey, asJSON,
			cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	cmd.AddCommand(newEraseShow(lookup), newEraseForget(lookup))
	return cmd
}

func newEraseShow(lookup func(string) (string, bool)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show RECEIPT [--json]",
		Short: "Print an erase receipt and what is true of it now",
		Long: `Prints erase receipt RECEIPT and, now: its run's status in the run history
("applied" once serve's run watcher saw the consumer reach its barrier),
the segments whose include set still holds the key (read as the SDKs read
it: none once applied) and whether the key is still on the erased-keys list.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.Bool(&asJSON, "json", "", "print JSON")
	}, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.EraseShow(cmd.Context(), rc, sc, lookup, args[0], asJSON, cmd.OutOrStdout())
	})
}

func newEraseForget(lookup func(string) (string, bool)) *cobra.Command {
	var envName, contextKey string
	cmd := &cobra.Command{
		Use:   "forget --env ENV --context KEY",
		Short: "Take a context key off an environment's erased-keys list (syncs may add it again)",
		Long: `Takes context key KEY off the erased-keys list of environment ENV: later
mapping runs no longer exclude it, so a cohort holding it adds it back. It
changes no segment by itself; the erase's receipt stays.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&envName, "env", "", "the environment (or destination name) (required)")
		s.String(&contextKey, "context", "", "the context key (required)")
	}, func() error {
		var errs []error
		if envName == "" {
			errs = append(errs, setting.Missing("env", "the environment"))
		}
		if contextKey == "" {
			errs = append(errs, setting.Missing("context", "the context key"))
		}
		return errors.Join(errs...)
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.EraseForget(cmd.Context(), rc, sc, lookup, envName, contextKey, cmd.OutOrStdout())
	})
}
