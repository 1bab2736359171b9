package consumer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/envflag"
	"github.com/cohortsync/cohortsync/pkg/kafkaconf"
	"github.com/cohortsync/cohortsync/pkg/redisconn"
)

// Config configures a Consumer. Every field but Logger is a flag with an
// environment twin (see RegisterFlags); the zero value of a field means its
// default, except where noted.
type Config struct {
	// Brokers are the Kafka bootstrap brokers, host:port. Required.
	Brokers []string
	// Topic is the membership topic. Default "cohortsync.membership.v1".
	Topic string
	// GroupID is the Kafka consumer group. Default "cohortsync-consumer".
	GroupID string
	// DeadLetterTopic receives messages that cannot be applied. It must exist.
	// Default "<Topic>.dlq".
	DeadLetterTopic string

	// Redis selects the Redis deployment (exactly one of URL and cluster
	// addresses). Unused by New, which takes a client.
	Redis redisconn.Config
	// RedisPrefix is the key prefix of every environment not in EnvPrefixes.
	// Default "launchdarkly", the SDKs' default.
	RedisPrefix string
	// EnvPrefixes maps an event's environment to its own prefix, for a
	// deployment whose environments are read by SDKs with different
	// prefixes. Default none.
	EnvPrefixes map[string]string

	// BatchSize is the most messages applied in one Redis pipeline and
	// committed together. Default 20000: each batch pays fixed round trips
	// (offset commit, metadata script), and 20000 measured ~25% faster than
	// 5000 end to end (BENCHMARKS.md); a partial batch still waits at most
	// FlushInterval.
	BatchSize int
	// FlushInterval is how long a batch waits for more messages after its
	// first one. Default 20ms.
	FlushInterval time.Duration
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
	// ShutdownTimeout is how long the in-flight batch may take to finish
	// (apply, dead-letter, commit) after the context is cancelled before it is
	// abandoned uncommitted. Default 10s.
	ShutdownTimeout time.Duration
	// MetricsAddr, if set, serves /metrics (Prometheus text) and /healthz on
	// this host:port. Default off.
	MetricsAddr string

	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultTopic           = kafkaconf.DefaultTopic
	DefaultGroupID         = "cohortsync-consumer"
	DefaultBatchSize       = 20000
	DefaultFlushInterval   = 20 * time.Millisecond
	DefaultSyncInterval    = 5 * time.Second
	DefaultRetryTimeout    = 5 * time.Minute
	DefaultShutdownTimeout = 10 * time.Second

	// MaxSyncInterval keeps two refreshes inside the SDKs' default staleAfter
	// of 120s.
	MaxSyncInterval = 60 * time.Second
	// MaxBatchSize bounds the memory of one batch and one pipeline.
	MaxBatchSize = 100_000
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
		c.DeadLetterTopic = kafkaconf.DeadLetterTopic(c.Topic)
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
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// RegisterFlags registers every setting on fs, with c's current values as
// defaults (zero fields get the package defaults first).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := c.withDefaults()
	d.DeadLetterTopic = c.DeadLetterTopic // its default follows --topic
	*c = d
	fs.Var((*envflag.StringList)(&c.Brokers), "kafka-brokers", "comma-separated Kafka bootstrap brokers, host:port (required)")
	fs.StringVar(&c.Topic, "topic", c.Topic, "membership events `topic`")
	fs.StringVar(&c.GroupID, "group-id", c.GroupID, "Kafka consumer `group`")
	fs.StringVar(&c.DeadLetterTopic, "dead-letter-topic", c.DeadLetterTopic, "`topic` for messages that cannot be applied; must exist (default <topic>.dlq)")
	c.Redis.RegisterFlags(fs)
	fs.StringVar(&c.RedisPrefix, "redis-prefix", c.RedisPrefix, "Redis key `prefix` of every environment not in --env-prefix (the SDKs' default is launchdarkly)")
	if c.EnvPrefixes == nil {
		c.EnvPrefixes = map[string]string{}
	}
	fs.Var((*envflag.StringMap)(&c.EnvPrefixes), "env-prefix", "per-environment Redis prefixes, env=prefix,...")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most messages applied in one Redis pipeline and committed together")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "how long a batch waits for more messages after its first")
	fs.DurationVar(&c.SyncInterval, "sync-interval", c.SyncInterval, "how often the group's offsets are checked and big_segments_synchronized_on refreshed (max 60s)")
	fs.DurationVar(&c.RetryTimeout, "retry-timeout", c.RetryTimeout, "give up on a transient Redis or Kafka failure after this long, leaving the batch uncommitted")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time the in-flight batch gets to finish on shutdown")
	fs.StringVar(&c.MetricsAddr, "metrics", c.MetricsAddr, "serve /metrics and /healthz on this host:port (default off)")
}

// ParseFlags builds a Config from command-line args and, for flags not given,
// their environment twins (KAFKA_BROKERS for --kafka-brokers, ...) read with
// lookup. It does not validate.
func ParseFlags(name string, args []string, lookup func(string) (string, bool), output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	c.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nApplies cohortsync membership events from Kafka to Redis in the LaunchDarkly Big Segments layout.\nEvery flag can also be set by the environment variable shown.\n\n", name)
		fs.PrintDefaults()
	}
	if err := envflag.Parse(fs, args, "", lookup); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	// In the struct a zero means "default"; given explicitly as a flag or
	// in the environment it is a mistake, and must not pass as the default.
	// Every problem is reported at once: the explicit zeros found here and
	// whatever Validate finds in the other settings.
	var errs []error
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return // lists and maps: checked by Validate
		}
		switch v := g.Get().(type) {
		case int:
			if v <= 0 {
				errs = append(errs, fmt.Errorf("--%s: %d is not > 0", f.Name, v))
				explicit[f.Name] = true
			}
		case time.Duration:
			if v <= 0 {
				errs = append(errs, fmt.Errorf("--%s: %v is not > 0", f.Name, v))
				explicit[f.Name] = true
			}
		case string:
			if v == "" && f.Name != "redis-url" && f.Name != "redis-username" && f.Name != "redis-password" && f.Name != "metrics" {
				errs = append(errs, fmt.Errorf("--%s: empty", f.Name))
				explicit[f.Name] = true
			}
		}
	})
	if len(errs) == 0 {
		return c, nil
	}
	// Validate reads an explicit zero as "default"; keep only its reports
	// about the other settings.
	if verr := c.Validate(); verr != nil {
		for _, e := range splitJoined(verr) {
			name, _, _ := strings.Cut(strings.TrimPrefix(e.Error(), "--"), ":")
			if !explicit[name] {
				errs = append(errs, e)
			}
		}
	}
	return c, errors.Join(errs...)
}

// splitJoined flattens (nested) errors.Join errors into their leaves.
func splitJoined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, splitJoined(e)...)
	}
	return out
}

// Validate checks every setting, Redis connection included, and reports
// every invalid one (joined with errors.Join), each naming its flag. Zero
// fields are valid: they take their defaults.
func (c Config) Validate() error {
	return errors.Join(c.validateCore(), c.Redis.Validate())
}

// validateCore checks everything but the Redis connection settings, which
// New does not use, and reports every invalid setting.
func (c Config) validateCore() error {
	dlqDefaulted := c.DeadLetterTopic == ""
	c = c.withDefaults()
	var errs []error
	bad := func(flag string, err error) { errs = append(errs, fmt.Errorf("--%s: %w", flag, err)) }
	for _, e := range kafkaconf.CheckBrokers(c.Brokers) {
		bad("kafka-brokers", e)
	}
	topicOK := true
	if err := kafkaconf.CheckTopic(c.Topic); err != nil {
		bad("topic", err)
		topicOK = false
	}
	switch err := kafkaconf.CheckTopic(c.DeadLetterTopic); {
	case dlqDefaulted && !topicOK:
		// <topic>.dlq: the error is --topic's, already reported.
	case err != nil:
		bad("dead-letter-topic", err)
	case c.DeadLetterTopic == c.Topic:
		bad("dead-letter-topic", fmt.Errorf("must differ from --topic %q", c.Topic))
	}
	if err := checkName(c.GroupID); err != nil {
		bad("group-id", err)
	}
	if err := checkName(c.RedisPrefix); err != nil {
		bad("redis-prefix", err)
	}
	envs := make([]string, 0, len(c.EnvPrefixes))
	for env := range c.EnvPrefixes {
		envs = append(envs, env)
	}
	slices.Sort(envs) // report the same errors in the same order on every run
	for _, env := range envs {
		if err := checkName(env); err != nil {
			bad("env-prefix", fmt.Errorf("environment %q: %w", env, err))
		}
		if err := checkName(c.EnvPrefixes[env]); err != nil {
			bad("env-prefix", fmt.Errorf("prefix of environment %q: %w", env, err))
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("batch-size", fmt.Errorf("%d is not between 1 and %d", c.BatchSize, MaxBatchSize))
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		bad("flush-interval", fmt.Errorf("%v is not between 0 and 10s", c.FlushInterval))
	}
	if c.SyncInterval < time.Millisecond || c.SyncInterval > MaxSyncInterval {
		bad("sync-interval", fmt.Errorf("%v is not between 1ms and %v (SDKs report STALE after 120s)", c.SyncInterval, MaxSyncInterval))
	}
	if c.RetryTimeout < 0 {
		bad("retry-timeout", fmt.Errorf("%v is negative", c.RetryTimeout))
	}
	if c.ShutdownTimeout < 0 {
		bad("shutdown-timeout", fmt.Errorf("%v is negative", c.ShutdownTimeout))
	}
	if c.MetricsAddr != "" {
		if _, _, err := splitListenAddr(c.MetricsAddr); err != nil {
			bad("metrics", err)
		}
	}
	return errors.Join(errs...)
}

// checkName accepts non-empty UTF-8 without control characters or spaces at
// either end, the rules for group ids, environments and prefixes.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case !utf8.ValidString(s):
		return fmt.Errorf("%q is not valid UTF-8", s)
	case len(s) > 1024:
		return fmt.Errorf("%q... is longer than 1024 bytes", s[:32])
	case strings.ContainsFunc(s, unicode.IsControl):
		// Before the blanks: "\n" at the end is a control character first.
		return fmt.Errorf("%q contains a control character", s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%q has leading or trailing blanks", s)
	}
	return nil
}
