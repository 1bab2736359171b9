package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

// mutateHelp says how the commands changing a synced segment write.
const mutateHelp = `The change goes through the normal event path, as a run of the segment's
mapping: a diff against what the destination holds, published to Kafka
under the segment's lease with the shared sequence numbers, applied by the
consumer, and recorded in the run history. It takes the Kafka settings of
sync and the control settings of sync --mapping.`

// mutateCommand builds a command changing a synced segment through the
// event path; bind and more bind and validate its own settings.
func mutateCommand(lookup func(string) (string, bool), cmd *cobra.Command, bind func(*setting.Set), more func() error,
	run func(cmd *cobra.Command, args []string, req app.MutateRequest) error) *cobra.Command {
	var (
		kc   kafkax.Config
		mc   = newMappingControl()
		proc = app.DefaultProcess()
	)
	cmd.Long += "\n\n" + mutateHelp
	pcfg := producer.DefaultConfig()
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		if bind != nil {
			bind(s)
		}
		bindKafka(s, &kc, &pcfg.Topic)
		s.String(&pcfg.StateDir, "state-dir", "PRODUCER_STATE_DIR", "directory of the segments' snapshot state (a cache: a lost one is read back from the destination)")
		bindLease(s, &mc, "the run")
		bindRetention(s, &mc)
		bindProcess(s, &proc)
	}, func() error {
		return errors.Join(kc.Validate(), proc.Validate(), runstore.Config{Retention: mc.retention}.Validate(), more())
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		mc.store = sc
		mcfg := mc.runConfig(pcfg)
		if err := mcfg.Validate(); err != nil {
			return err
		}
		return run(cmd, args, app.MutateRequest{Process: proc, Env: lookup, Kafka: kc, Redis: rc, Store: sc, Runs: mcfg,
			Retention: mc.retention, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
	})
}

func newSegmentsRollback(lookup func(string) (string, bool)) *cobra.Command {
	var rr app.RollbackRequest
	cmd := &cobra.Command{
		Use:   "rollback SEGMENT --to-run RUN [--destination NAME]",
		Short: "Restore the membership a synced segment had right after an earlier run",
		Long: `Restores, in the destination RUN wrote, the membership SEGMENT had right
after run RUN (cohortsync runs list) was applied: what the destination holds
now with every event published since RUN undone, read from the membership
topic. It is refused, with nothing published, when RUN is not in the run
history (unknown, or past its retention), did not succeed, wrote another
generation, or when compaction or retention removed any of the segment's
events since RUN from the topic.

The segment's mapping is paused first, so that its next scheduled run does
not undo the rollback; resume it (cohortsync mappings resume NAME) once its
source is right again. The rollback is recorded as a run with trigger
"rollback" whose input names RUN.`,
		Args: cobra.ExactArgs(1),
	}
	return mutateCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&rr.Run, "to-run", "", "the run whose membership is restored (required)")
		s.String(&rr.Destination, "destination", "", "the destination RUN wrote (required only if RUN wrote several)")
	}, func() error {
		if rr.Run == "" {
			return setting.Missing("to-run", "a run id, such as 20261125T201500Z-1a2b3c4d")
		}
		return nil
	}, func(cmd *cobra.Command, args []string, req app.MutateRequest) error {
		rr.Segment = args[0]
		return app.SegmentsRollback(cmd.Context(), req, rr)
	})
}

func newSegmentsGeneration(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generation",
		Short: "Move a synced segment to its next generation",
		Long: `A segment's generation lives in the flag data evaluators read ("generation"
of the unbounded segment), which cohortsync does not see. bump builds
generation N+1 beside N and moves the mapping to it; evaluators keep
reading N until their flag data says N+1; finish then removes N, only once
you confirm that they moved.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newGenerationBump(lookup), newGenerationFinish(lookup), newGenerationShow(lookup))
	return cmd
}

func newGenerationBump(lookup func(string) (string, bool)) *cobra.Command {
	wait := 2 * time.Minute
	cmd := &cobra.Command{
		Use:   "bump SEGMENT [--wait 2m]",
		Short: "Build the next generation of a synced segment beside the current one",
		Long: `Runs SEGMENT's mapping into generation N+1 (a full first sync of its source
into the new generation's keys, in every destination; generation N is
untouched), then stores the mapping at N+1 so that its later runs keep N+1
current, and waits up to --wait for every destination's consumer to apply
it, saying per destination whether it is applied. A bump that failed is
resumed by running it again. Update the generation in your mappings file
too: applying a file with the old one moves the mapping back.`,
		Args: cobra.ExactArgs(1),
	}
	return mutateCommand(lookup, cmd, func(s *setting.Set) {
		s.Duration(&wait, "wait", "", "how long to wait for the consumers to apply the new generation")
	}, func() error {
		if wait < 0 {
			return setting.Invalid("wait", wait, "a duration of 0 or more")
		}
		return nil
	}, func(cmd *cobra.Command, args []string, req app.MutateRequest) error {
		return app.GenerationBump(cmd.Context(), req, args[0], wait)
	})
}

func newGenerationFinish(lookup func(string) (string, bool)) *cobra.Command {
	var confirmed bool
	cmd := &cobra.Command{
		Use:   "finish SEGMENT --confirm-evaluators-moved",
		Short: "Remove the previous generation of a bumped segment",
		Long: `Removes generation N's members from every destination through the event
path, once generation N+1 is built and applied everywhere. Refused without
--confirm-evaluators-moved: evaluators whose flag data still says N would
see every member leave.`,
		Args: cobra.ExactArgs(1),
	}
	return mutateCommand(lookup, cmd, func(s *setting.Set) {
		s.Bool(&confirmed, "confirm-evaluators-moved", "", "the flag data every evaluator reads gives the segment the new generation")
	}, func() error { return nil }, func(cmd *cobra.Command, args []string, req app.MutateRequest) error {
		return app.GenerationFinish(cmd.Context(), req, args[0], confirmed)
	})
}

func newGenerationShow(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show SEGMENT",
		Short: "Say where the generation of a synced segment stands",
		Args:  cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.GenerationShow(cmd.Context(), rc, sc, args[0], cmd.OutOrStdout())
	})
}
