package suite

import (
	"errors"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// Defaults of Config.
const (
	DefaultMembers      = 2_000_000  // the steady, concurrent and first-sync cohorts
	DefaultLarge        = 10_000_000 // the large first sync, its re-sync and the replay
	DefaultLookups      = 20_000     // SDK lookups and SMEMBERS round trips timed
	DefaultPhaseTimeout = 10 * time.Minute
	// Issue 12's targets are set at these sizes; at other sizes the time
	// bounds scale linearly with the members (and say so).
	targetMembers = 2_000_000
	targetLarge   = 10_000_000
	// MinMembers keeps 1% churn of the large cohort whole members and the
	// rates above the timer's resolution.
	MinMembers = 1000
)

// Config of a make bench run.
type Config struct {
	Brokers []string // real Kafka brokers; required
	// RedisURL is the standalone redis-server under test; required (the
	// redis-cli --pipe reference speaks to one server).
	RedisURL string
	// Cohortsync is the cohortsync binary whose sync command is the
	// producer; required.
	Cohortsync string
	Members    int // default DefaultMembers
	Large      int // default DefaultLarge
	Lookups    int // default DefaultLookups
	// RedisCLI is the redis-cli executable; default redis-cli from PATH.
	RedisCLI string
	// ConsumerBatch is the consumer's BatchSize; default its own default.
	ConsumerBatch int
	// PhaseTimeout bounds each phase (one sync, one drain, one replay);
	// default DefaultPhaseTimeout.
	PhaseTimeout time.Duration
	// Targets are the issue 12 targets measured ("1" to "5"); default
	// all. Target 2's first sync of Members also yields 5's lookups, so
	// either runs it; 2's large syncs and 4's replay share one topic, so
	// either runs both.
	Targets []string
	// ConsumerPipelines is the consumer's Pipelines; default its own.
	ConsumerPipelines int
	// ConsumerAppliers is the consumer's Appliers; default its own.
	ConsumerAppliers int
	// Dir holds the cohort files and the producer's state; default a new
	// directory under os.TempDir, removed at the end.
	Dir string
}

// WithDefaults returns c with every zero default filled in.
func (c Config) WithDefaults() Config {
	if c.Members == 0 {
		c.Members = DefaultMembers
	}
	if c.Large == 0 {
		c.Large = DefaultLarge
	}
	if c.Lookups == 0 {
		c.Lookups = DefaultLookups
	}
	if c.PhaseTimeout == 0 {
		c.PhaseTimeout = DefaultPhaseTimeout
	}
	if c.RedisCLI == "" {
		c.RedisCLI = "redis-cli"
	}
	if len(c.Targets) == 0 {
		c.Targets = []string{"1", "2", "3", "4", "5"}
	}
	return c
}

// Validate checks c (after WithDefaults).
func (c Config) Validate() error {
	var errs []error
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, setting.Missing("kafka-brokers", "real Kafka brokers, host:port"))
	}
	if c.RedisURL == "" {
		errs = append(errs, setting.Missing("redis-url", "a standalone redis-server (the redis-cli --pipe reference speaks to one server)"))
	}
	if c.Cohortsync == "" {
		errs = append(errs, setting.Missing("cohortsync-bin", "the cohortsync binary (the producer runs as its own process, so that its peak RSS is its own)"))
	}
	if c.Members < MinMembers {
		bad("members", c.Members, "at least %d", MinMembers)
	}
	if c.Large < MinMembers {
		bad("large", c.Large, "at least %d", MinMembers)
	}
	if c.Lookups <= 0 {
		bad("lookups", c.Lookups, "a positive number of lookups")
	}
	if c.ConsumerBatch < 0 {
		bad("consumer-batch", c.ConsumerBatch, "0 (the consumer's default) or more")
	}
	for _, t := range c.Targets {
		if len(t) != 1 || t[0] < '1' || t[0] > '5' {
			bad("targets", t, "targets 1 to 5, comma-separated")
		}
	}
	if c.ConsumerPipelines < 0 || c.ConsumerPipelines > consumer.MaxPipelines {
		bad("consumer-pipelines", c.ConsumerPipelines, "0 (the consumer's default) to %d", consumer.MaxPipelines)
	}
	if c.ConsumerAppliers < 0 || c.ConsumerAppliers > consumer.MaxAppliers {
		bad("consumer-appliers", c.ConsumerAppliers, "0 (the consumer's default) to %d", consumer.MaxAppliers)
	}
	if c.PhaseTimeout <= 0 {
		bad("phase-timeout", c.PhaseTimeout, "a positive duration")
	}
	return errors.Join(errs...)
}
