package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func newAmplitude(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "amplitude",
		Short: "Look into the Amplitude projects mappings pull cohorts from",
		Long: `Calls the Amplitude projects stored by mappings apply (amplitude_projects in
the mappings file), with their keys read from where each project says.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAmplitudeCohorts(lookup))
	return cmd
}

// defaultAmplitudeTimeout is amplitude cohorts' --timeout.
const defaultAmplitudeTimeout = 30 * time.Second

func newAmplitudeCohorts(lookup func(string) (string, bool)) *cobra.Command {
	var project string
	timeout := defaultAmplitudeTimeout
	cmd := &cobra.Command{
		Use:   "cohorts --project NAME",
		Short: "List the cohorts of a stored Amplitude project",
		Long: `Reads the keys of the stored Amplitude project NAME from its variable or file
(in this process's environment) and prints the project's cohorts: id (the
amplitude_cohort of a mapping), name, size, when it was last computed, and
whether it is archived. 5xx, 429 and network errors are retried within
--timeout; other errors (401 for wrong keys) are reported at once. Exits 1
on an error.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&project, "project", "AMPLITUDE_PROJECT", "name of the stored Amplitude project (required)")
		s.Duration(&timeout, "timeout", "AMPLITUDE_TIMEOUT", "bound on listing the cohorts, retries included")
	}, func() error {
		var errs []error
		if project == "" {
			errs = append(errs, setting.Missing("project", "the name of a stored Amplitude project"))
		}
		if timeout <= 0 {
			errs = append(errs, setting.Invalid("timeout", timeout, "a positive duration"))
		}
		return errors.Join(errs...)
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.AmplitudeCohorts(cmd.Context(), rc, sc, project, timeout, lookup, cmd.OutOrStdout())
	})
}
