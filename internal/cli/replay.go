package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

func newReplay(lookup func(string) (string, bool)) *cobra.Command {
	var kc kafkax.Config
	topic, group := producer.DefaultConfig().Topic, consumer.DefaultGroupID
	cmd := &cobra.Command{
		Use:   "replay --group-id GROUP",
		Short: "Replay the topic into Redis: move a stopped consumer group back to the start of the topic",
		Long: `Commits, for the consumer group on every partition of the membership
topic, the offset of the first message the log still holds: the group's
next consumers replay the topic into Redis. Events are idempotent, so
destinations that kept their data stay as they are. It is the rebuild after
a Redis lost its data (README, "Redis lost its data"): stop the group's
consumers, run this, delete <prefix>:cohortsync:store_lost, start them.
It refuses while the group has members.`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindKafka(s, &kc, &topic, setting.NonZero)
	s.String(&group, "group-id", "CONSUMER_GROUP_ID", "Kafka consumer group to rewind", setting.NonZero)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := errors.Join(s.ApplyEnv(lookup), kc.Validate()); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Rewind(cmd.Context(), kc, topic, group, cmd.OutOrStdout()))
	}
	return cmd
}
