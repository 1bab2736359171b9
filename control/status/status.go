package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
)

// Config tunes a status. The zero value takes every default.
type Config struct {
	// StaleAfter is the SDKs' staleAfter: a destination whose
	// big_segments_synchronized_on is older (or missing) is potentially
	// stale. Default DefaultStaleAfter, the SDKs' default.
	StaleAfter time.Duration
	// RecentRuns is how many of the newest runs (all mappings) are read
	// for last errors, published sequence numbers and pending runs.
	// Default DefaultRecentRuns.
	RecentRuns int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultStaleAfter = segments.StaleAfter
	DefaultRecentRuns = 200
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.StaleAfter < 0 || (c.StaleAfter > 0 && c.StaleAfter < time.Second) {
		errs = append(errs, setting.Invalid("stale-after", c.StaleAfter, "a duration of at least 1s"))
	}
	if c.RecentRuns < 0 || c.RecentRuns > 10000 {
		errs = append(errs, setting.Invalid("recent-runs", c.RecentRuns, "between 1 and 10000"))
	}
	return errors.Join(errs...)
}

// History lists recorded runs (runstore.Store does).
type History interface {
	List(ctx context.Context, f runstore.Filter) ([]runstore.Record, error)
}

// SetAsides counts the set-asides of a destination (segmentlease.Gaps
// does).
type SetAsides interface {
	Count(ctx context.Context, destination string) (uint64, error)
}

// Checker builds status reports.
type Checker struct {
	Catalog segments.Catalog
	Connect segments.Connector
	// History and SetAsides, when set, add last errors and lag.
	History   History
	SetAsides SetAsides
	Config    Config
}

// Report is the status of every destination (or the one asked for).
type Report struct {
	Checked    time.Time     `json:"checked"`
	StaleAfter time.Duration `json:"stale_after_ns"`
	// Destinations, sorted by name; empty, never null.
	Destinations []Destination `json:"destinations"`
}

// Destination is one destination's store status, as the SDKs would see
// it, and its segments.
type Destination struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
	Prefix      string `json:"prefix"`
	// Available says whether its Redis answers; Error says why not.
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
	// PotentiallyStale is the SDKs' "stale": SynchronizedOn missing or at
	// least StaleAfter old (also true when unavailable: nothing is known).
	PotentiallyStale bool `json:"potentially_stale"`
	// SynchronizedOn is big_segments_synchronized_on (zero when missing),
	// SyncAge how old it was.
	SynchronizedOn time.Time     `json:"synchronized_on,omitzero"`
	SyncAge        time.Duration `json:"sync_age_ns,omitempty"`
	// StoreLost is when a consumer found the Redis had lost its data (zero
	// if it has not).
	StoreLost time.Time `json:"store_lost,omitzero"`
	// SetAsides counts the times the consumer set the destination's
	// events aside while it was unavailable.
	SetAsides uint64 `json:"set_asides"`
	// LastErrors, newest first; empty, never null.
	LastErrors []Problem `json:"last_errors"`
	// Segments, sorted by key and generation; empty, never null.
	Segments []Segment `json:"segments"`
}

// Problem is one recorded error of a destination.
type Problem struct {
	At     time.Time `json:"at,omitzero"`
	Kind   string    `json:"kind"` // one of the Kind* constants
	Run    string    `json:"run,omitempty"`
	Detail string    `json:"detail"`
}

// Problem kinds.
const (
	KindUnavailable = "unavailable"
	KindRunFailed   = "run_failed"
	KindSetAside    = "set_aside"
	KindStoreLost   = "store_lost"
)

// Segment is one segment generation's freshness and lag: the segment as
// cohortsync segments shows it (members, last applied time, seq and run:
// LastApplied, LastSeq, LastRun) and what the run history says was
// published.
type Segment struct {
	segments.Segment
	// LastPublishedSeq and LastPublishedRun are the highest sequence number
	// a recorded run of the segment published, and that run (0 and "" when
	// the recent runs hold none).
	LastPublishedSeq uint64 `json:"last_published_seq,omitempty"`
	LastPublishedRun string `json:"last_published_run,omitempty"`
	// SeqLag is LastPublishedSeq minus LastSeq, the highest applied (0
	// when caught up or unknown): about how many published events are not
	// applied yet.
	SeqLag uint64 `json:"seq_lag"`
	// PendingRuns are the recent runs published and not yet applied, and
	// PendingSince when the oldest was published.
	PendingRuns  int       `json:"pending_runs"`
	PendingSince time.Time `json:"pending_since,omitzero"`
}

// Check returns the status of every destination, or of the one named
// destination ("" for all). An unavailable destination is reported, not
// an error; errors are the catalog's and the history's.
func (c *Checker) Check(ctx context.Context, destination string) (Report, error) {
	if err := c.Config.Validate(); err != nil {
		return Report{}, err
	}
	now := time.Now
	if c.Config.Now != nil {
		now = c.Config.Now
	}
	staleAfter := cmp.Or(c.Config.StaleAfter, DefaultStaleAfter)
	rep := Report{Checked: now(), StaleAfter: staleAfter, Destinations: []Destination{}}
	var dests []catalog.Destination
	if destination == "" {
		ds, err := c.Catalog.Destinations(ctx)
		if err != nil {
			return rep, err
		}
		dests = ds
	} else {
		d, err := c.Catalog.Destination(ctx, destination)
		if err != nil {
			return rep, err
		}
		dests = []catalog.Destination{d}
	}
	var runs []runstore.Record
	if c.History != nil {
		rs, err := c.History.List(ctx, runstore.Filter{Limit: cmp.Or(c.Config.RecentRuns, DefaultRecentRuns)})
		if err != nil {
			return rep, err
		}
		runs = rs
	}
	view := &segments.View{Catalog: c.Catalog, Connect: c.Connect, Now: now}
	for _, d := range dests {
		ds, err := c.destination(ctx, view, d, runs, rep.Checked, staleAfter)
		if err != nil {
			return rep, err
		}
		rep.Destinations = append(rep.Destinations, ds)
	}
	slices.SortFunc(rep.Destinations, func(a, b Destination) int { return strings.Compare(a.Name, b.Name) })
	return rep, nil
}

// destination is d's status.
func (c *Checker) destination(ctx context.Context, view *segments.View, d catalog.Destination, runs []runstore.Record, now time.Time,
	staleAfter time.Duration) (Destination, error) {
	out := Destination{Name: d.Name, Environment: d.Environment, Prefix: d.Prefix(), PotentiallyStale: true,
		LastErrors: []Problem{}, Segments: []Segment{}}
	if c.SetAsides != nil {
		n, err := c.SetAsides.Count(ctx, d.Name)
		if err != nil {
			return out, err
		}
		out.SetAsides = n
	}
	for _, r := range runs {
		if r.Destination != d.Name {
			continue
		}
		switch {
		case r.Summary.Outcome == producer.Failed:
			out.LastErrors = append(out.LastErrors, Problem{At: r.Summary.Started, Kind: KindRunFailed, Run: r.ID,
				Detail: fmt.Sprintf("run of %s failed: %s", r.Mapping, r.Summary.Error)})
		case r.SetAside:
			out.LastErrors = append(out.LastErrors, Problem{At: r.Published, Kind: KindSetAside, Run: r.ID,
				Detail: fmt.Sprintf("events of the run of %s were set aside while the destination was unavailable; its next run repairs them", r.Mapping)})
		}
	}
	if err := c.store(ctx, view, d, &out, runs, now, staleAfter); err != nil {
		out.Available, out.Error = false, err.Error()
		out.LastErrors = append(out.LastErrors, Problem{At: now, Kind: KindUnavailable, Detail: err.Error()})
	}
	slices.SortStableFunc(out.LastErrors, func(a, b Problem) int { return b.At.Compare(a.At) })
	return out, nil
}

// store reads d's Redis into out; an error means it is unavailable.
func (c *Checker) store(ctx context.Context, view *segments.View, d catalog.Destination, out *Destination, runs []runstore.Record,
	now time.Time, staleAfter time.Duration) error {
	rdb, err := c.Connect(ctx, d)
	if err != nil {
		return err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis does not answer: %w", err)
	}
	out.Available = true
	synced, ok, err := segmentstore.SyncTime(ctx, rdb, out.Prefix)
	if err != nil {
		return err
	}
	if ok {
		out.SynchronizedOn, out.SyncAge = synced, max(now.Sub(synced), 0)
		out.PotentiallyStale = out.SyncAge >= staleAfter
	}
	lost, err := rdb.Get(ctx, bigsegments.StoreLostKey(out.Prefix)).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return fmt.Errorf("read %s: %w", bigsegments.StoreLostKey(out.Prefix), err)
	default:
		at, _ := time.Parse(time.RFC3339, lost)
		out.StoreLost = at
		out.LastErrors = append(out.LastErrors, Problem{At: at, Kind: KindStoreLost,
			Detail: "the Redis lost its data (store id gone): the consumer no longer marks it current until it is rebuilt (README, \"Redis lost its data\")"})
	}
	if out.SetAsides > 0 {
		out.LastErrors = append(out.LastErrors, Problem{Kind: KindSetAside,
			Detail: fmt.Sprintf("the consumer set this destination's events aside %d times while it was unavailable (each segment's next run repairs them)", out.SetAsides)})
	}
	segs, err := view.List(ctx, segments.Filter{Destination: d.Name})
	if err != nil {
		return err
	}
	for _, s := range segs {
		out.Segments = append(out.Segments, segment(s, d.Name, runs))
	}
	return nil
}

// segment is s's freshness and lag, from its metadata and runs.
func segment(s segments.Segment, destination string, runs []runstore.Record) Segment {
	out := Segment{Segment: s}
	for _, r := range runs {
		sum := r.Summary
		if r.Destination != destination || sum.Segment != s.Key || sum.Generation != s.Generation || sum.Outcome != producer.Succeeded {
			continue
		}
		if sum.LastSeq > out.LastPublishedSeq {
			out.LastPublishedSeq, out.LastPublishedRun = sum.LastSeq, r.ID
		}
		// Only a run recorded with its barrier is known to wait for it.
		if !r.Published.IsZero() && r.Applied.IsZero() && !r.SetAside && r.Barrier != nil {
			out.PendingRuns++
			if out.PendingSince.IsZero() || r.Published.Before(out.PendingSince) {
				out.PendingSince = r.Published
			}
		}
	}
	if out.LastPublishedSeq > out.LastSeq {
		out.SeqLag = out.LastPublishedSeq - out.LastSeq
	}
	return out
}
