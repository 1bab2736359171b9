package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// offsetsClient is what the lag check needs from a kafka.Client.
type offsetsClient interface {
	Metadata(ctx context.Context, req *kafka.MetadataRequest) (*kafka.MetadataResponse, error)
	ListOffsets(ctx context.Context, req *kafka.ListOffsetsRequest) (*kafka.ListOffsetsResponse, error)
	OffsetFetch(ctx context.Context, req *kafka.OffsetFetchRequest) (*kafka.OffsetFetchResponse, error)
}

// errTopicMissing is returned by partitions for a topic the cluster does not
// have.
var errTopicMissing = errors.New("does not exist")

// partitions lists the partition ids of topic.
func partitions(ctx context.Context, kc offsetsClient, topic string) ([]int, error) {
	md, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of topic %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q %w", topic, errTopicMissing)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of topic %q: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return nil, fmt.Errorf("topic %q %w", topic, errTopicMissing)
		}
		ids := make([]int, len(t.Partitions))
		for i, p := range t.Partitions {
			ids[i] = p.ID
		}
		return ids, nil
	}
	return nil, fmt.Errorf("topic %q %w", topic, errTopicMissing)
}

// groupLag returns how many messages of topic the group has not committed:
// per partition, the end offset minus the committed offset (or the first
// offset, where the group has committed nothing or less than what retention
// kept). It is what kafka-go's Lag cannot tell in group mode. A partition
// whose offsets cannot be read is an error, never "no lag".
func groupLag(ctx context.Context, kc offsetsClient, topic, group string) (int64, error) {
	ids, err := partitions(ctx, kc, topic)
	if err != nil {
		return 0, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, p := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	// End offsets first, committed offsets second: a commit racing with this
	// check can only make the group look further behind, never ahead.
	lo, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	of, err := kc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return 0, fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
	}
	if of.Error != nil && !errors.Is(of.Error, kafka.GroupIdNotFound) {
		// (A group that never committed is "not found" on some brokers and
		// has no offsets on others: both mean lag from the first offset.)
		return 0, fmt.Errorf("fetch committed offsets of group %q: %w", group, of.Error)
	}
	committed := make(map[int]int64, len(ids))
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("committed offset of group %q on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	ends := make(map[int]kafka.PartitionOffsets, len(ids))
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		ends[p.Partition] = p
	}
	var lag int64
	for _, p := range ids {
		po, ok := ends[p]
		if !ok {
			return 0, fmt.Errorf("offsets of %s/%d: missing from the broker's answer", topic, p)
		}
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		pos := max(c, po.FirstOffset)
		if d := po.LastOffset - pos; d > 0 {
			lag += d
		}
	}
	return lag, nil
}
