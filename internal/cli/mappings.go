package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// storeHelp says where every mappings command keeps the mappings.
const storeHelp = `Mappings are stored in the Redis given by the --redis-* settings (the same
ones as consume), under the control prefix --control-prefix, apart from the
Big Segments keys; point --redis-url at a separate control Redis to keep
them there. Every replica reading that Redis sees the same mappings.`

func newMappings(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "Store and inspect the mappings every replica shares (preview)",
		Long: `Stores the mappings of a mappings file and shows what is stored.

` + storeHelp + `

Preview: nothing runs the stored mappings yet.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMappingsApply(lookup), newMappingsList(lookup), newMappingsShow(lookup))
	return cmd
}

// storeCommand builds a mappings subcommand whose run gets the validated
// control Redis and store settings; more validates its own settings.
func storeCommand(lookup func(string) (string, bool), cmd *cobra.Command, bind func(*setting.Set), more func() error,
	run func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error) *cobra.Command {
	var (
		rc redisx.Config
		sc catalogstore.Config
	)
	cmd.Long += "\n\n" + storeHelp
	s := newSettings(cmd)
	if bind != nil {
		bind(s)
	}
	bindRedis(s, &rc)
	s.String(&sc.Prefix, "control-prefix", "CONTROL_PREFIX", "key prefix of the control-plane keys (default \"cohortsync:control:\")")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		envErr := s.ApplyEnv(lookup)
		if err := errors.Join(envErr, rc.Validate(), sc.Validate(), more()); err != nil {
			return usage(s, err)
		}
		return failed(s, run(cmd, args, rc, sc))
	}
	return cmd
}

func newMappingsApply(lookup func(string) (string, bool)) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Validate a mappings file and store its mappings",
		Long: `Validates every entry of the mappings file FILE and, only if all are valid,
stores its mappings, printing for each whether it was created, updated or
unchanged. Applying an unchanged file writes nothing. A stored mapping the
file lacks is kept and reported ("not-in-file"): removing one is a separate
decision. Every problem of the file is printed at once, with its line, entry
and field; then nothing is stored and the exit code is 2.

The file's destinations are validated but not stored yet.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVarP(&path, "file", "f", "", "mappings file, YAML (required)")
	return storeCommand(lookup, cmd, nil, func() error {
		if path == "" {
			return setting.Missing("file", "a mappings file")
		}
		return nil
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		// Decoded before connecting: a bad file stores nothing.
		c, err := app.LoadMappings(path)
		if len(catalog.Errors(err)) > 0 {
			return &exitError{code: ExitUsage, err: fmt.Errorf("invalid mappings file:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))}
		}
		if err != nil {
			return err
		}
		return app.MappingsApply(cmd.Context(), rc, sc, c, cmd.OutOrStdout())
	})
}

func newMappingsList(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stored mappings",
		Long:  `Prints a table of the stored mappings: name, segment, destinations, schedule and whether it is enabled.`,
		Args:  cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.MappingsList(cmd.Context(), rc, sc, cmd.OutOrStdout())
	})
}

func newMappingsShow(lookup func(string) (string, bool)) *cobra.Command {
	format := app.FormatYAML
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print one stored mapping",
		Long: `Prints the stored mapping NAME as an entry of the mappings file, normalised:
every default written out.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&format, "output", "", "output format: yaml or json")
	}, func() error { return app.ValidateFormat(format) }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.MappingsShow(cmd.Context(), rc, sc, args[0], format, cmd.OutOrStdout())
	})
}
