package rewind

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/freshness"
)

// Client is what Rewind needs from a *kafka.Client.
type Client interface {
	freshness.Offsets
	DescribeGroups(ctx context.Context, req *kafka.DescribeGroupsRequest) (*kafka.DescribeGroupsResponse, error)
	OffsetCommit(ctx context.Context, req *kafka.OffsetCommitRequest) (*kafka.OffsetCommitResponse, error)
}

// ErrGroupActive is wrapped by Rewind's error for a group with members.
var ErrGroupActive = errors.New("the consumer group has members")

// Rewind commits, for group on every partition of topic, the offset of the
// first message the log still holds, and returns those offsets by
// partition. The group must have no members.
func Rewind(ctx context.Context, c Client, topic, group string) (map[int]int64, error) {
	dg, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, fmt.Errorf("describe consumer group %q: %w", group, err)
	}
	for _, g := range dg.Groups {
		if g.Error != nil && !errors.Is(g.Error, kafka.GroupIdNotFound) {
			return nil, fmt.Errorf("describe consumer group %q: %w", group, g.Error)
		}
		if len(g.Members) > 0 {
			var who []string
			for _, m := range g.Members {
				who = append(who, m.ClientHost+" "+m.ClientID)
			}
			slices.Sort(who)
			return nil, fmt.Errorf("consumer group %q (state %s): %w (%s): stop its consumers first", group, g.GroupState, ErrGroupActive, strings.Join(who, ", "))
		}
	}
	ids, err := freshness.Partitions(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, p := range ids {
		reqs[i] = kafka.FirstOffsetOf(p)
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %q: %w", topic, err)
	}
	to := make(map[int]int64, len(ids))
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		to[p.Partition] = p.FirstOffset
	}
	commits := make([]kafka.OffsetCommit, 0, len(ids))
	for _, p := range ids {
		off, ok := to[p]
		if !ok {
			return nil, fmt.Errorf("offsets of %s/%d: missing from the broker's answer", topic, p)
		}
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: off})
	}
	resp, err := c.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: commits}})
	if err != nil {
		return nil, fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("commit offset of group %q on %s/%d: %w", group, topic, p.Partition, p.Error)
		}
	}
	return to, nil
}
