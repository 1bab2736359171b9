package testenv

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadTopic reads every message of topic's partitions 0..partitions-1 up
// to the end offsets listed when it starts, partition by partition (each
// membership lives on one partition, so per-partition order is the order
// that matters). It fails the test on any error, within 30 seconds.
func ReadTopic(t testing.TB, brokers []string, topic string, partitions int) []kafka.Message {
	t.Helper()
	ctx := Context(t, 30*time.Second)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	// A real broker may still be moving partition leadership right after the
	// topic was created (NotLeaderForPartition, LeaderNotAvailable): those
	// answers are retried until ctx's deadline, like any client would.
	var resp *kafka.ListOffsetsResponse
	for {
		var err error
		resp, err = client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			t.Fatalf("list offsets: %v", err)
		}
		retriable := slices.ContainsFunc(resp.Topics[topic], func(po kafka.PartitionOffsets) bool {
			var ke kafka.Error
			return po.Error != nil && errors.As(po.Error, &ke) && ke.Temporary()
		})
		if !retriable || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // poll interval, bounded by ctx
	}
	offs := slices.Clone(resp.Topics[topic])
	slices.SortFunc(offs, func(a, b kafka.PartitionOffsets) int { return a.Partition - b.Partition })
	var msgs []kafka.Message
	for _, po := range offs {
		if po.Error != nil {
			t.Fatalf("partition %d: %v", po.Partition, po.Error)
		}
		if po.LastOffset == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 50 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("read partition %d: %v", po.Partition, err)
			}
			msgs = append(msgs, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// DeleteRecords removes every record of the topic's partitions, as
// retention does with old ones (DeleteRecords up to the high watermark).
func DeleteRecords(t testing.TB, ctx context.Context, brokers []string, topic string, partitions int) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = int32(p), -1 // -1: up to the high watermark
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("delete records of %s/%d: %v", tp.Topic, p.Partition, err)
			}
		}
	}
}
