package rewind

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestRewind: a group with no members (never started here) is moved to
// the first offset of every partition, and a missing topic is named. The
// refusal while a consumer runs and the replay it leads to are tested with
// a real consumer in package consumer (TestRedisDataLossIsNotReportedCurrent).
func TestRewind(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, time.Minute)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	topic := testenv.Name(t)
	createTopic(t, ctx, c, topic, 3)
	to, err := Rewind(ctx, c, topic, testenv.Name(t))
	if err != nil || len(to) != 3 || to[0] != 0 || to[1] != 0 || to[2] != 0 {
		t.Fatalf("Rewind = %v, %v; want offset 0 of 3 partitions", to, err)
	}
	if _, err := Rewind(ctx, c, topic+"-missing", "g"); err == nil {
		t.Fatal("Rewind of a missing topic succeeded")
	}
}

// TestTo: a group moved to given offsets or to a time on a topic
// whose messages carry known timestamps commits exactly those offsets
// (read back from the broker), only on the partitions named; input
// outside the topic's logs is refused with nothing committed.
func TestTo(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, time.Minute)
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	topic := testenv.Name(t)
	createTopic(t, ctx, c, topic, 2)
	// Partition 0: 10 messages a minute apart from t0; partition 1: 4.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	produce(t, ctx, c, topic, 0, t0, 10)
	produce(t, ctx, c, topic, 1, t0, 4)

	cases := []struct {
		name    string
		from    Start
		want    map[int]int64 // committed afterwards, from a start of {0: 1, 1: 1}
		wantErr string
	}{
		{name: "the start of every partition", want: map[int]int64{0: 0, 1: 0}},
		{name: "one offset for every partition", from: Start{Offsets: map[int]int64{AllPartitions: 3}}, want: map[int]int64{0: 3, 1: 3}},
		{name: "an offset per partition moves only those named", from: Start{Offsets: map[int]int64{0: 7}}, want: map[int]int64{0: 7, 1: 1}},
		{name: "the end of a log replays nothing there", from: Start{Offsets: map[int]int64{1: 4}}, want: map[int]int64{0: 1, 1: 4}},
		{name: "a time moves each partition to its first message since", from: Start{Time: t0.Add(5 * time.Minute)}, want: map[int]int64{0: 5, 1: 4}},
		{name: "a time between two messages takes the later", from: Start{Time: t0.Add(90 * time.Second)}, want: map[int]int64{0: 2, 1: 2}},
		{name: "a time before the first message is the start", from: Start{Time: t0.Add(-time.Hour)}, want: map[int]int64{0: 0, 1: 0}},
		{name: "a partition the topic does not have", from: Start{Offsets: map[int]int64{0: 2, 5: 1}},
			wantErr: "partition 5: topic \"" + topic + "\" has partitions 0 to 1: out of range"},
		{name: "an offset beyond the end of its log", from: Start{Offsets: map[int]int64{AllPartitions: 6}},
			wantErr: "offset 6 of partition " + topic + "/1 is beyond the end of its log (4, the next offset to be written): out of range"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			group := testenv.Name(t) + string(rune('a'+i))
			if _, err := To(ctx, c, topic, group, Start{Offsets: map[int]int64{AllPartitions: 1}}); err != nil {
				t.Fatal(err)
			}
			to, err := To(ctx, c, topic, group, tc.from)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, ErrOutOfRange) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if got := committed(t, ctx, c, topic, group); !maps.Equal(got, map[int]int64{0: 1, 1: 1}) {
					t.Fatalf("a refused rewind committed %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := committed(t, ctx, c, topic, group); !maps.Equal(got, tc.want) {
				t.Fatalf("committed %v (returned %v), want %v", got, to, tc.want)
			}
		})
	}
}

func createTopic(t *testing.T, ctx context.Context, c *kafka.Client, topic string, partitions int) {
	t.Helper()
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil || resp.Errors[topic] != nil {
		t.Fatalf("create topic: %v %v", err, resp)
	}
}

// produce writes n messages to partition p, the i-th stamped t0 + i minutes.
func produce(t *testing.T, ctx context.Context, c *kafka.Client, topic string, p int, t0 time.Time, n int) {
	t.Helper()
	recs := make([]kafka.Record, n)
	for i := range recs {
		recs[i] = kafka.Record{Time: t0.Add(time.Duration(i) * time.Minute), Value: kafka.NewBytes([]byte(strings.Repeat("x", i+1)))}
	}
	testenv.Eventually(t, 30*time.Second, "produce to "+topic, func() bool {
		resp, err := c.Produce(ctx, &kafka.ProduceRequest{Topic: topic, Partition: p, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...)})
		return err == nil && resp.Error == nil
	})
}

func committed(t *testing.T, ctx context.Context, c *kafka.Client, topic, group string) map[int]int64 {
	t.Helper()
	of, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1}}})
	if err != nil || of.Error != nil {
		t.Fatalf("fetch offsets: %v %v", err, of.Error)
	}
	got := map[int]int64{}
	for _, p := range of.Topics[topic] {
		got[p.Partition] = p.CommittedOffset
	}
	return got
}
