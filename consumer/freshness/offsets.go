package freshness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Offsets is what the lag check needs from a *kafka.Client.
type Offsets interface {
	Metadata(ctx context.Context, req *kafka.MetadataRequest) (*kafka.MetadataResponse, error)
	ListOffsets(ctx context.Context, req *kafka.ListOffsetsRequest) (*kafka.ListOffsetsResponse, error)
	OffsetFetch(ctx context.Context, req *kafka.OffsetFetchRequest) (*kafka.OffsetFetchResponse, error)
}

// ErrTopicMissing is returned by Partitions for a topic the cluster does not
// have.
var ErrTopicMissing = errors.New("does not exist")

// Partitions lists the partition ids of topic; a topic the cluster does not
// have is ErrTopicMissing.
func Partitions(ctx context.Context, kc Offsets, topic string) ([]int, error) {
	md, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of topic %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q %w", topic, ErrTopicMissing)
		}
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of topic %q: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return nil, fmt.Errorf("topic %q %w", topic, ErrTopicMissing)
		}
		ids := make([]int, len(t.Partitions))
		for i, p := range t.Partitions {
			ids[i] = p.ID
		}
		return ids, nil
	}
	return nil, fmt.Errorf("topic %q %w", topic, ErrTopicMissing)
}

// partitionOffsets is what one lag check read of one partition.
type partitionOffsets struct {
	first, end int64 // the log's first offset and end offset (the next to be written)
	committed  int64 // the group's committed offset (the next to read), -1 if none
}

// pos is where the group stands in the partition: its committed offset, or
// the first offset where it has committed nothing or less than what
// retention kept.
func (o partitionOffsets) pos() int64 { return max(o.committed, o.first) }

// lag is how many messages of the partition the group has not committed.
func (o partitionOffsets) lag() int64 { return max(o.end-o.pos(), 0) }

// totalLag sums the lag of every partition.
func totalLag(offs map[int]partitionOffsets) int64 {
	var lag int64
	for _, o := range offs {
		lag += o.lag()
	}
	return lag
}

// groupOffsets reads, per partition of topic, the first and end offsets
// and then the group's committed offset: what kafka-go's Lag cannot tell in
// group mode. The end offsets are listed before the committed offsets are
// fetched, so a commit racing with the read can only make the group look
// further behind, never ahead. A partition whose offsets cannot be read is
// an error, never "no lag".
func groupOffsets(ctx context.Context, kc Offsets, topic, group string) (map[int]partitionOffsets, error) {
	ids, err := Partitions(ctx, kc, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, p := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	of, err := kc.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets of group %q: %w", group, err)
	}
	if of.Error != nil && !errors.Is(of.Error, kafka.GroupIdNotFound) {
		// (A group that never committed is "not found" on some brokers and
		// has no offsets on others: both mean lag from the first offset.)
		return nil, fmt.Errorf("fetch committed offsets of group %q: %w", group, of.Error)
	}
	committed := make(map[int]int64, len(ids))
	for _, p := range of.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("committed offset of group %q on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	listed := make(map[int]kafka.PartitionOffsets, len(ids))
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		listed[p.Partition] = p
	}
	out := make(map[int]partitionOffsets, len(ids))
	for _, p := range ids {
		po, ok := listed[p]
		if !ok {
			return nil, fmt.Errorf("offsets of %s/%d: missing from the broker's answer", topic, p)
		}
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		out[p] = partitionOffsets{first: po.FirstOffset, end: po.LastOffset, committed: c}
	}
	return out, checkCommittedWithinLog(ctx, kc, topic, group, out)
}

// ErrCommittedPastEnd means the group's committed offset lies beyond the end
// of a partition's log: the topic was deleted and re-created under the same
// name, or an unclean leader election truncated it. The group can read
// nothing there, so the store must not be reported current; an operator
// resets the group's offsets (the replay is idempotent).
var ErrCommittedPastEnd = errors.New("committed offset past the end of the log")

// checkCommittedWithinLog fails when a committed offset is past the end of
// its partition. Ends are listed before commits are fetched, so a commit
// racing with the read can pass the listed end; such a partition is listed
// again before it counts as broken.
func checkCommittedWithinLog(ctx context.Context, kc Offsets, topic, group string, offs map[int]partitionOffsets) error {
	var suspect []kafka.OffsetRequest
	for p, o := range offs {
		if o.committed > o.end {
			suspect = append(suspect, kafka.LastOffsetOf(p))
		}
	}
	if len(suspect) == 0 {
		return nil
	}
	lo, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: suspect}})
	if err != nil {
		return fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	for _, po := range lo.Topics[topic] {
		if po.Error != nil {
			return fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if c := offs[po.Partition].committed; c > po.LastOffset {
			return fmt.Errorf("group %q on %s/%d: committed %d, log ends at %d: %w", group, topic, po.Partition, c, po.LastOffset, ErrCommittedPastEnd)
		}
	}
	return nil
}

// watermark is a point the tracker waits for the group to reach: the time
// a check started and the end offset of every partition listed after it.
// Every message produced before t has an offset below its partition's
// recorded end, so once the group has committed up to every recorded end,
// everything produced before t is in Redis, however many messages arrived
// since.
type watermark struct {
	t    time.Time
	ends map[int]int64
}

// newWatermark records the end offsets of offs, read after t.
func newWatermark(t time.Time, offs map[int]partitionOffsets) *watermark {
	ends := make(map[int]int64, len(offs))
	for p, o := range offs {
		ends[p] = o.end
	}
	return &watermark{t: t, ends: ends}
}

// remaining is how many messages below the recorded ends the group has not
// committed, per offs (read later); ok is false when the partitions differ
// (partitions were added: the watermark cannot vouch for them).
func (w *watermark) remaining(offs map[int]partitionOffsets) (n int64, ok bool) {
	if len(offs) != len(w.ends) {
		return 0, false
	}
	for p, end := range w.ends {
		o, found := offs[p]
		if !found {
			return 0, false
		}
		n += max(end-o.pos(), 0)
	}
	return n, true
}
