package receiver

import (
	"errors"
	"log/slog"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// Config tunes a Receiver. The zero value takes every default.
type Config struct {
	// MaxBodyBytes bounds a request body; a larger one is answered 413
	// before it is parsed. Default 8 MiB: a 10,000-member batch of the
	// partners' shapes is under 2 MiB.
	MaxBodyBytes int64
	// MaxInFlight is the number of requests handled at once; one more is
	// answered 429 with Retry-After. With MaxBodyBytes it bounds the
	// memory the receiver holds: parsing allocates about 5× the body
	// (TestParseMemoryBounded holds it under 8×), so the defaults bound
	// it near 8 × 8 MiB × 6 ≈ 400 MiB. Default 8.
	MaxInFlight int
	// RetryAfter is the Retry-After of a 429. Default 1s.
	RetryAfter time.Duration
	// Timeout bounds a request's work once its body is read: the control
	// Redis, the sequence numbers, publishing and Kafka's acknowledgement.
	// A request that runs out is answered 429 with Retry-After (what it
	// published stays published; the partner's retry applies the batch
	// again). Default 30s.
	Timeout time.Duration
	// DedupTTL is how long an accepted Amplitude webhook message_id is
	// remembered, so a redelivery is not applied again. Default 24h.
	DedupTTL time.Duration
	// Logger receives exclusions and failures. Default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultMaxInFlight  = 8
	DefaultRetryAfter   = time.Second
	DefaultDedupTTL     = 24 * time.Hour
	DefaultTimeout      = 30 * time.Second
)

// Validate reports every invalid setting as a *setting.Error; zero values
// are valid (their defaults).
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 0 || (c.MaxBodyBytes > 0 && c.MaxBodyBytes < 1<<10) || c.MaxBodyBytes > 1<<30 {
		errs = append(errs, setting.Invalid("receiver-max-body-bytes", c.MaxBodyBytes, "between 1024 and 1073741824 bytes"))
	}
	if c.MaxInFlight < 0 || c.MaxInFlight > 1024 {
		errs = append(errs, setting.Invalid("receiver-max-in-flight", c.MaxInFlight, "an integer between 1 and 1024"))
	}
	if c.RetryAfter < 0 || (c.RetryAfter > 0 && c.RetryAfter < time.Second) {
		errs = append(errs, setting.Invalid("receiver-retry-after", c.RetryAfter, "a duration of at least 1s (Retry-After counts seconds)"))
	}
	if c.Timeout < 0 || (c.Timeout > 0 && c.Timeout < time.Second) {
		errs = append(errs, setting.Invalid("receiver-timeout", c.Timeout, "a duration of at least 1s"))
	}
	if c.DedupTTL < 0 {
		errs = append(errs, setting.Invalid("receiver-dedup-ttl", c.DedupTTL, "a positive duration"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DedupTTL == 0 {
		c.DedupTTL = DefaultDedupTTL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
