package rewind

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/retry"
)

// Client is what Rewind needs from a *kafka.Client.
type Client interface {
	freshness.Offsets
	GroupDescriber
	OffsetCommit(ctx context.Context, req *kafka.OffsetCommitRequest) (*kafka.OffsetCommitResponse, error)
}

// GroupDescriber is what Stopped needs from a *kafka.Client.
type GroupDescriber interface {
	DescribeGroups(ctx context.Context, req *kafka.DescribeGroupsRequest) (*kafka.DescribeGroupsResponse, error)
}

// ErrGroupActive is wrapped by Rewind's error for a group with members.
var ErrGroupActive = errors.New("the consumer group has members")

// ErrOutOfRange is wrapped by To's error for a partition the topic
// does not have or an offset outside its partition's log.
var ErrOutOfRange = errors.New("out of range")

// Rewind commits, for group on every partition of topic, the offset of the
// first message the log still holds, and returns those offsets by
// partition. The group must have no members.
func Rewind(ctx context.Context, c Client, topic, group string) (map[int]int64, error) {
	return To(ctx, c, topic, group, Start{})
}

// To commits, for group on topic, the offsets from says (see Start),
// and returns them by partition (only the partitions it moved). The group
// must have no members; from must be valid (Start.Validate). Nothing is
// committed when any partition or offset is out of range.
func To(ctx context.Context, c Client, topic, group string, from Start) (map[int]int64, error) {
	if err := Stopped(ctx, c, group); err != nil {
		return nil, err
	}
	var (
		ids        []int
		first, end map[int]int64
	)
	err := passing(ctx, "offsets of topic "+topic, func() (err error) {
		ids, first, end, err = freshness.Bounds(ctx, c, topic)
		return err
	})
	if err != nil {
		return nil, err
	}
	to := make(map[int]int64, len(ids))
	switch {
	case !from.Time.IsZero():
		if to, err = byTime(ctx, c, topic, ids, from, end); err != nil {
			return nil, err
		}
	case len(from.Offsets) > 0:
		if to, err = byOffset(topic, ids, from, first, end); err != nil {
			return nil, err
		}
	default:
		for _, p := range ids {
			to[p] = first[p]
		}
	}
	commits := make([]kafka.OffsetCommit, 0, len(to))
	for _, p := range ids {
		if off, ok := to[p]; ok {
			commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: off})
		}
	}
	err = passing(ctx, fmt.Sprintf("commit offsets of group %q", group), func() error {
		resp, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: commits}})
		if err != nil {
			return err
		}
		for _, p := range resp.Topics[topic] {
			if p.Error != nil {
				return fmt.Errorf("on %s/%d: %w", topic, p.Partition, p.Error)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return to, nil
}

// passingWait bounds the retries of a request while the broker answers
// that its partition leader or group coordinator is moving.
const passingWait = 30 * time.Second

// passing runs op again while the broker answers with an error Kafka
// documents as passing (a partition leader or group coordinator moving or
// loading: a fresh topic or cluster, a broker restart), for up to
// passingWait; what names the request in the error.
func passing(ctx context.Context, what string, op func() error) error {
	return retry.Do(ctx, retry.Policy{Timeout: passingWait}, what, func() error {
		err := op()
		var kerr kafka.Error
		if err != nil && (!errors.As(err, &kerr) || !kerr.Temporary()) {
			return retry.Permanent(err)
		}
		return err
	}, nil)
}

// Stopped fails, wrapping ErrGroupActive and naming the members, while
// group has members: a running consumer would commit its own offsets over
// a rewind, or write over a rebuild.
func Stopped(ctx context.Context, c GroupDescriber, group string) error {
	var dg *kafka.DescribeGroupsResponse
	err := passing(ctx, fmt.Sprintf("describe consumer group %q", group), func() (err error) {
		if dg, err = c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}}); err != nil {
			return err
		}
		for _, g := range dg.Groups {
			if g.Error != nil && !errors.Is(g.Error, kafka.GroupIdNotFound) {
				return g.Error
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, g := range dg.Groups {
		if len(g.Members) > 0 {
			var who []string
			for _, m := range g.Members {
				who = append(who, m.ClientHost+" "+m.ClientID)
			}
			slices.Sort(who)
			return fmt.Errorf("consumer group %q (state %s): %w (%s): stop its consumers first", group, g.GroupState, ErrGroupActive, strings.Join(who, ", "))
		}
	}
	return nil
}

// byOffset checks the offsets of from against the partitions' logs.
func byOffset(topic string, ids []int, from Start, first, end map[int]int64) (map[int]int64, error) {
	to := map[int]int64{}
	if off, all := from.Offsets[AllPartitions]; all {
		for _, p := range ids {
			to[p] = off
		}
	} else {
		for p, off := range from.Offsets {
			if !slices.Contains(ids, p) {
				return nil, fmt.Errorf("partition %d: topic %q has partitions 0 to %d: %w", p, topic, slices.Max(ids), ErrOutOfRange)
			}
			to[p] = off
		}
	}
	var errs []error
	for _, p := range ids {
		if off, ok := to[p]; ok && (off < first[p] || off > end[p]) {
			errs = append(errs, errOffsetOutside(topic, p, off, first[p], end[p]))
		}
	}
	return to, errors.Join(errs...)
}

// byTime lists, per partition, the offset of the first message produced
// at or after from.Time; a partition with none moves to its end.
func byTime(ctx context.Context, c freshness.Offsets, topic string, ids []int, from Start, end map[int]int64) (map[int]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, p := range ids {
		reqs[i] = kafka.TimeOffsetOf(p, from.Time)
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %q at %s: %w", topic, from.Time.UTC().Format("2006-01-02T15:04:05.999Z07:00"), err)
	}
	to := make(map[int]int64, len(ids))
	for _, po := range lo.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offset of %s/%d at %s: %w", topic, po.Partition, from.Time.UTC().Format("2006-01-02T15:04:05.999Z07:00"), po.Error)
		}
		for off := range po.Offsets {
			if off >= 0 {
				to[po.Partition] = off
			}
		}
	}
	for _, p := range ids {
		if _, ok := to[p]; !ok {
			to[p] = end[p] // nothing produced since
		}
	}
	return to, nil
}
