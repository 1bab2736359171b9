package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/kafkax"
)

// adminTimeout bounds one admin request to Kafka.
const adminTimeout = 30 * time.Second

// TopicMessages is how many messages topic's log holds (end minus first
// offset, over its partitions); exists is false for a topic the cluster
// does not have.
func TopicMessages(ctx context.Context, kf *kafkax.Factory, topic string) (n int64, exists bool, err error) {
	ids, first, end, err := freshness.Bounds(ctx, kf.Client(adminTimeout), topic)
	// A topic being deleted may still be listed, its partitions gone.
	if errors.Is(err, freshness.ErrTopicMissing) || errors.Is(err, kafka.UnknownTopicOrPartition) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	for _, p := range ids {
		n += end[p] - first[p]
	}
	return n, true, nil
}

// DeleteTopics deletes topics; one the cluster does not have is no error.
func DeleteTopics(ctx context.Context, kf *kafkax.Factory, topics ...string) error {
	resp, err := kf.Client(adminTimeout).DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", t, e))
		}
	}
	return errors.Join(errs...)
}

// DeleteGroup deletes a consumer group with no members left, so that a
// benchmark leaves no committed offsets behind; a group the cluster does
// not have is no error.
func DeleteGroup(ctx context.Context, kf *kafkax.Factory, group string) error {
	resp, err := kf.Client(adminTimeout).DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return fmt.Errorf("delete consumer group %s: %w", group, err)
	}
	if e := resp.Errors[group]; e != nil && !errors.Is(e, kafka.GroupIdNotFound) {
		return fmt.Errorf("delete consumer group %s: %w", group, e)
	}
	return nil
}
