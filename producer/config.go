package producer

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/pkg/kafkaconf"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/schema"
)

// DefaultTopic is the membership topic.
const DefaultTopic = kafkaconf.DefaultTopic

// Config is the producer's deployment configuration: where to publish and
// how. Start from DefaultConfig; every field is a flag (and environment
// variable) of the sync command.
type Config struct {
	// KafkaBrokers are the bootstrap brokers (host:port). Required.
	KafkaBrokers []string
	// Topic receives the membership events. Default DefaultTopic.
	Topic string
	// TopicPartitions is used when the topic is created. Default 12.
	TopicPartitions int
	// TopicReplicationFactor is used when the topic is created. Default 1,
	// which fits a single broker; production clusters want 3.
	TopicReplicationFactor int
	// TopicCompact sets cleanup.policy=compact on a topic it creates, so
	// the topic keeps the latest event of every membership for replays.
	// Default true.
	TopicCompact bool
	// StateDir holds each segment's committed snapshot and sync state.
	// Default "./cohortsync-state". Losing it makes the next sync publish
	// the whole cohort as adds and miss the removals since the last sync.
	StateDir string
	// ExclusionsFile is where the excluded rows of a run are listed. Default
	// "": exclusions-<run>.csv in the segment's state directory. Written only
	// when a row is excluded; a run with no exclusion removes a stale report
	// left at a fixed path, so the file always describes the last run.
	ExclusionsFile string
	// ExclusionsKeep is how many per-run exclusion reports (the default
	// path) are kept per segment; older ones are deleted after a successful
	// run, so an hourly sync does not grow the state directory forever.
	// Default 48.
	ExclusionsKeep int
	// MaxShrink refuses a snapshot that has lost more than this fraction of
	// the last synced snapshot's members (0.5: half), before anything is
	// staged or published: a truncated export otherwise looks exactly like
	// members leaving. 0 turns the guard off. Default 0; rerun with 0 to
	// accept a real drop.
	MaxShrink float64
	// Logger receives retries and other operational events. Default
	// slog.Default().
	Logger *slog.Logger
	// TracerProvider makes each run's "sync" span. Default none (no-op).
	TracerProvider trace.TracerProvider
	// Propagator writes the run's trace context into every event's headers,
	// so the consumer's spans link back to the run. Default none.
	Propagator TraceInjector
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
	// SendBatch is the number of events handed to one WriteMessages call.
	// Default 20000.
	SendBatch int
	// InFlight is the number of concurrent WriteMessages calls. Default 4.
	InFlight int
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// RetryMaxElapsed bounds the retries of a failed write (transient
	// errors only), and of the topic creation. Default 2m.
	RetryMaxElapsed time.Duration
	// SortChunkBytes is the memory budget of the snapshot sort (see
	// snapshot.SortOptions). Default 64 MiB.
	SortChunkBytes int64
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Topic:                  DefaultTopic,
		TopicPartitions:        12,
		TopicReplicationFactor: 1,
		TopicCompact:           true,
		StateDir:               "./cohortsync-state",
		BatchSize:              4000,
		BatchBytes:             1 << 20,
		BatchTimeout:           5 * time.Millisecond,
		Compression:            "lz4",
		SendBatch:              20000,
		InFlight:               4,
		WriteTimeout:           10 * time.Second,
		RetryMaxElapsed:        2 * time.Minute,
		SortChunkBytes:         snapshot.DefaultChunkBytes,
		ExclusionsKeep:         48,
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
	errs = append(errs, kafkaconf.CheckBrokers("kafka-brokers", c.KafkaBrokers)...)
	if !kafkaconf.ValidTopic(c.Topic) {
		bad("topic", c.Topic, "%s", kafkaconf.TopicForm)
	} else if !kafkaconf.ValidTopic(kafkaconf.DeadLetterTopic(c.Topic)) {
		bad("topic", c.Topic, "at most 245 characters, so that its dead-letter topic %s fits Kafka's 249", kafkaconf.DeadLetterTopic("<topic>"))
	}
	if c.TopicPartitions < 1 {
		bad("topic-partitions", c.TopicPartitions, "an integer >= 1")
	}
	if c.TopicReplicationFactor < 1 || c.TopicReplicationFactor > 32767 {
		bad("topic-replication-factor", c.TopicReplicationFactor, "an integer between 1 and 32767")
	}
	if c.StateDir == "" {
		errs = append(errs, setting.Missing("state-dir", "a directory path"))
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
	if c.SortChunkBytes < snapshot.MinChunkBytes || c.SortChunkBytes > snapshot.MaxChunkBytes {
		bad("sort-chunk-bytes", c.SortChunkBytes, "an integer between %d and %d", snapshot.MinChunkBytes, snapshot.MaxChunkBytes)
	}
	if c.MaxShrink < 0 || c.MaxShrink >= 1 {
		bad("max-shrink", c.MaxShrink, "a fraction in [0, 1), 0 for off")
	}
	if c.ExclusionsKeep < 1 {
		bad("exclusions-keep", c.ExclusionsKeep, "an integer >= 1")
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

// SyncRequest is one snapshot to sync: which segment, and the CSV.
type SyncRequest struct {
	Env         string // environment (selects the Redis prefix downstream)
	Segment     string // segment key, e.g. "amplitude-7khm89cz"
	Generation  int    // segment generation, >= 1; 0 means the default, 1
	ContextKind string // default "user"
	IDColumn    string // CSV column of the context key; default "user_id"
	Source      string // recorded in every event; default "csv"
	Input       io.Reader
	InputName   string // for messages, e.g. the file path
}

func (r *SyncRequest) applyDefaults() {
	if r.Generation == 0 {
		r.Generation = 1
	}
	if r.ContextKind == "" {
		r.ContextKind = "user"
	}
	if r.IDColumn == "" {
		r.IDColumn = cohortcsv.DefaultIDColumn
	}
	if r.Source == "" {
		r.Source = "csv"
	}
}

// Validate reports every invalid field as a *setting.Error named after
// its flag. Empty ContextKind, IDColumn and Source take their defaults.
func (r SyncRequest) Validate() error {
	r.applyDefaults()
	var errs []error
	for _, f := range [...]struct{ name, v string }{
		{"env", r.Env}, {"segment", r.Segment}, {"context-kind", r.ContextKind}, {"source", r.Source},
	} {
		switch {
		case f.v == "":
			errs = append(errs, setting.Missing(f.name, "%s", schema.IdentifierForm))
		case schema.CheckIdentifier(f.v) != nil:
			errs = append(errs, setting.Invalid(f.name, f.v, "%s (%v)", schema.IdentifierForm, schema.CheckIdentifier(f.v)))
		case f.name != "source" && strings.IndexByte(f.v, 0x1f) >= 0:
			errs = append(errs, setting.Invalid(f.name, f.v, "no unit separator 0x1f (it separates the message key's parts)"))
		}
	}
	if r.Generation < 1 {
		errs = append(errs, setting.Invalid("generation", r.Generation, "an integer >= 1"))
	}
	if r.Input == nil {
		errs = append(errs, setting.Missing("csv", "a cohort CSV file, plain or gzip"))
	}
	return errors.Join(errs...)
}
