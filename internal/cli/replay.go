package cli

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/consumer/rewind"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

func newReplay(lookup func(string) (string, bool)) *cobra.Command {
	var kc kafkax.Config
	topic, group := producer.DefaultConfig().Topic, consumer.DefaultGroupID
	var fromOffset, fromTime string
	cmd := &cobra.Command{
		Use:   "replay --group-id GROUP [--from-offset OFFSETS | --from-time TIME]",
		Short: "Replay the topic into Redis: move a stopped consumer group back to the start of the topic, an offset or a time",
		Long: `Commits, for the consumer group on every partition of the membership
topic, the offset of the first message the log still holds: the group's
next consumers replay the topic into Redis. Events are idempotent, so
destinations that kept their data stay as they are.

--from-offset moves the group to given offsets instead: one for every
partition (1200), or PARTITION:OFFSET pairs (0:1200,3:50), which move only
the partitions named. --from-time (RFC 3339) moves every partition to its
first message produced at or after that time (Kafka's time index), or to
its end when none is that recent. A partition the topic does not have, an
offset outside its partition's log and a time in the future are refused,
with nothing committed.

It refuses while the group has members. After a Redis lost its data, run
cohortsync rebuild rather than a replay of the whole group (README, "Redis
lost its data").`,
		Args: cobra.NoArgs,
	}
	s := newSettings(cmd)
	bindKafka(s, &kc, &topic, setting.NonZero)
	s.String(&group, "group-id", "CONSUMER_GROUP_ID", "Kafka consumer group to rewind", setting.NonZero)
	s.String(&fromOffset, "from-offset", "REPLAY_FROM_OFFSET", "replay from this offset of every partition (1200), or from PARTITION:OFFSET pairs (0:1200,3:50; other partitions stay)")
	s.String(&fromTime, "from-time", "REPLAY_FROM_TIME", "replay every partition from its first message produced at or after this RFC 3339 time")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := errors.Join(s.ApplyEnv(lookup), kc.Validate()); err != nil {
			return usage(s, err)
		}
		offs, oerr := rewind.ParseOffsets(fromOffset)
		at, terr := rewind.ParseTime(fromTime)
		if err := errors.Join(oerr, terr); err != nil {
			return usage(s, err)
		}
		from := rewind.Start{Offsets: offs, Time: at}
		if err := from.Validate(time.Now()); err != nil {
			return usage(s, err)
		}
		return failed(s, app.Rewind(cmd.Context(), kc, topic, group, from, cmd.OutOrStdout()))
	}
	return cmd
}
