package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// Runs reads the run history (runstore.Store does).
type Runs interface {
	Get(ctx context.Context, id string) ([]runstore.Record, error)
}

// Lookup reads memberships of context keys.
type Lookup struct {
	Catalog segments.Catalog
	Connect segments.Connector
	// Runs, when set, adds each joining run's trigger, start and status.
	Runs Runs
}

// Query is one lookup: ContextKey in the destination of Env (an
// environment, or a destination's name); with Segment, only that segment.
type Query struct {
	Env        string
	ContextKey string
	Segment    string
}

// Result is what a destination says of one context key.
type Result struct {
	Environment string `json:"environment"`
	Destination string `json:"destination"`
	Prefix      string `json:"prefix"`
	ContextKey  string `json:"context_key"`
	// ContextHash is the SDKs' hash of the key, which names its sets.
	ContextHash string `json:"context_hash"`
	// Segment is the Query's segment, "" for every segment.
	Segment string `json:"segment,omitempty"`
	// Segments are the segment generations whose include or exclude set
	// holds the key (only Segment's with one), sorted by key and
	// generation; empty, never null, when none does.
	Segments []Entry `json:"segments"`
}

// In says whether the key is included in a generation of the result's
// segments (what a segmentMatch on it evaluates to, for that generation).
func (r Result) In() bool {
	return slices.ContainsFunc(r.Segments, func(e Entry) bool { return e.Included })
}

// Entry is the key's place in one segment generation.
type Entry struct {
	Segment    string `json:"segment"`
	Generation int    `json:"generation"`
	Ref        string `json:"ref"`
	// Included and Excluded say which of the key's sets hold the ref; the
	// SDKs let included win when both do.
	Included bool `json:"included"`
	Excluded bool `json:"excluded"`
	// Source, SourceDetail, Mapping and Current describe the segment as
	// cohortsync segments does (segments.Segment).
	Source       string `json:"source"`
	SourceDetail string `json:"source_detail,omitempty"`
	Mapping      string `json:"mapping,omitempty"`
	Current      bool   `json:"current"`
	// Since says since when the key is included; nil when it is not
	// (exclusions are not tracked: cohortsync never writes them).
	Since *Since `json:"since,omitempty"`
}

// UnknownSince is Since.Note of a member that joined before since-tracking.
const UnknownSince = "unknown (before since-tracking)"

// Since is when a member joined, as recorded.
type Since struct {
	// Known is false for a member that joined before since-tracking (Note
	// UnknownSince) or one included without being in the member index.
	Known bool `json:"known"`
	// Seq is the sequence number of the add that let the key in (the first
	// of its current stay), Run the run that published it.
	Seq uint64 `json:"seq,omitempty"`
	Run string `json:"run,omitempty"`
	// RunStarted, RunTrigger and RunStatus come from the run history, while
	// it keeps the run (of this destination).
	RunStarted time.Time `json:"run_started,omitzero"`
	RunTrigger string    `json:"run_trigger,omitempty"`
	RunStatus  string    `json:"run_status,omitempty"`
	// Note says what is missing, for people.
	Note string `json:"note,omitempty"`
}

// ErrUnknownEnvironment is wrapped by the error of a Query whose Env no
// destination serves.
var ErrUnknownEnvironment = errors.New("no destination serves this environment")

// Destination returns the destination of env: the one whose environment
// is env, else the one named env.
func Destination(ctx context.Context, cat segments.Catalog, env string) (catalog.Destination, error) {
	dests, err := cat.Destinations(ctx)
	if err != nil {
		return catalog.Destination{}, err
	}
	for _, d := range dests {
		if d.Environment == env {
			return d, nil
		}
	}
	for _, d := range dests {
		if d.Name == env {
			return d, nil
		}
	}
	return catalog.Destination{}, fmt.Errorf("environment %q: %w", env, ErrUnknownEnvironment)
}

// Lookup returns the segments of q.Env's destination whose include or
// exclude set holds q.ContextKey (only q.Segment's when set), each with
// its source and, when included, since which run. Reads: the key's two
// sets, then the segments' metadata and the key's joining sequence numbers
// in two pipelines, then the run history once per joining run.
func (l *Lookup) Lookup(ctx context.Context, q Query) (Result, error) {
	if q.ContextKey == "" {
		return Result{}, errors.New("lookup: no context key given")
	}
	d, err := Destination(ctx, l.Catalog, q.Env)
	if err != nil {
		return Result{}, err
	}
	c, err := l.Connect(ctx, d)
	if err != nil {
		return Result{}, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	prefix := d.Prefix()
	res := Result{Environment: d.Environment, Destination: d.Name, Prefix: prefix, ContextKey: q.ContextKey,
		ContextHash: bigsegments.HashContextKey(q.ContextKey), Segment: q.Segment, Segments: []Entry{}}
	included, excluded, err := segmentstore.Membership(ctx, c, prefix, q.ContextKey)
	if err != nil {
		return res, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	byRef := map[string]*Entry{}
	var refs []string
	add := func(ref string, inc bool) {
		seg, gen, ok := bigsegments.ParseRef(ref)
		if !ok || (q.Segment != "" && seg != q.Segment) {
			return
		}
		e := byRef[ref]
		if e == nil {
			e = &Entry{Segment: seg, Generation: gen, Ref: ref}
			byRef[ref] = e
			refs = append(refs, ref)
		}
		if inc {
			e.Included = true
		} else {
			e.Excluded = true
		}
	}
	for _, ref := range included {
		add(ref, true)
	}
	for _, ref := range excluded {
		add(ref, false)
	}
	if len(refs) == 0 {
		return res, nil
	}
	if err := l.describe(ctx, c, d, byRef, refs); err != nil {
		return res, err
	}
	if err := l.since(ctx, c, d, q.ContextKey, byRef, refs); err != nil {
		return res, err
	}
	for _, ref := range refs {
		res.Segments = append(res.Segments, *byRef[ref])
	}
	slices.SortFunc(res.Segments, func(a, b Entry) int {
		if c := strings.Compare(a.Segment, b.Segment); c != 0 {
			return c
		}
		return a.Generation - b.Generation
	})
	return res, nil
}

// describe fills each entry's source and owner.
func (l *Lookup) describe(ctx context.Context, c segmentstore.Client, d catalog.Destination, byRef map[string]*Entry, refs []string) error {
	mappings, err := l.Catalog.List(ctx)
	if err != nil {
		return err
	}
	infos, err := segmentstore.Infos(ctx, c, d.Prefix(), refs)
	if err != nil {
		return fmt.Errorf("destination %q: %w", d.Name, err)
	}
	for i, ref := range refs {
		e := byRef[ref]
		s := segments.Segment{Key: e.Segment, Destination: d.Name, Generation: e.Generation, ContextKind: infos[i].ContextKind,
			LastRun: infos[i].LastRun, Current: true}
		segments.Describe(&s, mappings)
		e.Source, e.SourceDetail, e.Mapping, e.Current = s.Source, s.SourceDetail, s.Mapping, s.Current
	}
	return nil
}

// since fills the Since of each included entry.
func (l *Lookup) since(ctx context.Context, c segmentstore.Client, d catalog.Destination, key string, byRef map[string]*Entry, refs []string) error {
	var inc []string
	for _, ref := range refs {
		if byRef[ref].Included {
			inc = append(inc, ref)
		}
	}
	joined, err := segmentstore.JoinedSince(ctx, c, d.Prefix(), key, inc)
	if err != nil {
		return fmt.Errorf("destination %q: %w", d.Name, err)
	}
	records := map[string]*runstore.Record{}
	for i, ref := range inc {
		j := joined[i]
		s := &Since{Known: j.Known(), Seq: j.Seq, Run: j.Run}
		switch {
		case !j.Member:
			s.Note = "included, but not in cohortsync's member index (written by another tool?)"
		case !j.Known():
			s.Note = UnknownSince
		case j.Run == "":
			s.Note = "the segment's run index has no run for this sequence number"
		default:
			rec, err := l.record(ctx, records, j.Run, d.Name)
			if err != nil {
				return err
			}
			if rec == nil {
				s.Note = "run no longer in the run history"
			} else {
				s.RunStarted, s.RunTrigger, s.RunStatus = rec.Summary.Started, rec.Trigger, rec.Status()
			}
		}
		byRef[ref].Since = s
	}
	return nil
}

// record is run's record for destination, read once per lookup; nil when
// the history does not hold it (or there is no history).
func (l *Lookup) record(ctx context.Context, cache map[string]*runstore.Record, run, destination string) (*runstore.Record, error) {
	if l.Runs == nil {
		return nil, nil
	}
	if rec, ok := cache[run]; ok {
		return rec, nil
	}
	recs, err := l.Runs.Get(ctx, run)
	if err != nil && !errors.Is(err, runstore.ErrNotFound) {
		return nil, err
	}
	var found *runstore.Record
	for i := range recs {
		if recs[i].Destination == destination {
			found = &recs[i]
		}
	}
	cache[run] = found
	return found, nil
}
