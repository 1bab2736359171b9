package schedule

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config { return Config{} }
	testenv.RunValidate(t, valid, []testenv.ValidateCase[Config]{
		{Name: "zero value takes the defaults", Change: func(c *Config) {}, Want: ""},
		{Name: "explicit settings", Change: func(c *Config) {
			*c = Config{Tick: time.Second, MaxJitter: 5 * time.Minute, Prefix: "acme:ctl:", Timeout: time.Second, MaxConcurrent: 8,
				Location: time.UTC, ClaimTTL: time.Minute, MaxAttempts: 3, RetryBackoff: time.Minute, Owner: "replica-1"}
		}, Want: ""},
		{Name: "jitter off", Change: func(c *Config) { c.MaxJitter = NoJitter }, Want: ""},
		{Name: "the shortest tick and claim", Change: func(c *Config) { c.Tick = time.Millisecond; c.ClaimTTL = 10 * time.Millisecond }, Want: ""},
		{Name: "prefix with a brace would move the hash tag", Change: func(c *Config) { c.Prefix = "a{b:" }, Want: `--control-prefix="a{b:": want a key prefix without '{' or '}'`},
		{Name: "negative timeout", Change: func(c *Config) { c.Timeout = -time.Second }, Want: `--control-timeout="-1s": want a positive duration`},
		{Name: "tick below a millisecond", Change: func(c *Config) { c.Tick = time.Microsecond }, Want: `--schedule-tick="1µs": want a duration of at least 1ms`},
		{Name: "negative tick", Change: func(c *Config) { c.Tick = -time.Second }, Want: `--schedule-tick="-1s": want a duration of at least 1ms`},
		{Name: "negative jitter other than NoJitter", Change: func(c *Config) { c.MaxJitter = -time.Second }, Want: `--schedule-max-jitter="-1s": want a duration >= 0`},
		{Name: "negative concurrency", Change: func(c *Config) { c.MaxConcurrent = -1 }, Want: `--schedule-max-concurrent="-1": want an integer between 1 and 1024`},
		{Name: "concurrency too high", Change: func(c *Config) { c.MaxConcurrent = 1025 }, Want: `--schedule-max-concurrent="1025": want an integer between 1 and 1024`},
		{Name: "claim TTL too short to renew", Change: func(c *Config) { c.ClaimTTL = time.Millisecond }, Want: `--schedule-claim-ttl="1ms": want a duration of at least 10ms`},
		{Name: "negative attempts", Change: func(c *Config) { c.MaxAttempts = -2 }, Want: `--schedule-max-attempts="-2": want an integer >= 1`},
		{Name: "retry backoff below a millisecond", Change: func(c *Config) { c.RetryBackoff = time.Microsecond }, Want: `--schedule-retry-backoff="1µs": want a duration of at least 1ms`},
		{Name: "every problem is reported", Change: func(c *Config) { c.Prefix = "}"; c.Tick = -1; c.MaxAttempts = -1 },
			Want: "--control-prefix=\"}\": want a key prefix without '{' or '}'\n--schedule-tick=\"-1ns\": want a duration of at least 1ms\n--schedule-max-attempts=\"-1\": want an integer >= 1"},
	})
}

func TestDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Tick != DefaultTick || c.MaxJitter != DefaultMaxJitter || c.Prefix != "cohortsync:control:" || c.Timeout != DefaultTimeout ||
		c.MaxConcurrent != DefaultMaxConcurrent || c.Location != time.UTC || c.Clock == nil || c.ClaimTTL != DefaultClaimTTL ||
		c.MaxAttempts != DefaultMaxAttempts || c.RetryBackoff != DefaultRetryBackoff || c.Owner == "" {
		t.Fatalf("defaults = %+v", c)
	}
	if c, _ := (Config{MaxJitter: NoJitter}).withDefaults(); c.MaxJitter != 0 {
		t.Fatalf("NoJitter gave a jitter bound of %v", c.MaxJitter)
	}
}
