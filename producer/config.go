package producer

import (
	"context"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/schema"
)

// DefaultTopic is the membership topic.
const DefaultTopic = publish.DefaultTopic

// Config is the producer's deployment configuration: where to publish and
// how (the embedded publish.Config), and where the segments' snapshots live.
// Start from DefaultConfig; every field is a flag (and environment variable)
// of the sync command.
type Config struct {
	publish.Config
	// StateDir holds each segment's committed snapshot and sync state.
	// Default "./cohortsync-state". Losing it makes the next sync publish
	// the whole cohort as adds and miss the removals since the last sync.
	StateDir string
	// ExclusionsFile is where the excluded rows of a run are listed. Default
	// "": exclusions-<run>.csv in the segment's state directory. Written only
	// when a row is excluded; a run with no exclusion removes a stale report
	// left at a fixed path, so the file always describes the last run.
	ExclusionsFile string
	// ExclusionsKeep is how many per-run exclusion reports (the default
	// path) are kept per segment; older ones are deleted after a successful
	// run, so an hourly sync does not grow the state directory forever.
	// Default 48.
	ExclusionsKeep int
	// MaxShrink refuses a snapshot that has lost more than this fraction of
	// the last synced snapshot's members (0.5: half), before anything is
	// staged or published: a truncated export otherwise looks exactly like
	// members leaving. 0 turns the guard off. Default 0; rerun with 0 to
	// accept a real drop.
	MaxShrink float64
	// TracerProvider makes each run's "sync" span; its context goes into
	// every event (publish.Config.Propagator), so the consumer's spans link
	// back to the run. Default none (no-op).
	TracerProvider trace.TracerProvider
	// SortChunkBytes is the memory budget of the snapshot sort (see
	// snapshot.SortOptions). Default 64 MiB.
	SortChunkBytes int64
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Config:         publish.DefaultConfig(),
		StateDir:       "./cohortsync-state",
		SortChunkBytes: snapshot.DefaultChunkBytes,
		ExclusionsKeep: 48,
	}
}

// Validate reports every invalid setting as a *setting.Error naming it.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate()}
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	if c.StateDir == "" {
		errs = append(errs, setting.Missing("state-dir", "a directory path"))
	}
	if c.SortChunkBytes < snapshot.MinChunkBytes || c.SortChunkBytes > snapshot.MaxChunkBytes {
		bad("sort-chunk-bytes", c.SortChunkBytes, "an integer between %d and %d", snapshot.MinChunkBytes, snapshot.MaxChunkBytes)
	}
	if c.MaxShrink < 0 || c.MaxShrink >= 1 {
		bad("max-shrink", c.MaxShrink, "a fraction in [0, 1), 0 for off")
	}
	if c.ExclusionsKeep < 1 {
		bad("exclusions-keep", c.ExclusionsKeep, "an integer >= 1")
	}
	return errors.Join(errs...)
}

// SyncRequest is one snapshot to sync: which segment, and where its
// members come from.
type SyncRequest struct {
	Env         string // environment (selects the Redis prefix downstream)
	Segment     string // segment key, e.g. "amplitude-7khm89cz"
	Generation  int    // segment generation, >= 1; 0 means the default, 1
	ContextKind string // default "user"
	// Source is recorded in every event. Default Input's Kind, e.g. "csv".
	Source string
	// Input yields the snapshot's members, e.g. a csvfile.Source. Required.
	Input source.Source
	// StateOptions are passed to snapshot.Open: a shared Locker and
	// WithSharedState for a segment several replicas sync. Default none:
	// the state directory is the truth, locked with a file lock.
	StateOptions []snapshot.Option
	// Exclusions, unless nil, is also given every excluded record, after
	// the local report, with the run's id: a run history keeps them with
	// the run. Its error fails the run.
	Exclusions func(ctx context.Context, run string, e source.Exclusion) error
	// Meter, unless nil, is kept up to date with the run's phase and
	// counts while it goes (a progress bar or a run history reads it).
	Meter *Meter
}

func (r *SyncRequest) applyDefaults() {
	if r.Generation == 0 {
		r.Generation = 1
	}
	if r.ContextKind == "" {
		r.ContextKind = "user"
	}
	if r.Source == "" && r.Input != nil {
		r.Source = r.Input.Kind()
	}
}

// Validate reports every invalid field as a *setting.Error named after
// its flag. Empty ContextKind and Source take their defaults.
func (r SyncRequest) Validate() error {
	var errs []error
	if err := r.ValidateWithoutInput(); err != nil {
		errs = append(errs, err)
	}
	if r.Input == nil {
		errs = append(errs, setting.Missing("input", "a snapshot source"))
	}
	return errors.Join(errs...)
}

// ValidateWithoutInput is Validate for a caller that opens the Input only
// once the rest is known valid, such as a command that validates its flags
// before it touches a file: a missing Input is not reported, and an empty
// Source is left to Input's Kind.
func (r SyncRequest) ValidateWithoutInput() error {
	r.applyDefaults()
	var errs []error
	for _, f := range [...]struct{ name, v string }{
		{"env", r.Env}, {"segment", r.Segment}, {"context-kind", r.ContextKind}, {"source", r.Source},
	} {
		switch {
		case f.v == "" && f.name == "source":
			// Only without an Input: Validate reports that.
		case f.v == "":
			errs = append(errs, setting.Missing(f.name, "%s", schema.IdentifierForm))
		case schema.CheckIdentifier(f.v) != nil:
			errs = append(errs, setting.Invalid(f.name, f.v, "%s (%v)", schema.IdentifierForm, schema.CheckIdentifier(f.v)))
		case f.name != "source" && strings.IndexByte(f.v, 0x1f) >= 0:
			errs = append(errs, setting.Invalid(f.name, f.v, "no unit separator 0x1f (it separates the message key's parts)"))
		}
	}
	if r.Generation < 1 {
		errs = append(errs, setting.Invalid("generation", r.Generation, "an integer >= 1"))
	}
	return errors.Join(errs...)
}
