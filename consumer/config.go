package consumer

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Config configures a Consumer. Every field but Logger, TracerProvider,
// Propagator and Observer (which the process wires) is a flag with an
// environment twin (internal/cli); the zero value of a field means its
// default, except where noted. The brokers and how to reach them are the
// kafkax.Factory's that New takes.
type Config struct {
	// Topic is the membership topic. Default "cohortsync.membership.v1".
	Topic string
	// GroupID is the Kafka consumer group. Default "cohortsync-consumer".
	GroupID string
	// DeadLetterTopic receives messages that cannot be applied. It must exist.
	// Default "<Topic>.dlq".
	DeadLetterTopic string

	// RedisPrefix is the key prefix of every environment not in EnvPrefixes.
	// Default "launchdarkly", the SDKs' default. Not used by NewWithRoutes,
	// whose routes name every prefix.
	RedisPrefix string
	// EnvPrefixes maps an event's environment to its own prefix, for a
	// deployment whose environments are read by SDKs with different
	// prefixes. Default none; must be none for NewWithRoutes.
	EnvPrefixes map[string]string

	// BatchSize is the most messages applied in one Redis pipeline and
	// committed together, per apply loop (Appliers). Default 10000: each
	// batch pays fixed round trips (offset commit, metadata script), but
	// with 4 loops 10000 measured as fast as 20000 for half the memory
	// (BENCHMARKS.md); a partial batch still waits at most FlushInterval.
	BatchSize int
	// FlushInterval is how long a batch waits for more messages after its
	// first one was fetched, when the apply loop is free to take it; while
	// the apply loop is busy, the batch goes on filling, up to BatchSize.
	// Default 20ms.
	FlushInterval time.Duration
	// Pipelines is how many Redis pipelines one batch is written in at
	// once per destination, split by context key (a key's events stay in
	// order in one of them); a batch under 2000 events is written in one.
	// Default 1: the Appliers already keep Redis busy, and more pipelines
	// per batch measured no faster beside them (BENCHMARKS.md).
	Pipelines int
	// Appliers is how many apply loops share the partitions assigned to
	// this member (dealt in partition order; at most one per partition),
	// each fetching, batching, writing and committing its own: a
	// partition's messages stay in order in one, and while one loop waits
	// for a Redis reply or an offset commit, the others write. Default 4,
	// the fastest measured on 2 cores (BENCHMARKS.md). Each has its own
	// Pipelines connections per destination and its own batch buffers
	// (a consumer with 4 loops peaked at about 520 MB of RSS applying at full
	// speed at the default batch size, 770–830 MB at 20000).
	Appliers int
	// SyncInterval is how often the group's offsets are checked and the
	// synchronized-on time moved to the newest watermark the group reached
	// (see package doc); it is also about how far synchronized_on trails
	// under a steady flow of events. Default 5s; at most 60s, well under the SDKs' 120s staleness
	// threshold, so one missed refresh does not make evaluators STALE.
	SyncInterval time.Duration
	// RetryTimeout bounds the retries of one transient failure (Redis down,
	// broker unavailable); when it passes, Run returns the error with the
	// batch uncommitted. Default 5m.
	RetryTimeout time.Duration
	// StartupTimeout bounds the retries of the checks Run makes before it
	// joins the group (Redis answers, the topics exist): a wrong address
	// fails the start within it, with the address and the cause, instead
	// of retrying for RetryTimeout. Default 15s.
	StartupTimeout time.Duration
	// ShutdownTimeout is how long the batches in flight may take to finish
	// (apply, dead-letter, commit) after the context is cancelled before it is
	// abandoned uncommitted (and logged). Run returns within it plus a
	// second, whatever still hangs. Default 10s.
	ShutdownTimeout time.Duration

	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the "apply batch" spans. Default none (no-op).
	TracerProvider trace.TracerProvider
	// Propagator reads the producers' trace context from message headers,
	// to link each batch's span to the sync runs it applies. Default none:
	// no links.
	Propagator TraceExtractor
	// Observer is told about every committed batch (metrics). Default none.
	Observer Observer
}

// Defaults.
const (
	DefaultTopic           = kafkax.DefaultTopic
	DefaultGroupID         = "cohortsync-consumer"
	DefaultBatchSize       = 10000
	DefaultFlushInterval   = 20 * time.Millisecond
	DefaultPipelines       = 1
	DefaultAppliers        = 4
	DefaultSyncInterval    = 5 * time.Second
	DefaultRetryTimeout    = 5 * time.Minute
	DefaultStartupTimeout  = 15 * time.Second
	DefaultShutdownTimeout = 10 * time.Second

	// MaxSyncInterval keeps two refreshes inside the SDKs' default staleAfter
	// of 120s.
	MaxSyncInterval = 60 * time.Second
	// MaxBatchSize bounds the memory of one batch and one pipeline.
	MaxBatchSize = 100_000
	// MaxPipelines bounds the connections one batch takes per destination.
	MaxPipelines = 16
	// MaxAppliers bounds the apply loops (and their batch memory).
	MaxAppliers = 16
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = kafkax.DeadLetterTopic(c.Topic)
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = bigsegments.DefaultPrefix
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Pipelines == 0 {
		c.Pipelines = DefaultPipelines
	}
	if c.Appliers == 0 {
		c.Appliers = DefaultAppliers
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.StartupTimeout == 0 {
		c.StartupTimeout = DefaultStartupTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks every setting and reports every invalid one (joined with
// errors.Join) as a *setting.Error naming its flag. Zero fields are valid:
// they take their defaults.
func (c Config) Validate() error {
	dlqDefaulted := c.DeadLetterTopic == ""
	c = c.withDefaults()
	var errs []error
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	topicOK := kafkax.ValidTopic(c.Topic)
	if !topicOK {
		bad("topic", c.Topic, "%s", kafkax.TopicForm)
	}
	switch {
	case dlqDefaulted && !topicOK:
		// <topic>.dlq: the error is --topic's, already reported.
	case !kafkax.ValidTopic(c.DeadLetterTopic):
		bad("dead-letter-topic", c.DeadLetterTopic, "%s", kafkax.TopicForm)
	case c.DeadLetterTopic == c.Topic:
		bad("dead-letter-topic", c.DeadLetterTopic, "a topic other than --topic")
	}
	if want := checkName(c.GroupID); want != "" {
		bad("group-id", c.GroupID, "%s", want)
	}
	if want := checkName(c.RedisPrefix); want != "" {
		bad("redis-prefix", c.RedisPrefix, "%s", want)
	}
	envs := make([]string, 0, len(c.EnvPrefixes))
	for env := range c.EnvPrefixes {
		envs = append(envs, env)
	}
	slices.Sort(envs) // report the same errors in the same order on every run
	for _, env := range envs {
		pair := env + "=" + c.EnvPrefixes[env]
		if want := checkName(env); want != "" {
			bad("env-prefix", pair, "an environment name that is %s", want)
		}
		if want := checkName(c.EnvPrefixes[env]); want != "" {
			bad("env-prefix", pair, "a prefix that is %s", want)
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch-size", c.BatchSize, "an integer between 1 and %d", MaxBatchSize)
	}
	if c.Pipelines < 1 || c.Pipelines > MaxPipelines {
		bad("pipelines", c.Pipelines, "an integer between 1 and %d", MaxPipelines)
	}
	if c.Appliers < 1 || c.Appliers > MaxAppliers {
		bad("appliers", c.Appliers, "an integer between 1 and %d", MaxAppliers)
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		bad("flush-interval", c.FlushInterval, "a duration between 0 and 10s")
	}
	if c.SyncInterval < time.Millisecond || c.SyncInterval > MaxSyncInterval {
		bad("sync-interval", c.SyncInterval, "a duration between 1ms and %v (SDKs report STALE after 120s)", MaxSyncInterval)
	}
	if c.StartupTimeout < 0 {
		bad("startup-timeout", c.StartupTimeout, "a positive duration")
	}
	if c.RetryTimeout < 0 {
		bad("retry-timeout", c.RetryTimeout, "a positive duration")
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown-timeout", c.ShutdownTimeout, "a positive duration")
	}
	return errors.Join(errs...)
}

// nameForm is what checkName accepts.
const nameForm = "non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end"

// checkName accepts non-empty UTF-8 without control characters or spaces at
// either end, the rules for group ids, environments and prefixes. It
// returns "" or the expected form.
func checkName(s string) string {
	if s == "" || !utf8.ValidString(s) || len(s) > 1024 || strings.ContainsFunc(s, unicode.IsControl) || strings.TrimSpace(s) != s {
		return nameForm
	}
	return ""
}

// DefaultConfig returns the defaults documented on Config's fields, with
// DeadLetterTopic left empty so that it follows Topic.
func DefaultConfig() Config {
	c := Config{}.withDefaults()
	c.DeadLetterTopic = ""
	c.Logger = nil
	return c
}
