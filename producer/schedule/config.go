package schedule

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// Config tunes a Scheduler. The zero value takes every default.
type Config struct {
	// Tick is how often the catalog is looked at. Default 10s: a due slot
	// starts within a Tick of its jittered time.
	Tick time.Duration
	// MaxJitter bounds the delay of a slot after its time (and half the
	// schedule's interval bounds it too). The delay is a hash of the mapping
	// name and the slot, so every replica computes the same one. Default
	// 1m; NoJitter turns it off.
	MaxJitter time.Duration
	// Prefix of the schedule keys. Default segmentlease.DefaultPrefix, the
	// one control prefix. It must not contain '{' or '}'.
	Prefix string
	// Timeout bounds each Redis call and each listing of the catalog.
	// Default 5s.
	Timeout time.Duration
	// MaxConcurrent is the most runs in progress in this process; a due
	// mapping past it waits for a later tick (another replica may take it
	// meanwhile). Default 4.
	MaxConcurrent int
	// Location is the time zone of daily and cron schedules (daily is
	// midnight there). Default UTC.
	Location *time.Location
	// Clock is the time schedules are decided by. Default time.Now; tests
	// step a fake one. Claims expire on Redis's clock, not this one.
	Clock func() time.Time
	// ClaimTTL is how long a claim outlives its holder's last renewal (every
	// ClaimTTL/3): a replica killed mid-run leaves its slot to another one
	// this long after. Default 30s.
	ClaimTTL time.Duration
	// MaxAttempts is how many times a failing slot is run before it is given
	// up until the next slot. Default 5.
	MaxAttempts int
	// RetryBackoff is the wait after a slot's first failure; it doubles
	// with each failure up to 16 times itself. Default 30s.
	RetryBackoff time.Duration
	// Owner names this replica in claims and in the record of who ran a
	// slot. Default "<hostname>:<pid>".
	Owner string
	// OnDecision, when set, is called with each decision of each tick and
	// of SyncNow, from the deciding goroutine.
	OnDecision func(catalog.Mapping, Decision)
	// OnRunDone, when set, is called when a run this Scheduler started
	// ends, from the run's goroutine (concurrently for concurrent runs).
	OnRunDone func(catalog.Mapping, Result)
}

// NoJitter as Config.MaxJitter runs every slot at its time.
const NoJitter time.Duration = -1

// Defaults.
const (
	DefaultTick          = 10 * time.Second
	DefaultMaxJitter     = time.Minute
	DefaultTimeout       = 5 * time.Second
	DefaultMaxConcurrent = 4
	DefaultClaimTTL      = 30 * time.Second
	DefaultMaxAttempts   = 5
	DefaultRetryBackoff  = 30 * time.Second
)

// Bounds checked by Validate.
const (
	minTick          = time.Millisecond
	maxMaxConcurrent = 1024
	// maxBackoffFactor caps the doubling of RetryBackoff.
	maxBackoffFactor = 16
)

// Validate reports every invalid setting as a *setting.Error. Zero values
// are valid: they take their defaults.
func (c Config) Validate() error {
	// Prefix and timeout follow segmentlease's rules, under the same
	// names: all control keys share one prefix.
	errs := []error{(&segmentlease.Config{Prefix: c.Prefix, Timeout: c.Timeout}).Validate()}
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	if c.Tick < 0 || (c.Tick > 0 && c.Tick < minTick) {
		bad("schedule-tick", c.Tick, "a duration of at least %v", minTick)
	}
	if c.MaxJitter < 0 && c.MaxJitter != NoJitter {
		bad("schedule-max-jitter", c.MaxJitter, "a duration >= 0")
	}
	if c.MaxConcurrent < 0 || c.MaxConcurrent > maxMaxConcurrent {
		bad("schedule-max-concurrent", c.MaxConcurrent, "an integer between 1 and %d", maxMaxConcurrent)
	}
	if c.ClaimTTL < 0 || (c.ClaimTTL > 0 && c.ClaimTTL < segmentlease.MinTTL) {
		bad("schedule-claim-ttl", c.ClaimTTL, "a duration of at least %v", segmentlease.MinTTL)
	}
	if c.MaxAttempts < 0 {
		bad("schedule-max-attempts", c.MaxAttempts, "an integer >= 1")
	}
	if c.RetryBackoff < 0 || (c.RetryBackoff > 0 && c.RetryBackoff < time.Millisecond) {
		bad("schedule-retry-backoff", c.RetryBackoff, "a duration of at least 1ms")
	}
	return errors.Join(errs...)
}

// withDefaults validates c and fills its zero fields.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Tick, DefaultTick)
	def(&c.MaxJitter, DefaultMaxJitter)
	def(&c.Timeout, DefaultTimeout)
	def(&c.ClaimTTL, DefaultClaimTTL)
	def(&c.RetryBackoff, DefaultRetryBackoff)
	if c.MaxJitter == NoJitter {
		c.MaxJitter = 0
	}
	if c.Prefix == "" {
		c.Prefix = segmentlease.DefaultPrefix
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Owner == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown-host"
		}
		c.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return c, nil
}
