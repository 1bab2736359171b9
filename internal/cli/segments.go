package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer"
)

// newSegments returns the segments command with its list, show, export,
// add, remove and import subcommands, and extra ones (such as rollback and
// generation commands built elsewhere in this package).
func newSegments(lookup func(string) (string, bool), extra ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "segments",
		Short: "Inspect segments, export their members, edit list segments",
		Long: `A segment, per destination: its source, the mapping that owns it, generation,
context kind, member count, last applied run and the destination's freshness.

A segment a mapping names in a destination is synced: its mapping owns its
members and every direct write (add, remove, import) is refused, naming
the mapping. A segment no mapping names is a list segment: add, remove and
import change its members through the normal event path (Kafka, then the
consumer), under the segment's lease, recorded in the run history (runs
list --mapping list:SEGMENT) with trigger "manual".`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newSegmentsList(lookup), newSegmentsShow(lookup), newSegmentsExport(lookup), newSegmentsReindex(lookup), newSegmentsLookup(lookup),
		newSegmentsEdit(lookup, app.EditAdd), newSegmentsEdit(lookup, app.EditRemove), newSegmentsEdit(lookup, app.EditImport))
	cmd.AddCommand(extra...)
	return cmd
}

func newSegmentsList(lookup func(string) (string, bool)) *cobra.Command {
	var f segments.Filter
	format := app.FormatTable
	cmd := &cobra.Command{
		Use:   "list [--destination NAME] [--output table|json]",
		Short: "List the segments of every destination",
		Long: `Prints one row per segment, destination and generation: those the stored
mappings name, and those the destination's Redis holds (the segments index
the consumer keeps; a segment last written before this release appears
once an event of it is applied again). A destination whose Redis cannot be
read is reported after the others' segments (exit 1). Segments last
written by an older release appear after segments reindex.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&f.Destination, "destination", "", "only the segments of this destination")
		s.String(&format, "output", "", "output format: table or json")
	}, func() error { return app.ValidateListFormat(format) }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.SegmentsList(cmd.Context(), rc, sc, lookup, f, format, cmd.OutOrStdout())
	})
}

func newSegmentsReindex(lookup func(string) (string, bool)) *cobra.Command {
	var dest string
	cmd := &cobra.Command{
		Use:   "reindex [--destination NAME]",
		Short: "Index the segments written before the segments index existed (once, after an upgrade)",
		Long: `The consumer records every segment it writes in an index that list and show
read. Segments last written by an older release are not in it until an
event of theirs is applied again; reindex adds them: it walks each
destination's keyspace once with SCAN (pages of about a thousand keys,
matching the segments' metadata keys; never KEYS) and adds what it finds.
Running it again is harmless.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&dest, "destination", "", "only this destination")
	}, func() error { return nil }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.SegmentsReindex(cmd.Context(), rc, sc, lookup, dest, cmd.OutOrStdout())
	})
}

func newSegmentsShow(lookup func(string) (string, bool)) *cobra.Command {
	var (
		dest   string
		ldJSON bool
	)
	format := app.FormatTable
	cmd := &cobra.Command{
		Use:   "show SEGMENT [--destination NAME] [--ld-json | --output table|json]",
		Short: "Print a segment, per destination and generation",
		Long: `Prints segment SEGMENT in each destination holding it or whose mapping names
it, every generation.

With --ld-json it prints instead the segment definition evaluators need in
flag data (a flag data file's "segments" entry): unbounded, generation,
unboundedContextKind, for teams serving flag data from files. The version
is the generation. With the segment in several destinations, --destination
chooses one (flag data is per environment).`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&dest, "destination", "", "only this destination")
		s.Bool(&ldJSON, "ld-json", "", "print the LaunchDarkly segment definition (JSON) instead")
		s.String(&format, "output", "", "output format: table or json (not with --ld-json)")
	}, func() error {
		if ldJSON && format != app.FormatTable {
			return setting.Invalid("output", format, "nothing with --ld-json")
		}
		return app.ValidateListFormat(format)
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.SegmentsShow(cmd.Context(), rc, sc, lookup, args[0], dest, ldJSON, format, cmd.OutOrStdout())
	})
}

func newSegmentsExport(lookup func(string) (string, bool)) *cobra.Command {
	var (
		dest, out  string
		generation int
	)
	opts := segments.ExportOptions{Header: cohortcsv.DefaultIDColumn, ChunkBytes: segments.DefaultExportChunkBytes}
	cmd := &cobra.Command{
		Use:   "export SEGMENT [--destination NAME] [--out FILE]",
		Short: "Write every member of a segment as CSV, sorted",
		Long: `Writes every member (context key) of segment SEGMENT in its destination as
CSV with one column (--id-column), sorted by bytes, each once, to --out or
stdout. Members are read from Redis in pages (SSCAN) and sorted on disk in
bounded memory (--sort-chunk-bytes, spill files in --temp-dir), so a
segment of millions never sits in memory. The generation is the mapping's,
else the highest, unless --generation says.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&dest, "destination", "", "the destination (required when the segment is in several)")
		s.String(&out, "out", "", "CSV file written (default stdout)")
		s.Int(&generation, "generation", "", "the generation exported (default the mapping's, else the highest)")
		s.String(&opts.Header, "id-column", "", "header of the CSV's column")
		s.String(&opts.TempDir, "temp-dir", "", "directory of the sort's spill files (default the system's)")
		s.Int64(&opts.ChunkBytes, "sort-chunk-bytes", "", "memory budget of the sort, in bytes")
	}, func() error {
		var errs []error
		if generation < 0 {
			errs = append(errs, setting.Invalid("generation", generation, "a generation >= 1"))
		}
		if opts.ChunkBytes < 64<<10 {
			errs = append(errs, setting.Invalid("sort-chunk-bytes", opts.ChunkBytes, "at least 65536"))
		}
		return errors.Join(errs...)
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.SegmentsExport(cmd.Context(), rc, sc, lookup, args[0], dest, generation, out, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
}

// newSegmentsEdit builds add, remove or import: a direct edit of a list
// segment published like a run (the Kafka and lease settings of sync
// --mapping).
func newSegmentsEdit(lookup func(string) (string, bool), op string) *cobra.Command {
	var (
		edit = app.SegmentEdit{Op: op, IDColumn: cohortcsv.DefaultIDColumn}
		kc   kafkax.Config
		mc   = newMappingControl()
		proc = app.DefaultProcess()
		pcfg = producer.DefaultConfig()
	)
	cmd := &cobra.Command{
		Use:   op + " SEGMENT --destination NAME KEY...",
		Short: "Add context keys to a list segment",
		Args:  cobra.MinimumNArgs(2),
	}
	switch op {
	case app.EditRemove:
		cmd.Short = "Remove context keys from a list segment"
	case app.EditImport:
		cmd.Use, cmd.Short, cmd.Args = op+" SEGMENT --destination NAME FILE.csv", "Make a list segment's members those of a CSV", cobra.ExactArgs(2)
	}
	cmd.Long = cmd.Short + `, through the normal event path: events on Kafka,
numbered from the segment's shared sequence counter under its lease (so
they never interleave with a run or another edit of the segment), applied
by the consumer, and recorded in the run history with trigger "manual".
A segment a mapping owns is refused, naming the mapping. The generation is
the highest the destination holds (else 1) and the context kind the one it
recorded (else user), unless --generation and --context-kind say.`
	if op == app.EditImport {
		cmd.Long += `

The CSV (plain or gzip, or an http(s) URL) is the list's complete new
membership: it is diffed against what the segment holds, like a mapping
run, and only who entered or left is published; rows without a usable
--id-column value are excluded and counted in the summary.`
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&edit.Target.Destination, "destination", "", "the destination (required)")
		s.Int(&edit.Target.Generation, "generation", "", "the generation written (default the highest there, else 1)")
		s.String(&edit.Target.ContextKind, "context-kind", "", "context kind of the members (default the segment's, else user)")
		if op == app.EditImport {
			s.String(&edit.IDColumn, "id-column", "", "column of the context keys")
		}
		bindKafka(s, &kc, &pcfg.Topic)
		s.String(&pcfg.StateDir, "state-dir", "PRODUCER_STATE_DIR", "directory of the segments' snapshot state (a cache of the shared state)")
		bindLease(s, &mc, "the edit")
		bindRetention(s, &mc)
		bindProcess(s, &proc)
	}, func() error {
		var errs []error
		if edit.Target.Destination == "" {
			errs = append(errs, setting.Missing("destination", "the destination of the list segment"))
		}
		if edit.Target.Generation < 0 {
			errs = append(errs, setting.Invalid("generation", edit.Target.Generation, "a generation >= 1"))
		}
		return errors.Join(append(errs, kc.Validate(), proc.Validate(), runstore.Config{Retention: mc.retention}.Validate())...)
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		edit.Target.Segment = args[0]
		if op == app.EditImport {
			edit.CSV = args[1]
		} else {
			keys, err := segments.CheckKeys(args[1:])
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			edit.Keys = keys
		}
		mc.store = sc
		mcfg := mc.runConfig(pcfg)
		if err := mcfg.Validate(); err != nil {
			return err
		}
		return app.SegmentsEdit(cmd.Context(), proc, lookup, kc, rc, sc, mcfg, app.RunOptions{Retention: mc.retention}, edit, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
}
