package catalogstore

import (
	"time"

	"github.com/cohortsync/cohortsync/internal/segmentlease"
)

// Config places and tunes the store's keys. The zero value takes every
// default.
type Config struct {
	// Prefix of every key. Default segmentlease.DefaultPrefix
	// ("cohortsync:control:"), so all control-plane keys share one
	// prefix. It must not contain '{' or '}': the catalog's hash tag must
	// be the first braces of the key.
	Prefix string
	// Timeout bounds each Redis call. Default 5s.
	Timeout time.Duration
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 5 * time.Second

// Validate reports every invalid setting as a *setting.Error. Zero values
// are valid: they take their defaults.
//
// The rules are segmentlease's, under the same setting names: both place
// keys under the one control prefix.
func (c *Config) Validate() error {
	return (&segmentlease.Config{Prefix: c.Prefix, Timeout: c.Timeout}).Validate()
}

func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Prefix == "" {
		c.Prefix = segmentlease.DefaultPrefix
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c, nil
}

// mappingsKey is the hash of every mapping's record.
func (c Config) mappingsKey() string { return c.Prefix + "{catalog}:mappings" }

// destinationsKey is the hash of every destination's record.
func (c Config) destinationsKey() string { return c.Prefix + "{catalog}:destinations" }

// versionKey is the catalog's version counter.
func (c Config) versionKey() string { return c.Prefix + "{catalog}:version" }

// projectsKey is the hash of every Amplitude project's record.
func (c Config) projectsKey() string { return c.Prefix + "{catalog}:amplitude_projects" }
