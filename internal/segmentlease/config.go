package segmentlease

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// Config places and tunes the control-plane keys. The zero value takes every
// default.
type Config struct {
	// Prefix of every key (see the package comment). Default
	// DefaultPrefix. It must not contain '{' or '}': the segment's hash tag
	// must be the first braces of the key.
	Prefix string
	// TTL of a lease: a holder that stops renewing loses the segment this
	// long after its last renewal; it renews every TTL/3. Default 30s: long
	// enough to ride out a Redis failover, short enough that a killed
	// replica's scheduled run is taken over within a minute.
	TTL time.Duration
	// Timeout bounds each Redis call of Lock, Check, Unlock and Reserve.
	// Default 5s.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultPrefix  = "cohortsync:control:"
	DefaultTTL     = 30 * time.Second
	DefaultTimeout = 5 * time.Second
	// MinTTL leaves renewals (every TTL/3) a few milliseconds, the
	// resolution of PEXPIRE.
	MinTTL = 10 * time.Millisecond
)

// Validate reports every invalid setting as a *setting.Error. Zero values
// are valid: they take their defaults.
func (c *Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Prefix, "{}") {
		errs = append(errs, setting.Invalid("control-prefix", c.Prefix, "a key prefix without '{' or '}'"))
	}
	if c.TTL != 0 && c.TTL < MinTTL {
		errs = append(errs, setting.Invalid("lease-ttl", c.TTL, "a duration of at least %v", MinTTL))
	}
	if c.Timeout < 0 {
		errs = append(errs, setting.Invalid("control-timeout", c.Timeout, "a positive duration"))
	}
	return errors.Join(errs...)
}

// withDefaults validates c and fills its zero fields.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c, nil
}

// control is what Locker and SeqAllocator share: the client and the
// settings with their defaults.
type control struct {
	rdb redis.UniversalClient
	cfg Config
}

func newControl(rdb redis.UniversalClient, cfg Config) (control, error) {
	cfg, err := cfg.withDefaults()
	return control{rdb: rdb, cfg: cfg}, err
}

// key is the control key of id named suffix ("lease", "fence", "seq").
func (c Config) key(id snapshot.SegmentID, suffix string) string {
	return c.Prefix + "{" + url.QueryEscape(id.Env) + "/" + url.QueryEscape(id.Segment) + "/" +
		strconv.Itoa(id.Generation) + "/" + url.QueryEscape(id.ContextKind) + "}:" + suffix
}
