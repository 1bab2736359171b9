package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

// storeHelp says where every mappings and destinations command keeps the
// catalog.
const storeHelp = `Mappings and destinations are stored in the Redis given by the --redis-*
settings (the same ones as consume), under the control prefix
--control-prefix, apart from the Big Segments keys; point --redis-url at a
separate control Redis to keep them there. Every replica reading that Redis
sees the same catalog.`

func newMappings(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "Store, inspect, pause and delete the mappings every replica shares (preview)",
		Long: `Stores the destinations and mappings of a mappings file, shows what is
stored, pauses, resumes and deletes mappings.

` + storeHelp + `

Preview: nothing runs the stored mappings yet.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMappingsApply(lookup), newMappingsList(lookup), newMappingsShow(lookup),
		newMappingsSetEnabled(lookup, false), newMappingsSetEnabled(lookup, true), newMappingsDelete(lookup))
	return cmd
}

// storeCommand builds a mappings or destinations subcommand whose run gets the validated
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
stores its destinations and mappings in one atomic write, printing for each
whether it was created, updated or unchanged. Applying an unchanged file
writes nothing. A stored entry the file lacks is kept and reported
("not-in-file"): removing one is a separate decision. Every problem of the
file is printed at once, with its line, entry and field; then nothing is
stored and the exit code is 2.

A destination's Redis password is never in the file nor stored: the file
names the variable (password_env) or file (password_file) it is read from.`,
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

func newMappingsSetEnabled(lookup func(string) (string, bool), enabled bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Pause a stored mapping",
		Long: `Marks the stored mapping NAME paused (enabled: false), changing nothing else.
Applying a file that says enabled: true (the default) resumes it: the file
is the declaration.`,
		Args: cobra.ExactArgs(1),
	}
	if enabled {
		cmd.Use, cmd.Short = "resume NAME", "Resume a paused mapping"
		cmd.Long = `Marks the stored mapping NAME enabled, changing nothing else. Applying a
file that says enabled: false pauses it again: the file is the declaration.`
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.MappingsSetEnabled(cmd.Context(), rc, sc, args[0], enabled, cmd.OutOrStdout())
	})
}

func newMappingsDelete(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME [--purge --kafka-brokers ...]",
		Short: "Delete a stored mapping, leaving its segment's members in Redis unless --purge",
		Long: `Deletes the stored mapping NAME. Its segment's members stay in Redis, as the
SDKs read them now. Applying a file that still has the mapping stores it
again.

With --purge the members are removed first, through the normal event path
(Kafka, then the consumer), from every destination of the mapping: the
mapping is paused, a sync of an empty cohort removes what each destination
holds, and only then is the mapping deleted. If the purge fails the mapping
is kept, paused, and the command can be run again. --purge takes the Kafka
settings of sync.`,
		Args: cobra.ExactArgs(1),
	}
	var (
		purge bool
		kc    kafkax.Config
		mc    = newMappingControl()
		proc  = app.DefaultProcess()
	)
	pcfg := producer.DefaultConfig()
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.Bool(&purge, "purge", "", "remove the segment's members from every destination before deleting the mapping")
		bindKafka(s, &kc, &pcfg.Topic)
		s.String(&pcfg.StateDir, "state-dir", "PRODUCER_STATE_DIR", "directory of the segments' snapshot state (with --purge)")
		bindLease(s, &mc, "the purge")
		bindRetention(s, &mc)
		bindProcess(s, &proc)
	}, func() error {
		if !purge {
			return refuseFlags(cmd, "nothing without --purge", "kafka-brokers", "topic", "state-dir", "lease-ttl", "rebuild-wait", "runs-retention")
		}
		return errors.Join(kc.Validate(), proc.Validate())
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		if !purge {
			return app.MappingsDelete(cmd.Context(), rc, sc, args[0], cmd.OutOrStdout())
		}
		mc.store = sc
		mcfg := mc.runConfig(pcfg)
		if err := errors.Join(mcfg.Validate(), runstore.Config{Retention: mc.retention}.Validate()); err != nil {
			return err
		}
		return app.MappingsPurge(cmd.Context(), proc, lookup, kc, rc, sc, mcfg, app.RunOptions{Retention: mc.retention}, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
}

func newMappingsShow(lookup func(string) (string, bool)) *cobra.Command {
	return showCommand(lookup, &cobra.Command{
		Use:   "show NAME",
		Short: "Print one stored mapping",
		Long: `Prints the stored mapping NAME as an entry of the mappings file, normalised:
every default written out.`,
		Args: cobra.ExactArgs(1),
	}, app.MappingsShow)
}

// showCommand builds a show NAME subcommand printing one stored entry with
// show, in the format of its --output setting.
func showCommand(lookup func(string) (string, bool), cmd *cobra.Command,
	show func(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name, format string, stdout io.Writer) error) *cobra.Command {
	format := app.FormatYAML
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&format, "output", "", "output format: yaml or json")
	}, func() error { return app.ValidateFormat(format) }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return show(cmd.Context(), rc, sc, args[0], format, cmd.OutOrStdout())
	})
}
