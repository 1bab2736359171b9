package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// withSegments runs f on a segments view of the catalog in the Redis of rc
// and of its destinations' Redis (passwords read through env).
func withSegments(rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), f func(*segments.View) error) error {
	return withStore(rc, sc, func(s *catalogstore.Store) (err error) {
		dests := newDestClients(env)
		defer func() { err = errors.Join(err, dests.Close()) }()
		return f(&segments.View{Catalog: s, Connect: dests.connect})
	})
}

// FormatTable is the output format of a table for people.
const FormatTable = "table"

// ValidateListFormat reports a format SegmentsList and SegmentsShow do not
// write as a *setting.Error of "output".
func ValidateListFormat(format string) error {
	if format != FormatTable && format != FormatJSON {
		return setting.Invalid("output", format, "%s or %s", FormatTable, FormatJSON)
	}
	return nil
}

// SegmentsList writes the segments of f, one row per segment, destination
// and generation, as a table or JSON (format). A destination whose Redis
// cannot be read is left out and its error returned after the others are
// written.
func SegmentsList(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), f segments.Filter, format string, stdout io.Writer) error {
	return withSegments(rc, sc, env, func(v *segments.View) error {
		segs, err := v.List(ctx, f)
		if format == FormatJSON {
			return errors.Join(writeJSON(stdout, segs), err)
		}
		return errors.Join(writeTable(stdout, segs), err)
	})
}

// writeJSON writes segs as a JSON array.
func writeJSON(stdout io.Writer, segs []segments.Segment) error {
	if segs == nil {
		segs = []segments.Segment{}
	}
	b, err := json.MarshalIndent(segs, "", "  ")
	if err != nil {
		return fmt.Errorf("encode segments: %w", err)
	}
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// writeTable writes segs as a table, one row each.
func writeTable(stdout io.Writer, segs []segments.Segment) error {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "SEGMENT\tDESTINATION\tGENERATION\tCONTEXT-KIND\tSOURCE\tMAPPING\tMEMBERS\tLAST-RUN\tLAST-APPLIED\tSYNCHRONIZED")
	for _, s := range segs {
		gen := fmt.Sprint(s.Generation)
		if !s.Current {
			gen += " (not the mapping's)"
		}
		_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Key, s.Destination, gen, s.ContextKind, s.Source,
			orDash(s.Mapping), s.Members, orDash(s.LastRun), timeOrDash(s.LastApplied), syncedOn(s))
	}
	return flush(w)
}

// SegmentsShow writes each destination's (and generation's) view of
// segment key, or with ldJSON the flag data definition of the one
// segment it names (with several, destination must choose).
func SegmentsShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), key, destination string, ldJSON bool,
	format string, stdout io.Writer) error {
	return withSegments(rc, sc, env, func(v *segments.View) error {
		segs, err := v.Show(ctx, key, destination)
		if err != nil && (ldJSON || len(segs) == 0) {
			return err
		}
		if format == FormatJSON && !ldJSON {
			return errors.Join(writeJSON(stdout, segs), err)
		}
		if ldJSON {
			s, err := current(segs, "--ld-json")
			if err != nil {
				return err
			}
			return segments.WriteDefinition(stdout, s)
		}
		for i, s := range segs {
			if i > 0 {
				if err := say(stdout, "\n"); err != nil {
					return err
				}
			}
			if err := writeSegment(stdout, s); err != nil {
				return err
			}
		}
		return err
	})
}

// current is the one segment of segs a command acting on one needs: the
// mapping's generation, else the highest; an error when they are in
// several destinations.
func current(segs []segments.Segment, what string) (segments.Segment, error) {
	var dests []string
	for _, s := range segs {
		if len(dests) == 0 || dests[len(dests)-1] != s.Destination {
			dests = append(dests, s.Destination)
		}
	}
	if len(dests) > 1 {
		return segments.Segment{}, fmt.Errorf("%s: segment %q is in destinations %s; choose one with --destination (flag data is per environment)",
			what, segs[0].Key, strings.Join(dests, ", "))
	}
	best := segs[0]
	for _, s := range segs[1:] {
		if s.Current && !best.Current || s.Current == best.Current && s.Generation > best.Generation {
			best = s
		}
	}
	return best, nil
}

func writeSegment(stdout io.Writer, s segments.Segment) error {
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintf(w, "segment %s, destination %s (environment %s, prefix %s)\n", s.Key, s.Destination, s.Environment, s.Prefix)
	source := s.Source
	if s.SourceDetail != "" {
		source += " " + s.SourceDetail
	}
	owner := "none: a list segment, edited with segments add, remove and import"
	if s.Synced() {
		owner = s.Mapping + " (synced: direct writes are refused)"
	}
	gen := fmt.Sprint(s.Generation)
	if !s.Current {
		gen += " (not the mapping's generation)"
	}
	last := "none applied yet"
	if s.LastRun != "" {
		last = fmt.Sprintf("%s (sequence %d), applied %s", s.LastRun, s.LastSeq, s.LastApplied.UTC().Format(time.RFC3339))
	}
	for _, row := range [][2]string{
		{"source", source}, {"mapping", owner}, {"generation", gen}, {"ref", s.Ref()}, {"context kind", s.ContextKind},
		{"members", fmt.Sprint(s.Members)}, {"last run", last}, {"synchronized", syncedOn(s)},
	} {
		_, _ = fmt.Fprintf(w, "  %s\t%s\n", row[0], row[1])
	}
	return flush(w)
}

// syncedOn says how current the destination is, as the SDKs judge it.
func syncedOn(s segments.Segment) string {
	if s.SynchronizedOn.IsZero() {
		return "never (SDKs report STALE)"
	}
	out := fmt.Sprintf("%s (%v ago)", s.SynchronizedOn.UTC().Format(time.RFC3339), s.SyncAge.Round(time.Second))
	if s.Stale() {
		out += " STALE"
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// SegmentsExport writes every member of segment key in destination as CSV
// to out ("" or "-": stdout), sorted; generation 0 is the mapping's, else
// the highest.
func SegmentsExport(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), key, destination string, generation int,
	out string, opts segments.ExportOptions, stdout, stderr io.Writer) error {
	return withSegments(rc, sc, env, func(v *segments.View) (err error) {
		segs, err := v.Show(ctx, key, destination)
		if err != nil {
			return err
		}
		s, err := pick(segs, generation)
		if err != nil {
			return err
		}
		d, err := v.Catalog.Destination(ctx, s.Destination)
		if err != nil {
			return err
		}
		c, err := v.Connect(ctx, d)
		if err != nil {
			return err
		}
		w := stdout
		if out != "" && out != "-" {
			f, err := os.Create(out)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer func() {
				if cerr := f.Close(); cerr != nil {
					err = errors.Join(err, fmt.Errorf("export: %w", cerr))
				}
			}()
			w = f
		}
		st, err := segments.Export(ctx, c, s.Prefix, s.Ref(), w, opts)
		if err != nil {
			return err
		}
		return say(stderr, "segment %s, destination %s: %d members exported\n", s.Ref(), s.Destination, st.Members)
	})
}

// pick is the generation of segs (one destination's) asked for, or the
// current one.
func pick(segs []segments.Segment, generation int) (segments.Segment, error) {
	s, err := current(segs, "export")
	if err != nil || generation == 0 {
		return s, err
	}
	for _, s := range segs {
		if s.Generation == generation {
			return s, nil
		}
	}
	return segments.Segment{}, fmt.Errorf("segment %q has no generation %d in destination %s", s.Key, generation, s.Destination)
}

// SegmentsReindex indexes each destination's (or the named one's) segments
// written before the segments index existed, and says how many it found.
func SegmentsReindex(ctx context.Context, rc redisx.Config, sc catalogstore.Config, env func(string) (string, bool), destination string, stdout io.Writer) error {
	return withSegments(rc, sc, env, func(v *segments.View) error {
		found, err := segments.Reindex(ctx, v.Catalog, v.Connect, destination)
		names := slices.Sorted(maps.Keys(found))
		for _, name := range names {
			if werr := say(stdout, "destination %s: %d segments indexed\n", name, found[name]); werr != nil {
				return errors.Join(werr, err)
			}
		}
		return err
	})
}

// SegmentEdit is one direct edit of a list segment.
type SegmentEdit struct {
	// Op is "add", "remove" or "import".
	Op     string
	Target segments.Target
	// Keys are the context keys of add and remove.
	Keys []string
	// CSV and IDColumn are the file of import and its key column.
	CSV      string
	IDColumn string
}

// Segment edit operations.
const (
	EditAdd    = "add"
	EditRemove = "remove"
	EditImport = "import"
)

// SegmentsEdit publishes edit through Kafka under the segment's lease and
// with its shared sequence numbers (the settings of sync --mapping),
// records it in the run history and writes its summary to stdout. A
// synced segment's edit is refused (segments.ErrSyncedSegment).
func SegmentsEdit(ctx context.Context, p Process, env func(string) (string, bool), kc kafkax.Config, rc redisx.Config,
	sc catalogstore.Config, cfg mappingrun.Config, opts RunOptions, edit SegmentEdit, stdout, stderr io.Writer) error {
	cfg.Lease.Prefix = sc.Prefix // the runs' leases and counters
	r, err := startRuns(ctx, p, env, kc, rc, sc, cfg, opts.Retention, stderr)
	if err != nil {
		return err
	}
	return errors.Join(segmentsEdit(ctx, r, cfg, edit, stdout), r.down.run())
}

func segmentsEdit(ctx context.Context, r *runs, cfg mappingrun.Config, edit SegmentEdit, stdout io.Writer) error {
	locker, err := segmentlease.NewLocker(r.control, cfg.Lease)
	if err != nil {
		return err
	}
	seq, err := segmentlease.NewSeqAllocator(r.control, cfg.Lease)
	if err != nil {
		return err
	}
	pub, err := publish.New(cfg.Producer.Config, r.kf)
	if err != nil {
		return err
	}
	defer func() { _ = pub.Close() }() // after the edit's Wait: nothing in flight
	history := &trackedHistory{h: r.history, pub: r.pub, before: r.pub.before(ctx, []string{edit.Target.Destination})}
	e := &segments.Editor{Catalog: r.store, Connect: r.dests.connect, Locker: locker, Seq: seq, Streams: pub,
		Importer: r.runner, History: history, Topic: cfg.Producer.Topic, Log: r.log}
	var sum producer.Summary
	switch edit.Op {
	case EditImport:
		sum, err = e.Import(ctx, edit.Target, edit.CSV, edit.IDColumn)
	case EditAdd, EditRemove:
		if err = publish.EnsureTopics(ctx, cfg.Producer.Config, r.kf); err != nil {
			return err
		}
		if edit.Op == EditAdd {
			sum, err = e.Add(ctx, edit.Target, edit.Keys)
		} else {
			sum, err = e.Remove(ctx, edit.Target, edit.Keys)
		}
	default:
		return fmt.Errorf("segments: unknown edit %q", edit.Op)
	}
	if err != nil {
		return err
	}
	if err := say(stdout, "segment %s, destination %s (%s of a list segment, trigger %s):\n", sum.Segment, edit.Target.Destination, edit.Op, segments.TriggerManual); err != nil {
		return err
	}
	if _, err := sum.WriteTo(stdout); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// trackedHistory records an edit with what tells when it is applied (the
// topic's ends before the edit, and at recording, once its events are
// acknowledged), as mapping runs are recorded.
type trackedHistory struct {
	h      *runstore.Store
	pub    *publication
	before beforeRun
}

func (t *trackedHistory) Add(ctx context.Context, rec runstore.Record) error {
	if rec.Summary.Outcome == producer.Succeeded {
		t.pub.after(ctx, t.before).track(&rec)
	}
	return t.h.Add(ctx, rec)
}
