package receiver

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "defaults", Change: func(*Config) {}},
		{Name: "set", Change: func(c *Config) {
			c.MaxBodyBytes, c.MaxInFlight, c.RetryAfter, c.DedupTTL = 1<<20, 4, 2*time.Second, time.Hour
		}},
		{Name: "body too small", Change: func(c *Config) { c.MaxBodyBytes = 10 }, Want: "--receiver-max-body-bytes=\"10\": want between 1024 and 1073741824 bytes"},
		{Name: "body too large", Change: func(c *Config) { c.MaxBodyBytes = 2 << 30 }, Want: "--receiver-max-body-bytes=\"2147483648\": want between 1024 and 1073741824 bytes"},
		{Name: "negative in-flight", Change: func(c *Config) { c.MaxInFlight = -1 }, Want: "--receiver-max-in-flight=\"-1\": want an integer between 1 and 1024"},
		{Name: "sub-second retry-after", Change: func(c *Config) { c.RetryAfter = time.Millisecond }, Want: "--receiver-retry-after=\"1ms\": want a duration of at least 1s (Retry-After counts seconds)"},
		{Name: "sub-second timeout", Change: func(c *Config) { c.Timeout = 10 * time.Millisecond }, Want: "--receiver-timeout=\"10ms\": want a duration of at least 1s"},
		{Name: "negative dedup", Change: func(c *Config) { c.DedupTTL = -time.Second }, Want: "--receiver-dedup-ttl=\"-1s\": want a positive duration"},
	})
}
