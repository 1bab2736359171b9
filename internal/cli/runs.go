package cli

import (
	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func newRuns(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "The run history of the stored mappings",
		Long: `Every run of a stored mapping into a destination (by serve's scheduler,
sync --mapping or mappings delete --purge), and every batch the push
receiver accepted (trigger push), is recorded in the control Redis with its
summary and its exclusion report, and kept 14 days.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newRunsList(lookup), newRunsShow(lookup), newRunsExclusions(lookup))
	return cmd
}

func newRunsList(lookup func(string) (string, bool)) *cobra.Command {
	var f runstore.Filter
	cmd := &cobra.Command{
		Use:   "list [--mapping NAME] [--limit N]",
		Short: "List recorded runs, newest first",
		Args:  cobra.NoArgs,
	}
	f.Limit = 50
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&f.Mapping, "mapping", "", "only the runs of this mapping")
		s.Int(&f.Limit, "limit", "", "most runs listed")
	}, func() error {
		if f.Limit < 1 || f.Limit > 10000 {
			return setting.Invalid("limit", f.Limit, "an integer between 1 and 10000")
		}
		return nil
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.RunsList(cmd.Context(), rc, sc, f, cmd.OutOrStdout())
	})
}

func newRunsShow(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Print a recorded run's summary, per destination",
		Args:  cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.RunsShow(cmd.Context(), rc, sc, args[0], cmd.OutOrStdout())
	})
}

func newRunsExclusions(lookup func(string) (string, bool)) *cobra.Command {
	var dest string
	cmd := &cobra.Command{
		Use:   "exclusions RUN [--destination NAME]",
		Short: "Write a recorded run's exclusion report as CSV to stdout",
		Long: `Writes the rows (or pushed members) that run RUN left out, and why, as CSV
to stdout: row,line,value,reason, the columns of the local report a sync
writes, for CSV, Amplitude and push runs alike (a pushed member's row is its
position in the batch, its line empty). A run that excluded nothing gives
the header alone. The report is kept with the run in the control Redis, as
long as the run; what it lacks (rows over the limit kept per run) is said
on stderr.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&dest, "destination", "", "the destination whose report to write, when the run had several")
	}, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.RunsExclusions(cmd.Context(), rc, sc, args[0], dest, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
}
