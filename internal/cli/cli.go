package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/httpserver"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/progress"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1 // the command ran and failed
	ExitUsage = 2 // bad command line or configuration: nothing was done
	ExitDrift = 3 // check: Redis and the log disagree
)

// exitError carries a command's exit code to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usage marks err as a configuration problem. Every *setting.Error in it is
// rewritten by s to name what the user set.
func usage(s *setting.Set, err error) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf("invalid configuration:\n  %s", strings.ReplaceAll(s.Explain(err).Error(), "\n", "\n  "))}
}

// failed classifies an error of a command's run: a setting found wrong
// only when used (a CSV path that does not open) is still a usage error.
func failed(s *setting.Set, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) { // classified where it happened
		return err
	}
	if len(setting.Errors(err)) > 0 {
		return usage(s, err)
	}
	return &exitError{code: ExitError, err: err}
}

// Main runs the command line args (without the program name) and returns
// the exit code. lookup reads the environment (os.LookupEnv); ctx is
// cancelled on SIGINT/SIGTERM by main.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	root := newRoot(lookup)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	name := "cohortsync"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	_, _ = fmt.Fprintf(stderr, "%s: %v\n", name, err) // stderr is the last resort
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitUsage // cobra's own: unknown command or flag, bad arguments
}

func newRoot(lookup func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "cohortsync",
		Short: "Keep LaunchDarkly Big Segments in sync with analytics cohorts, through Kafka",
		Long: `cohortsync turns cohort snapshots into membership events on Kafka (sync) and
applies them to Redis in the layout LaunchDarkly's server-side SDKs read for
Big Segments (consume).

Every flag has an environment twin, shown in its help as [env NAME]; a flag
given on the command line wins over its variable.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return setting.FlagError(err) })
	root.AddCommand(newSync(lookup), newConsume(lookup), newReplay(lookup), newRebuild(lookup), newCheck(lookup), newServe(lookup), newMappings(lookup), newRuns(lookup), newDestinations(lookup), newAmplitude(lookup),
		newSegments(lookup, newSegmentsRollback(lookup), newSegmentsGeneration(lookup)), newTokens(lookup))
	root.AddCommand(newStatus(lookup), newErase(lookup), newBench(lookup))
	return root
}

// newSettings returns the settings of cmd, bound to its flags.
func newSettings(cmd *cobra.Command) *setting.Set {
	cmd.Flags().SortFlags = false // in declaration order: process, connections, the part's own
	return setting.NewSet(cmd.Flags())
}

func newSync(lookup func(string) (string, bool)) *cobra.Command {
	proc := app.DefaultProcess()
	var kc kafkax.Config
	cfg := producer.DefaultConfig()
	req := producer.SyncRequest{Generation: 1, ContextKind: "user", Source: csvfile.Kind}
	csvOpts := csvfile.Options{IDColumn: cohortcsv.DefaultIDColumn}
	var csvPath, mapping string
	mc := newMappingControl()
	wait := app.RunOptions{GroupID: consumer.DefaultGroupID}
	var waitApplied bool
	ncfg := newNotify()
	cmd := &cobra.Command{
		Use:   "sync (--env ENV --segment SEGMENT --csv FILE | --mapping NAME)",
		Short: "Publish the changes between a segment's last snapshot and a cohort",
		Long: `Publishes the membership changes between the segment's last synced snapshot
and the cohort CSV FILE (plain or gzip) to Kafka as add and remove events,
then records FILE as the segment's snapshot. A run interrupted earlier is
finished first. Prints the run's summary; excluded rows go to a CSV report.

With --mapping NAME it runs the stored mapping NAME now instead (see
cohortsync mappings): its source, into its segment in each of its
destinations, with the state every replica shares in the control Redis
(--redis-*, --control-prefix): a lease per segment, shared sequence
numbers, and the last snapshot read back from the destination when
--state-dir does not have it (lost, or another replica synced since). It
fails if a run of the mapping is in progress on any replica. The webhook and
email recipients the mapping names (notify:) are told how the run ended
(--smtp-* for email); the command waits for that, at most
--notify-close-timeout.`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindRequest(s, &req, &csvPath, &csvOpts)
	s.String(&mapping, "mapping", "SYNC_MAPPING", "run the stored mapping NAME instead of --env, --segment and --csv")
	bindKafka(s, &kc, &cfg.Topic)
	bindProducer(s, &cfg, "batch-size")
	bindMappingControl(s, &mc)
	bindRetention(s, &mc)
	s.Bool(&waitApplied, "wait", "SYNC_WAIT", "with --mapping: after publishing, wait until the consumer group applied the run in every destination")
	s.Duration(&wait.Wait, "wait-timeout", "SYNC_WAIT_TIMEOUT", "with --wait: how long to wait; the run is then reported published, not applied, and sync fails")
	s.String(&wait.GroupID, "group-id", "CONSUMER_GROUP_ID", "with --wait: the Kafka consumer group that applies the run")
	bindNotify(s, &ncfg)
	bindProcess(s, &proc)
	proc.Progress = progress.Auto
	proc.MemoryLimit = app.DefaultSyncMemoryLimit
	s.Int64(&proc.MemoryLimit, "memory-limit", "SYNC_MEMORY_LIMIT",
		"soft memory limit of the process in bytes, for Go's collector (0: none; the GOMEMLIMIT variable wins)")
	s.String((*string)(&proc.Progress), "progress", "SYNC_PROGRESS",
		"progress on stderr: bar (redrawn in place), log (a line every 10s and at each phase), none, or auto (bar on a terminal, log otherwise)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		envErr := s.ApplyEnv(lookup)
		proc.Progress = proc.Progress.Resolve(progress.IsTerminal(cmd.ErrOrStderr()))
		if mapping != "" {
			opts := app.RunOptions{Retention: mc.retention, Notify: ncfg}
			var waitErr error
			if waitApplied {
				opts.Wait, opts.GroupID = wait.Wait, wait.GroupID
				if wait.Wait <= 0 {
					waitErr = setting.Invalid("wait-timeout", wait.Wait, "a positive duration")
				}
				if wait.GroupID == "" {
					waitErr = errors.Join(waitErr, setting.Missing("group-id", "the consumer group that applies the run"))
				}
			} else {
				waitErr = refuseFlags(cmd, "nothing without --wait", "wait-timeout", "group-id")
			}
			mcfg := mc.runConfig(cfg)
			err := errors.Join(envErr, refuseFlags(cmd, "nothing with --mapping (the mapping says it)", requestSettings...),
				refuseFlags(cmd, "nothing with --mapping (the mapping says it, and each segment keeps its reports in its state directory)", "exclusions-file", "max-shrink"),
				kc.Validate(), mcfg.Validate(), mc.validate(), ncfg.Validate(), waitErr, proc.Validate(), telemetry.CheckEnv(lookup))
			if err != nil {
				return usage(s, err)
			}
			return failed(s, app.SyncMapping(cmd.Context(), proc, lookup, kc, mc.redis, mc.store, mcfg, opts, mapping, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		}
		// The CSV is opened by the run, once every setting is known valid.
		var csvErr error
		if csvPath == "" {
			csvErr = setting.Missing("csv", "a cohort CSV file, plain or gzip")
		}
		// A value that did not parse left its default in place, so
		// validating too adds only the other problems.
		if err := errors.Join(envErr, req.ValidateWithoutInput(), csvErr, refuseFlags(cmd, "nothing without --mapping (the control Redis serves mapping runs)", mappingControlSettings...),
			refuseFlags(cmd, "nothing without --mapping (runs of stored mappings are recorded and waited for)", "wait", "wait-timeout", "group-id"),
			refuseFlags(cmd, "nothing without --mapping (a mapping says whom to notify)", notifySettings...),
			kc.Validate(), cfg.Validate(), proc.Validate(), telemetry.CheckEnv(lookup)); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Sync(cmd.Context(), proc, lookup, kc, cfg, req, csvPath, csvOpts, cmd.OutOrStdout(), cmd.ErrOrStderr()))
	}
	return cmd
}

func newConsume(lookup func(string) (string, bool)) *cobra.Command {
	proc := app.DefaultProcess()
	cfg := consumer.DefaultConfig()
	var (
		kc       kafkax.Config
		rc       redisx.Config
		httpAddr string
	)
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Apply membership events from Kafka to Redis, as one member of a consumer group",
		Long: `Runs one member of a Kafka consumer group that applies membership events to
Redis in LaunchDarkly's Big Segments layout, keeps big_segments_synchronized_on
current, and dead-letters events it cannot apply. Runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindKafka(s, &kc, &cfg.Topic, setting.NonZero)
	bindRedis(s, &rc)
	bindConsumer(s, &cfg, "batch-size")
	bindHTTP(s, &httpAddr)
	bindProcess(s, &proc)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		envErr := s.ApplyEnv(lookup)
		if err := errors.Join(envErr, kc.Validate(), cfg.Validate(), rc.Validate(), httpserver.ValidateAddr(httpAddr), proc.Validate(), telemetry.CheckEnv(lookup)); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Consume(cmd.Context(), proc, lookup, kc, rc, httpAddr, cfg, cmd.ErrOrStderr()))
	}
	return cmd
}
