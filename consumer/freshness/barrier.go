package freshness

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Ends lists the end offset (the next to be written) of every partition of
// topic.
func Ends(ctx context.Context, kc Offsets, topic string) (map[int]int64, error) {
	ids, err := Partitions(ctx, kc, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, p := range ids {
		reqs[i] = kafka.LastOffsetOf(p)
	}
	lo, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	ends := make(map[int]int64, len(ids))
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		ends[p.Partition] = p.LastOffset
	}
	for _, p := range ids {
		if _, ok := ends[p]; !ok {
			return nil, fmt.Errorf("offsets of %s/%d: missing from the broker's answer", topic, p)
		}
	}
	return ends, nil
}

// Bounds lists the partitions of topic with the first offset each log
// still holds and its end offset (the next to be written).
func Bounds(ctx context.Context, kc Offsets, topic string) (ids []int, first, end map[int]int64, err error) {
	if ids, err = Partitions(ctx, kc, topic); err != nil {
		return nil, nil, nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ids))
	for _, p := range ids {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	lo, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	first, end = make(map[int]int64, len(ids)), make(map[int]int64, len(ids))
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, nil, nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		first[p.Partition], end[p.Partition] = p.FirstOffset, p.LastOffset
	}
	for _, p := range ids {
		if _, ok := first[p]; !ok {
			return nil, nil, nil, fmt.Errorf("offsets of %s/%d: missing from the broker's answer", topic, p)
		}
	}
	return ids, first, end, nil
}

// Barrier is what a consumer group must have committed for a run's events
// to be in Redis: per partition the run may have written to, the end
// offset listed after the run's last event was acknowledged. Every event
// of the run lies below its partition's barrier, so once the group's
// committed offsets reach the barrier on every partition, the run is
// applied, however many events arrived since.
//
// It is built from the ends listed before the run published anything and
// after its last acknowledgement (NewBarrier): a partition whose end did
// not move received nothing from the run, and is left out, so a stalled
// partition the run never touched does not hold it back. (A partition that
// only another writer moved meanwhile is kept: the barrier may wait a
// little longer than the run's own events need, never less.)
type Barrier map[int]int64

// NewBarrier is the barrier of a run that published between the listings
// before and after (Ends). A partition missing from before (added during
// the run) is kept.
func NewBarrier(before, after map[int]int64) Barrier {
	b := Barrier{}
	for p, end := range after {
		if prev, ok := before[p]; !ok || end > prev {
			b[p] = end
		}
	}
	return b
}

// Committed is where a consumer group stands on a topic, read once
// (ReadCommitted) to check any number of barriers against.
type Committed struct {
	topic string
	offs  map[int]partitionOffsets
}

// ReadCommitted reads the log ends and group's committed offsets of every
// partition of topic.
func ReadCommitted(ctx context.Context, kc Offsets, topic, group string) (Committed, error) {
	offs, err := groupOffsets(ctx, kc, topic, group)
	if err != nil {
		return Committed{}, err
	}
	return Committed{topic: topic, offs: offs}, nil
}

// Positions is, per partition, where the group stood when c was read:
// its committed offset, or the first offset the log holds where it
// committed nothing or less than retention kept.
func (c Committed) Positions() map[int]int64 {
	out := make(map[int]int64, len(c.offs))
	for p, o := range c.offs {
		out[p] = o.pos()
	}
	return out
}

// HasCommitted reports whether the group had committed an offset on any
// partition when c was read.
func (c Committed) HasCommitted() bool {
	for _, o := range c.offs {
		if o.committed >= 0 {
			return true
		}
	}
	return false
}

// Remaining is how many messages below the barrier the group had not
// committed when c was read (0: the run is applied). A partition of the
// barrier the topic no longer has, or a log that restarted below it (a
// topic re-created), is an error: the barrier can no longer vouch for the
// run.
func (b Barrier) Remaining(c Committed) (int64, error) {
	var n int64
	for p, end := range b {
		o, ok := c.offs[p]
		if !ok {
			return 0, fmt.Errorf("partition %s/%d of the run's events: no longer in the topic", c.topic, p)
		}
		if o.end < end {
			return 0, fmt.Errorf("partition %s/%d ends at %d, before the run's barrier %d: the topic was re-created", c.topic, p, o.end, end)
		}
		// Strictly the committed offset (not pos): events that retention
		// deleted before the group read them were never applied.
		n += max(end-max(o.committed, 0), 0)
	}
	return n, nil
}
