package segments

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
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// Catalog is what segments read of the catalog (catalogstore.Store).
type Catalog interface {
	List(ctx context.Context) ([]catalog.Mapping, error)
	Destinations(ctx context.Context) ([]catalog.Destination, error)
	Destination(ctx context.Context, name string) (catalog.Destination, error)
}

// Connector returns the client of a destination's Redis; its owner caches
// and closes clients.
type Connector func(ctx context.Context, d catalog.Destination) (redis.UniversalClient, error)

// Source kinds of a segment besides the mappings' (csv, amplitude, push).
const (
	// SourceList is a segment no mapping names: people edit it.
	SourceList = "list"
)

// StaleAfter is the SDKs' default staleAfter: a destination whose
// big_segments_synchronized_on is older makes them report STALE.
const StaleAfter = 120 * time.Second

// Segment is one generation of a segment in one destination.
type Segment struct {
	Key         string `json:"key"`
	Destination string `json:"destination"`
	Environment string `json:"environment"`
	Prefix      string `json:"prefix"`
	Generation  int    `json:"generation"`
	// ContextKind is the kind of the members: what Redis recorded, else
	// the owning mapping's, else "user".
	ContextKind string `json:"context_kind"`
	// Source is the owning mapping's source kind (csv, amplitude, push), or
	// for a segment no mapping names "push" when partners push it without
	// a mapping, else SourceList.
	Source string `json:"source"`
	// SourceDetail is the CSV path or URL, the Amplitude cohort, the push
	// integration (and cohort); "" for a list segment.
	SourceDetail string `json:"source_detail,omitempty"`
	// Mapping is the mapping that owns the segment, "" for none.
	Mapping string `json:"mapping,omitempty"`
	// Current is false for a generation of a mapping's segment other than
	// the mapping's.
	Current bool `json:"current"`
	// Members is SCARD of the member index.
	Members int64 `json:"members"`
	// LastRun, LastSeq and LastApplied are the metadata of the last
	// applied event: its run, sequence number and when its batch was
	// applied ("", 0, zero if none yet).
	LastRun     string    `json:"last_run,omitempty"`
	LastSeq     uint64    `json:"last_seq,omitempty"`
	LastApplied time.Time `json:"last_applied,omitzero"`
	// SynchronizedOn is the destination's big_segments_synchronized_on,
	// zero when missing (the SDKs then report STALE); SyncAge is how old
	// it was when read (named as in status.Destination).
	SynchronizedOn time.Time     `json:"synchronized_on,omitzero"`
	SyncAge        time.Duration `json:"sync_age_ns,omitempty"`
}

// Ref is the segment's ref in Redis, "<key>.g<generation>".
func (s Segment) Ref() string { return bigsegments.Ref(s.Key, s.Generation) }

// Stale says whether the SDKs report the destination STALE.
func (s Segment) Stale() bool { return s.SynchronizedOn.IsZero() || s.SyncAge >= StaleAfter }

// Synced says whether a mapping owns the segment (it is read-only).
func (s Segment) Synced() bool { return s.Mapping != "" }

// Filter selects segments.
type Filter struct {
	// Destination, when set, is the one destination looked at.
	Destination string
	// Segment, when set, is the one segment key kept.
	Segment string
}

// View reads segments from the catalog and the destinations' Redis.
type View struct {
	Catalog Catalog
	Connect Connector
	// Now is the clock of the freshness' age. Default time.Now.
	Now func() time.Time
}

// ErrNotFound is wrapped by the error of Show for a segment no mapping
// names and no destination holds.
var ErrNotFound = errors.New("no such segment")

// List returns the segments of f, sorted by key, destination and
// generation: in each destination, those its mappings name (at their
// generation) and those its segments index holds (every generation the
// consumer wrote). A destination whose Redis cannot be read is left out:
// the others' segments come with its error.
func (v *View) List(ctx context.Context, f Filter) ([]Segment, error) {
	mappings, err := v.Catalog.List(ctx)
	if err != nil {
		return nil, err
	}
	dests, err := destinations(ctx, v.Catalog, f.Destination)
	if err != nil {
		return nil, err
	}
	var (
		out  []Segment
		errs []error
	)
	for _, d := range dests {
		segs, err := v.destination(ctx, d, mappings, f.Segment)
		if err != nil {
			errs = append(errs, fmt.Errorf("destination %q: %w", d.Name, err))
			continue
		}
		out = append(out, segs...)
	}
	slices.SortFunc(out, func(a, b Segment) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Destination, b.Destination), cmp.Compare(a.Generation, b.Generation))
	})
	return out, errors.Join(errs...)
}

// Show returns segment key in each destination (or the one given), every
// generation found; an error wrapping ErrNotFound if there is none. Like
// List, it returns what it found with the error of a destination it could
// not read.
func (v *View) Show(ctx context.Context, key, destination string) ([]Segment, error) {
	segs, err := v.List(ctx, Filter{Destination: destination, Segment: key})
	if err != nil {
		return segs, err
	}
	if len(segs) == 0 {
		where := "any destination"
		if destination != "" {
			where = "destination " + destination
		}
		return nil, fmt.Errorf("segment %q: %w in %s (no mapping names it there and its Redis holds none of it)", key, ErrNotFound, where)
	}
	return segs, nil
}

// destination lists d's segments (only key's when set).
func (v *View) destination(ctx context.Context, d catalog.Destination, mappings []catalog.Mapping, key string) ([]Segment, error) {
	c, err := v.Connect(ctx, d)
	if err != nil {
		return nil, err
	}
	prefix := d.Prefix()
	type gen struct {
		key string
		gen int
	}
	found := map[gen]bool{}
	for _, m := range mappings {
		if slices.Contains(m.Destinations, d.Name) && (key == "" || m.Segment == key) {
			found[gen{m.Segment, m.Generation}] = true
		}
	}
	err = segmentstore.Segments(ctx, c, prefix, func(ref string) error {
		if seg, g, ok := bigsegments.ParseRef(ref); ok && (key == "" || seg == key) {
			found[gen{seg, g}] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	synced, ok, err := segmentstore.SyncTime(ctx, c, prefix)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	var age time.Duration
	if ok {
		age = max(now().Sub(synced), 0)
	}
	gens := make([]gen, 0, len(found))
	refs := make([]string, 0, len(found))
	for g := range found {
		gens = append(gens, g)
		refs = append(refs, bigsegments.Ref(g.key, g.gen))
	}
	infos, err := segmentstore.Infos(ctx, c, prefix, refs)
	if err != nil {
		return nil, err
	}
	out := make([]Segment, 0, len(found))
	for i, g := range gens {
		info := infos[i]
		s := Segment{Key: g.key, Destination: d.Name, Environment: d.Environment, Prefix: prefix, Generation: g.gen,
			ContextKind: info.ContextKind, Members: info.Members, LastRun: info.LastRun, LastSeq: info.LastSeq,
			LastApplied: info.LastApplied, SynchronizedOn: synced, SyncAge: age, Current: true}
		Describe(&s, mappings)
		out = append(out, s)
	}
	return out, nil
}

// Describe fills s's owner, source and Current from the mapping of
// mappings that names s.Key in s.Destination, or from s.LastRun when none
// does (a partner push, else a list segment), and a missing ContextKind
// from the mapping (else "user"); what List and Show do for each segment.
func Describe(s *Segment, mappings []catalog.Mapping) {
	if m, ok := Owner(mappings, s.Key, s.Destination, s.Generation); ok {
		s.Mapping, s.Source, s.SourceDetail = m.Name, string(m.Source.Kind), m.Source.Location
		s.Current = m.Generation == s.Generation
		if m.Source.Kind == catalog.SourceAmplitude && m.Source.Project != "" {
			s.SourceDetail += " (project " + m.Source.Project + ")"
		}
		if s.ContextKind == "" {
			s.ContextKind = m.ContextKind
		}
	} else if integration, ok := pushedBy(s.LastRun); ok {
		s.Source, s.SourceDetail = string(catalog.SourcePush), integration
	} else {
		s.Source = SourceList
	}
	if s.ContextKind == "" {
		s.ContextKind = catalog.DefaultContextKind
	}
}

// pushedBy is the partner integration of a receiver's run id
// ("push-<integration>-<n>-<random>").
func pushedBy(run string) (string, bool) {
	rest, ok := strings.CutPrefix(run, "push-")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return "", false
	}
	j := strings.LastIndexByte(rest[:i], '-')
	if j <= 0 {
		return "", false
	}
	return rest[:j], true
}

// Reindex adds to the segments index of each destination (or the one
// named) the segments whose metadata predates the index (see
// segmentstore.Reindex: one SCAN of the keyspace, for an upgrade), and
// returns how many it found per destination.
func Reindex(ctx context.Context, cat Catalog, connect Connector, destination string) (map[string]int64, error) {
	dests, err := destinations(ctx, cat, destination)
	if err != nil {
		return nil, err
	}
	found := map[string]int64{}
	var errs []error
	for _, d := range dests {
		c, err := connect(ctx, d)
		if err == nil {
			found[d.Name], err = segmentstore.Reindex(ctx, c, d.Prefix())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("destination %q: %w", d.Name, err))
		}
	}
	return found, errors.Join(errs...)
}

// destinations is the one named, or every destination.
func destinations(ctx context.Context, cat Catalog, name string) ([]catalog.Destination, error) {
	if name == "" {
		return cat.Destinations(ctx)
	}
	d, err := cat.Destination(ctx, name)
	if err != nil {
		return nil, err
	}
	return []catalog.Destination{d}, nil
}
