package producer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/pkg/kafkaconf"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/pkg/envflag"
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

// Validate reports every invalid setting, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, a...)))
	}
	for _, e := range kafkaconf.CheckBrokers(c.KafkaBrokers) {
		bad("kafka-brokers", "%v", e)
	}
	if err := kafkaconf.CheckTopic(c.Topic); err != nil {
		bad("topic", "%v", err)
	} else if err := kafkaconf.CheckTopic(kafkaconf.DeadLetterTopic(c.Topic)); err != nil {
		bad("topic", "its dead-letter topic: %v", err) // 246+ characters
	}
	if c.TopicPartitions < 1 {
		bad("topic-partitions", "must be >= 1, got %d", c.TopicPartitions)
	}
	if c.TopicReplicationFactor < 1 || c.TopicReplicationFactor > 32767 {
		bad("topic-replication-factor", "must be between 1 and 32767, got %d", c.TopicReplicationFactor)
	}
	if c.StateDir == "" {
		bad("state-dir", "required")
	}
	if c.BatchSize < 1 {
		bad("batch-size", "must be >= 1, got %d", c.BatchSize)
	}
	if c.BatchBytes < minBatchBytes || c.BatchBytes > maxBatchBytes {
		bad("batch-bytes", "must be between %d and %d, got %d", minBatchBytes, maxBatchBytes, c.BatchBytes)
	}
	if c.BatchTimeout < time.Millisecond || c.BatchTimeout > time.Second {
		bad("batch-timeout", "must be between 1ms and 1s, got %v", c.BatchTimeout)
	}
	if _, ok := compressions[c.Compression]; !ok {
		bad("compression", "%q is not one of none, gzip, snappy, lz4, zstd", c.Compression)
	}
	if c.SendBatch < 1 {
		bad("send-batch", "must be >= 1, got %d", c.SendBatch)
	}
	if c.InFlight < 1 || c.InFlight > maxInFlight {
		bad("in-flight", "must be between 1 and %d, got %d", maxInFlight, c.InFlight)
	}
	if c.WriteTimeout < time.Second {
		bad("write-timeout", "must be >= 1s, got %v", c.WriteTimeout)
	}
	if c.RetryMaxElapsed < time.Second {
		bad("retry-max-elapsed", "must be >= 1s, got %v", c.RetryMaxElapsed)
	}
	if c.SortChunkBytes < snapshot.MinChunkBytes || c.SortChunkBytes > snapshot.MaxChunkBytes {
		bad("sort-chunk-bytes", "must be between %d and %d, got %d", snapshot.MinChunkBytes, snapshot.MaxChunkBytes, c.SortChunkBytes)
	}
	if c.MaxShrink < 0 || c.MaxShrink >= 1 {
		bad("max-shrink", "must be in [0, 1), got %v", c.MaxShrink)
	}
	if c.ExclusionsKeep < 1 {
		bad("exclusions-keep", "must be >= 1, got %d", c.ExclusionsKeep)
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

// RegisterFlags defines c's flags on fs, with c's current values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	brokers := (*envflag.StringList)(&c.KafkaBrokers)
	fs.Var(brokers, "kafka-brokers", "Kafka bootstrap brokers, comma-separated host:port (required)")
	fs.StringVar(&c.Topic, "topic", c.Topic, "topic receiving the membership events")
	fs.IntVar(&c.TopicPartitions, "topic-partitions", c.TopicPartitions, "partitions of the topic when it is created")
	fs.IntVar(&c.TopicReplicationFactor, "topic-replication-factor", c.TopicReplicationFactor,
		"replication factor of the topic when it is created (production: 3)")
	fs.BoolVar(&c.TopicCompact, "topic-compact", c.TopicCompact, "create the topic with cleanup.policy=compact")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory of the committed snapshots and sync state")
	fs.StringVar(&c.ExclusionsFile, "exclusions-file", c.ExclusionsFile,
		"CSV report of excluded rows (default exclusions-<run>.csv in the segment's directory under --state-dir)")
	fs.Float64Var(&c.MaxShrink, "max-shrink", c.MaxShrink,
		"refuse a snapshot that lost more than this fraction of the last one's members, e.g. 0.5 (0: off)")
	fs.IntVar(&c.ExclusionsKeep, "exclusions-keep", c.ExclusionsKeep, "per-run exclusion reports kept per segment (default path only)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most messages per produce batch and partition")
	fs.Int64Var(&c.BatchBytes, "batch-bytes", c.BatchBytes, "most bytes per produce batch and partition, before compression")
	fs.DurationVar(&c.BatchTimeout, "batch-timeout", c.BatchTimeout, "how long a partial produce batch waits for more messages")
	fs.StringVar(&c.Compression, "compression", c.Compression, "produce compression: none, gzip, snappy, lz4, zstd")
	fs.IntVar(&c.SendBatch, "send-batch", c.SendBatch, "events per WriteMessages call")
	fs.IntVar(&c.InFlight, "in-flight", c.InFlight, "concurrent WriteMessages calls")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "timeout of one produce request")
	fs.DurationVar(&c.RetryMaxElapsed, "retry-max-elapsed", c.RetryMaxElapsed, "give up retrying a transient Kafka error after this long")
	fs.Int64Var(&c.SortChunkBytes, "sort-chunk-bytes", c.SortChunkBytes, "memory budget of the snapshot sort, in bytes")
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

// Validate reports every invalid field, each naming its flag. Empty
// ContextKind, IDColumn and Source take their defaults.
func (r SyncRequest) Validate() error {
	r.applyDefaults()
	var errs []error
	for _, f := range [...]struct{ flag, v string }{
		{"env", r.Env}, {"segment", r.Segment}, {"context-kind", r.ContextKind}, {"source", r.Source},
	} {
		if err := schema.CheckIdentifier(f.v); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.flag, err))
		} else if f.flag != "source" && strings.IndexByte(f.v, 0x1f) >= 0 {
			errs = append(errs, fmt.Errorf("--%s: contains the unit separator 0x1f", f.flag))
		}
	}
	if r.Generation < 1 {
		errs = append(errs, fmt.Errorf("--generation: must be >= 1, got %d", r.Generation))
	}
	if r.Input == nil {
		errs = append(errs, errors.New("--csv: required"))
	}
	return errors.Join(errs...)
}
