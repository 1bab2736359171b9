package drift

import (
	"errors"
	"os"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// Destination is one store compared with the log: a Redis and a key
// prefix.
type Destination struct {
	// Name names it in reports. Required.
	Name string
	// Client reads it (and writes it, for Rebuild); the caller owns it.
	// Required.
	Client segmentstore.Client
	// Prefix is its key prefix. Required.
	Prefix string
}

// Config configures Check and Rebuild.
type Config struct {
	// Topic is the membership topic. Required.
	Topic string
	// Destinations are the stores compared. Required; at most one per
	// client and prefix.
	Destinations []Destination
	// Route returns the index in Destinations of the store an
	// environment's events are written to; false leaves the environment's
	// events out (another destination's, not compared). Required.
	Route func(env string) (int, bool)
	// Group is the consumer group applying the topic. Rebuild requires it
	// (it runs only while the group has no members). When set, Check
	// compares Redis with the log up to the group's committed offsets (what
	// the group has applied), and counts the memberships with events after
	// them, which a running consumer may apply while Redis is read, as
	// changing rather than drift. Default none: Check compares with the
	// whole log.
	Group string
	// TempDir receives the sort files, removed when done; they hold a
	// record per event of the log and per member. Default os.TempDir().
	TempDir string
	// SortChunkBytes bounds the memory of each sort. Default
	// snapshot.DefaultChunkBytes (64 MiB).
	SortChunkBytes int64
	// MaxChanging bounds the memberships Check keeps in memory as
	// changing (events after the group's offsets): a group further behind
	// fails the check. Default 1,000,000.
	MaxChanging int
	// Examples is how many missing and extra context keys a segment's
	// report names. Default 10.
	Examples int
	// Idle is how long reading a partition waits for its next message
	// below the end listed at the start before failing. Default 30s.
	Idle time.Duration
	// Progress, when set, is told what is being done ("reading the log",
	// ...), for the command's output.
	Progress func(step string)
}

// Defaults.
const (
	DefaultExamples    = 10
	DefaultMaxChanging = 1_000_000
	DefaultIdle        = 30 * time.Second
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, setting.Missing("topic", "the membership topic"))
	}
	if len(c.Destinations) == 0 {
		errs = append(errs, setting.Missing("env", "at least one destination to compare"))
	}
	seen := map[Destination]bool{}
	for _, d := range c.Destinations {
		switch {
		case d.Client == nil || d.Prefix == "" || d.Name == "":
			errs = append(errs, setting.Invalid("env", d.Name, "a destination with a name, a Redis client and a prefix"))
		case seen[Destination{Client: d.Client, Prefix: d.Prefix}]:
			errs = append(errs, setting.Invalid("env", d.Name, "one destination per Redis and prefix (prefix %q twice)", d.Prefix))
		}
		seen[Destination{Client: d.Client, Prefix: d.Prefix}] = true
	}
	if c.Route == nil {
		errs = append(errs, setting.Missing("env-prefix", "a route from environments to destinations"))
	}
	if c.SortChunkBytes != 0 && (c.SortChunkBytes < snapshot.MinChunkBytes || c.SortChunkBytes > snapshot.MaxChunkBytes) {
		errs = append(errs, setting.Invalid("sort-chunk-bytes", c.SortChunkBytes, "%d to %d bytes", snapshot.MinChunkBytes, snapshot.MaxChunkBytes))
	}
	if c.MaxChanging < 0 {
		errs = append(errs, setting.Invalid("max-changing", c.MaxChanging, ">= 0"))
	}
	if c.Examples < 0 {
		errs = append(errs, setting.Invalid("examples", c.Examples, ">= 0"))
	}
	if c.Idle < 0 {
		errs = append(errs, setting.Invalid("idle", c.Idle, "a duration >= 0"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.TempDir == "" {
		c.TempDir = os.TempDir()
	}
	if c.SortChunkBytes == 0 {
		c.SortChunkBytes = snapshot.DefaultChunkBytes
	}
	if c.Examples == 0 {
		c.Examples = DefaultExamples
	}
	if c.MaxChanging == 0 {
		c.MaxChanging = DefaultMaxChanging
	}
	if c.Idle == 0 {
		c.Idle = DefaultIdle
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return c
}
