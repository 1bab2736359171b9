package publish

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// DefaultTopic is the membership topic.
const DefaultTopic = kafkax.DefaultTopic

// Config says where events are published and how. Start from
// DefaultConfig. The names in Validate's errors are the flags of the sync
// command. The brokers and how to reach them are the kafkax.Factory's that
// New takes.
type Config struct {
	// Topic receives the membership events. Default DefaultTopic.
	Topic string
	// Propagator writes the trace context of the ctx given to Stream into
	// every event's headers, so the consumer's spans link back to the run
	// that published them. Default none.
	Propagator TraceInjector
	// TopicPartitions is used when the topic is created. Default 12.
	TopicPartitions int
	// TopicReplicationFactor is used when the topic is created. Default 1,
	// which fits a single broker; production clusters want 3.
	TopicReplicationFactor int
	// TopicCompact sets cleanup.policy=compact on a topic it creates, so
	// the topic keeps the latest event of every membership for replays.
	// Default true.
	TopicCompact bool
	// BatchSize is the most messages in one produce batch per partition.
	// Default 4000.
	BatchSize int
	// BatchBytes is the most bytes in one produce batch per partition,
	// before compression. Default 1 MiB, the brokers' default
	// message.max.bytes.
	BatchBytes int64
	// BatchTimeout is how long a partial batch waits for more messages.
	// Default 5ms (kafka-go's own default of 1s would stall every call).
	BatchTimeout time.Duration
	// Compression of produce batches: none, gzip, snappy, lz4 or zstd.
	// Default lz4.
	Compression string
	// SendBatch is the most events a caller hands to one Stream.Send, which
	// is one WriteMessages call. Default 10000: InFlight × SendBatch encoded
	// events are what a first sync holds while publishing, and at 20000 its
	// peak RSS was 250 MiB against 180 MiB at 10000, for no measurable
	// throughput (BENCHMARKS.md, issue 12).
	SendBatch int
	// InFlight is the number of concurrent WriteMessages calls of a
	// Stream. Default 4.
	InFlight int
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// RetryMaxElapsed bounds the retries of a failed write (transient
	// errors only), and of the topic creation. Default 2m.
	RetryMaxElapsed time.Duration
	// Logger receives retries. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Topic:                  DefaultTopic,
		TopicPartitions:        12,
		TopicReplicationFactor: 1,
		TopicCompact:           true,
		BatchSize:              4000,
		BatchBytes:             1 << 20,
		BatchTimeout:           5 * time.Millisecond,
		Compression:            "lz4",
		SendBatch:              10000,
		InFlight:               4,
		WriteTimeout:           10 * time.Second,
		RetryMaxElapsed:        2 * time.Minute,
	}
}

// Bounds checked by Validate.
const (
	minBatchBytes = 64 << 10
	maxBatchBytes = 64 << 20
	maxInFlight   = 64
)

var compressions = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// Validate reports every invalid setting as a *setting.Error naming it.
func (c Config) Validate() error {
	var errs []error
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	if !kafkax.ValidTopic(c.Topic) {
		bad("topic", c.Topic, "%s", kafkax.TopicForm)
	} else if !kafkax.ValidTopic(kafkax.DeadLetterTopic(c.Topic)) {
		bad("topic", c.Topic, "at most 245 characters, so that its dead-letter topic %s fits Kafka's 249", kafkax.DeadLetterTopic("<topic>"))
	}
	if c.TopicPartitions < 1 {
		bad("topic-partitions", c.TopicPartitions, "an integer >= 1")
	}
	if c.TopicReplicationFactor < 1 || c.TopicReplicationFactor > 32767 {
		bad("topic-replication-factor", c.TopicReplicationFactor, "an integer between 1 and 32767")
	}
	if c.BatchSize < 1 {
		bad("batch-size", c.BatchSize, "an integer >= 1")
	}
	if c.BatchBytes < minBatchBytes || c.BatchBytes > maxBatchBytes {
		bad("batch-bytes", c.BatchBytes, "an integer between %d and %d", minBatchBytes, maxBatchBytes)
	}
	if c.BatchTimeout < time.Millisecond || c.BatchTimeout > time.Second {
		bad("batch-timeout", c.BatchTimeout, "a duration between 1ms and 1s")
	}
	if _, ok := compressions[c.Compression]; !ok {
		bad("compression", c.Compression, "one of none, gzip, snappy, lz4, zstd")
	}
	if c.SendBatch < 1 {
		bad("send-batch", c.SendBatch, "an integer >= 1")
	}
	if c.InFlight < 1 || c.InFlight > maxInFlight {
		bad("in-flight", c.InFlight, "an integer between 1 and %d", maxInFlight)
	}
	if c.WriteTimeout < time.Second {
		bad("write-timeout", c.WriteTimeout, "a duration >= 1s")
	}
	if c.RetryMaxElapsed < time.Second {
		bad("retry-max-elapsed", c.RetryMaxElapsed, "a duration >= 1s")
	}
	return errors.Join(errs...)
}

// logger returns Logger or the default one.
func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// TraceInjector writes a trace context into message headers;
// internal/telemetry adapts an OpenTelemetry propagator. Declared here so
// that publishing does not import the propagation package.
type TraceInjector interface {
	Inject(ctx context.Context, headers *[]kafka.Header)
}
