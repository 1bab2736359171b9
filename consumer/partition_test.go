package consumer

import (
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// TestCommittedOffsetOutOfRange: a group whose committed offset is no
// longer in the partition still applies what the partition holds, and
// says what happened: below the first offset (retention deleted unread
// events) it reads on from the first offset; past the end (the log was
// cut, or the topic created again) it reads the partition again from its
// first offset.
func TestCommittedOffsetOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare produces, deletes and commits; it returns the events
		// the consumer must apply.
		prepare func(t *testing.T, ke *kafkaEnv, group string) []schema.Event
		log     string
	}{
		{
			name: "below the first offset",
			prepare: func(t *testing.T, ke *kafkaEnv, group string) []schema.Event {
				ke.produce(t, messages(
					ev("staging", "seg", 1, "deleted-1", schema.OpAdd, 1),
					ev("staging", "seg", 1, "deleted-2", schema.OpAdd, 2),
					ev("staging", "seg", 1, "deleted-3", schema.OpAdd, 3))...)
				commitOffset(t, ke, group, 1)
				testenv.DeleteRecords(t, testenv.Context(t, 30*time.Second), ke.brokers, ke.topic, 1)
				kept := []schema.Event{
					ev("staging", "seg", 1, "kept-1", schema.OpAdd, 4),
					ev("staging", "seg", 1, "kept-2", schema.OpAdd, 5),
				}
				ke.produce(t, messages(kept...)...)
				return kept
			},
			log: "deleted by retention before they were applied",
		},
		{
			name: "past the end",
			prepare: func(t *testing.T, ke *kafkaEnv, group string) []schema.Event {
				evs := []schema.Event{
					ev("staging", "seg", 1, "alice", schema.OpAdd, 1),
					ev("staging", "seg", 1, "bob", schema.OpAdd, 2),
					ev("staging", "seg", 1, "carol", schema.OpAdd, 3),
				}
				ke.produce(t, messages(evs...)...)
				commitOffset(t, ke, group, 100)
				return evs
			},
			log: "past the end of the partition",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers, onBroker := testenv.Kafka(t)
			rdb := testenv.Redis(t).Client
			ke := newKafka(t, brokers, onBroker, 1)
			cfg := testConfig(t, ke)
			var logs testenv.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelWarn}))
			want := tc.prepare(t, ke, cfg.GroupID)
			c := start(t, ke.kf, cfg, rdb)
			c.waitCaughtUp(t)
			var keys []string
			for _, e := range want {
				keys = append(keys, e.ContextKey)
			}
			slices.Sort(keys)
			if got := sortedMembers(t, rdb, cfg.RedisPrefix, "seg.g1"); !slices.Equal(got, keys) {
				t.Errorf("members %q, want %q", got, keys)
			}
			if err := c.stop(); err != nil {
				t.Fatal(err)
			}
			if got, want := ke.committed(t, cfg.GroupID), ke.ends(t); !mapsEqual(got, want) {
				t.Errorf("committed offsets %v, want the end offsets %v", got, want)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("no warning saying %q; logs:\n%s", tc.log, logs.String())
			}
		})
	}
}

// commitOffset commits offset for partition 0 of ke's topic in group, as
// a member of an earlier generation would have.
func commitOffset(t *testing.T, ke *kafkaEnv, group string, offset int64) {
	t.Helper()
	res, err := ke.client.OffsetCommit(testenv.Context(t, 10*time.Second), &kafka.OffsetCommitRequest{
		GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{ke.topic: {{Partition: 0, Offset: offset}}},
	})
	if err != nil {
		t.Fatalf("commit offset: %v", err)
	}
	for _, p := range res.Topics[ke.topic] {
		if p.Error != nil {
			t.Fatalf("commit offset: %v", p.Error)
		}
	}
}
