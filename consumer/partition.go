package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/retry"
)

// partitionFetcher reads one partition with fetch requests of its own, a
// whole response at a time: a response holds thousands of messages, which
// kafka-go decodes in one pass into pages it pools (keys and values are
// copied out of them into an arena), where a kafka.Reader hands each
// message through a channel with its key and value allocated one by one
// (BENCHMARKS.md). It is used by one goroutine.
type partitionFetcher struct {
	client    *kafka.Client // PartitionClient: a connection of its own
	topic     string
	partition int
	// offset is the next offset to read; kafka.FirstOffset until a
	// message was read from a partition without a committed offset.
	offset   int64
	maxBytes int64
	maxWait  time.Duration
	log      *slog.Logger

	// arena is where message keys and values are copied: one allocation
	// for many messages. A message keeps its block alive while it is used.
	arena []byte
}

// Fetch settings of a partitionFetcher.
const (
	// fetchMaxBytes bounds one response, counted as Kafka stores it
	// (compressed; a single larger record batch still comes whole).
	// kafka-go decodes a whole response before its first record is read:
	// a small one is still in the CPU's cache when its records are
	// decoded here (BenchmarkFetch: 256 KiB about 5% less CPU per event
	// than 1 MiB, and a quarter of the memory per partition).
	fetchMaxBytes = 256 << 10
	// fetchMaxWait bounds an idle long poll: a response comes as soon as a
	// message arrives.
	fetchMaxWait = 500 * time.Millisecond
	// fetchTimeout bounds one fetch request, long poll included.
	fetchTimeout = 10 * time.Second
	// arenaBlock is the size of a fresh arena block.
	arenaBlock = 256 << 10
)

// partitionSource returns the source of partition from offset, and the
// func that closes its connections once its fetcher has returned.
func (c *Consumer) partitionSource(partition int, offset int64) (source, func()) {
	client, closeClient := c.kf.PartitionClient(c.cfg.Topic, fetchTimeout)
	return source{partition: partition, f: &partitionFetcher{
		client: client, topic: c.cfg.Topic, partition: partition, offset: offset,
		maxBytes: fetchMaxBytes, maxWait: fetchMaxWait, log: c.log,
	}}, closeClient
}

// Fetch implements fetcher: one fetch request from the fetcher's offset.
// A broker error that retrying cannot mend (authorization, say) is
// permanent. An offset out of the partition's range moves the offset, see
// outOfRange.
func (f *partitionFetcher) Fetch(ctx context.Context, each func(*kafka.Message) error) error {
	res, err := f.client.Fetch(ctx, &kafka.FetchRequest{
		Topic:     f.topic,
		Partition: f.partition,
		Offset:    f.offset,
		MinBytes:  1,
		MaxBytes:  f.maxBytes,
		MaxWait:   f.maxWait,
	})
	if err == nil {
		err = res.Error
	}
	if errors.Is(err, kafka.OffsetOutOfRange) {
		return f.outOfRange(ctx)
	}
	if err != nil {
		return classifyFetch(err)
	}
	m := kafka.Message{Topic: f.topic, Partition: f.partition, HighWaterMark: res.HighWatermark}
	for {
		rec, err := res.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read record batch at offset %d: %w", f.offset, err)
		}
		if rec.Offset < f.offset && f.offset >= 0 {
			// A response starts with the record batch holding the offset
			// asked for, so it may begin before it.
			closeBytes(rec)
			continue
		}
		m.Offset, m.Time, m.Headers = rec.Offset, rec.Time, rec.Headers
		m.Key, m.Value = f.copy(rec.Key), f.copy(rec.Value)
		closeBytes(rec)
		if err := each(&m); err != nil {
			return err
		}
		f.offset = rec.Offset + 1
	}
}

// copy returns b's bytes in the arena, nil for a null b.
func (f *partitionFetcher) copy(b kafka.Bytes) []byte {
	if b == nil {
		return nil
	}
	n := b.Len()
	if n > len(f.arena) {
		f.arena = make([]byte, max(n, arenaBlock))
	}
	dst := f.arena[:n:n]
	f.arena = f.arena[n:]
	// A page reference reads from memory: it fails only past its end,
	// which n rules out.
	_, _ = io.ReadFull(b, dst)
	return dst
}

// closeBytes hands a record's pages back to kafka-go's pool once their
// bytes are copied.
func closeBytes(rec *kafka.Record) {
	if rec.Key != nil {
		_ = rec.Key.Close() // releases memory: cannot fail
	}
	if rec.Value != nil {
		_ = rec.Value.Close()
	}
}

// outOfRange handles the broker's answer that the fetcher's offset is not
// in the partition: retention deleted the records from it on (it is below
// the first offset: they are gone, reading goes on from the first one), or
// the partition's log was cut below it (an unclean leader election, a
// topic deleted and created again: the partition is read again from its
// first offset, which re-applies memberships, harmlessly). Either is
// logged. It returns an error (to retry) only when the offsets cannot be
// listed; an offset that is in range again (the log moved meanwhile) is
// simply fetched again.
func (f *partitionFetcher) outOfRange(ctx context.Context) error {
	first, err := f.listOffset(ctx, kafka.FirstOffset)
	if err != nil {
		return err
	}
	last, err := f.listOffset(ctx, kafka.LastOffset)
	if err != nil {
		return err
	}
	switch {
	case f.offset < first:
		f.log.Warn("the partition's records from the consumer's offset on were deleted by retention before they were applied; reading on from its first offset",
			"partition", f.partition, "offset", f.offset, "first_offset", first, "skipped", first-f.offset)
	case f.offset > last:
		f.log.Warn("the consumer's offset is past the end of the partition (its log was truncated, or the topic created again); reading it again from its first offset",
			"partition", f.partition, "offset", f.offset, "first_offset", first, "end_offset", last)
	default:
		return nil
	}
	f.offset = first
	return nil
}

// listOffset returns the partition's first or end offset (at is
// kafka.FirstOffset or kafka.LastOffset).
func (f *partitionFetcher) listOffset(ctx context.Context, at int64) (int64, error) {
	res, err := f.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{f.topic: {{Partition: f.partition, Timestamp: at}}},
	})
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", classifyFetch(err))
	}
	for _, p := range res.Topics[f.topic] {
		if p.Partition != f.partition {
			continue
		}
		if p.Error != nil {
			return 0, fmt.Errorf("list offsets: %w", classifyFetch(p.Error))
		}
		if at == kafka.FirstOffset {
			return p.FirstOffset, nil
		}
		return p.LastOffset, nil
	}
	return 0, fmt.Errorf("list offsets: no answer for partition %d", f.partition)
}

// classifyFetch marks permanent the broker errors that Kafka does not
// document as retriable (authorization, an invalid request): retrying
// cannot mend them. Everything else is retried, timeouts included: unlike
// kafkax.Classify, a request timing out here is the fetch's own bound, not
// the caller giving up.
func classifyFetch(err error) error {
	var kerr kafka.Error
	if errors.As(err, &kerr) && !kerr.Temporary() && !kerr.Timeout() {
		return retry.Permanent(err)
	}
	return err
}
