package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/status"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
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
