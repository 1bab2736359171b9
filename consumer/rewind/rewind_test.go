package rewind

import (
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
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 3, ReplicationFactor: 1}}})
	if err != nil || resp.Errors[topic] != nil {
		t.Fatalf("create topic: %v %v", err, resp)
	}
	to, err := Rewind(ctx, c, topic, testenv.Name(t))
	if err != nil || len(to) != 3 || to[0] != 0 || to[1] != 0 || to[2] != 0 {
		t.Fatalf("Rewind = %v, %v; want offset 0 of 3 partitions", to, err)
	}
	if _, err := Rewind(ctx, c, topic+"-missing", "g"); err == nil {
		t.Fatal("Rewind of a missing topic succeeded")
	}
}
