package segments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

// SourceManual is the source label of the events of a direct add or
// remove.
const SourceManual = "manual"

// TriggerManual is the run history's trigger of every direct edit.
const TriggerManual = "manual"

// HistoryName is the name a list segment's edits are recorded under in the
// run history, in place of a mapping's ("list:<segment>"; a mapping's
// name cannot hold ':', so the two never collide).
func HistoryName(segment string) string { return "list:" + segment }

// Streams opens event streams (publish.Publisher does).
type Streams interface {
	Stream(ctx context.Context, origin publish.Origin) (*publish.Stream, error)
}

// Importer runs a CSV into a segment the way a mapping run does: diffed
// against the segment's shared state, under its lease, with shared
// sequence numbers (mappingrun.Runner does).
type Importer interface {
	Run(ctx context.Context, m catalog.Mapping) ([]mappingrun.Result, error)
}

// History records runs (runstore.Store does).
type History interface {
	Add(ctx context.Context, r runstore.Record) error
}

// Editor makes direct edits of list segments through the event path.
type Editor struct {
	Catalog Catalog
	Connect Connector
	// Locker and Seq are the leases and shared sequence counters the
	// mapping runs use (segmentlease.Locker and SeqAllocator).
	Locker snapshot.Locker
	Seq    snapshot.SeqAllocator
	// Streams publishes adds and removes; Importer runs imports.
	Streams  Streams
	Importer Importer
	History  History
	// Topic is recorded in the summaries.
	Topic string
	// Now is the clock of run ids. Default time.Now.
	Now func() time.Time
	// Log gets a warning when the history cannot be written. Default
	// slog.Default().
	Log *slog.Logger
}

// ErrContextKind is wrapped by the refusal of an edit whose context kind
// is not the one the segment's members have (an API answers it with 409).
var ErrContextKind = errors.New("another context kind than the segment's")

// Target is the list segment an edit writes: Segment in Destination, of
// Generation (0: the highest the destination holds, else 1) and
// ContextKind ("": what the destination recorded, else "user"; another
// kind than the recorded one is refused).
type Target struct {
	Segment     string
	Destination string
	Generation  int
	ContextKind string
}

// target is a resolved Target.
type target struct {
	dest   catalog.Destination
	id     snapshot.SegmentID
	client segmentstore.Client
}

// resolve refuses a synced segment and finds t's generation and kind.
func (e *Editor) resolve(ctx context.Context, op string, t Target) (target, error) {
	if err := checkName("segment", t.Segment); err != nil {
		return target{}, err
	}
	mappings, err := e.Catalog.List(ctx)
	if err != nil {
		return target{}, err
	}
	if m, ok := Owner(mappings, t.Segment, t.Destination, t.Generation); ok {
		return target{}, &SyncedError{Segment: t.Segment, Destination: t.Destination, Mapping: m.Name, Op: op}
	}
	d, err := e.Catalog.Destination(ctx, t.Destination)
	if err != nil {
		return target{}, err
	}
	c, err := e.Connect(ctx, d)
	if err != nil {
		return target{}, err
	}
	gen := t.Generation
	if gen == 0 {
		gen = catalog.DefaultGeneration
		err := segmentstore.Segments(ctx, c, d.Prefix(), func(ref string) error {
			if seg, g, ok := bigsegments.ParseRef(ref); ok && seg == t.Segment {
				gen = max(gen, g)
			}
			return nil
		})
		if err != nil {
			return target{}, err
		}
	}
	info, err := segmentstore.Info(ctx, c, d.Prefix(), bigsegments.Ref(t.Segment, gen))
	if err != nil {
		return target{}, err
	}
	kind := t.ContextKind
	switch {
	case kind != "" && info.ContextKind != "" && kind != info.ContextKind:
		return target{}, fmt.Errorf("%s refused: %w: segment %q generation %d in destination %q holds members of context kind %q, not %q",
			op, ErrContextKind, t.Segment, gen, d.Name, info.ContextKind, kind)
	case kind == "":
		kind = cmp.Or(info.ContextKind, catalog.DefaultContextKind)
	}
	if err := checkName("context kind", kind); err != nil {
		return target{}, err
	}
	return target{dest: d, client: c, id: snapshot.SegmentID{Env: d.Environment, Segment: t.Segment, Generation: gen, ContextKind: kind}}, nil
}

// checkName applies the event's rules for a segment key or context kind.
func checkName(what, v string) error {
	if err := schema.CheckIdentifier(v); err != nil {
		return fmt.Errorf("%s %q: want %s (%w)", what, v, schema.IdentifierForm, err)
	}
	if strings.IndexByte(v, 0x1f) >= 0 {
		return fmt.Errorf("%s %q: contains the unit separator 0x1f", what, v)
	}
	return nil
}

// CheckKeys returns keys without repeats, in their order, or an error
// naming every key an event cannot carry.
func CheckKeys(keys []string) ([]string, error) {
	var errs []error
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for i, k := range keys {
		if err := schema.CheckIdentifier(k); err != nil {
			errs = append(errs, fmt.Errorf("context key %d %q: want %s (%w)", i+1, k, schema.IdentifierForm, err))
			continue
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, errors.New("no context key given")
	}
	return out, nil
}

// Add publishes the addition of keys to list segment t and returns once
// Kafka acknowledged them; the consumer applies them.
func (e *Editor) Add(ctx context.Context, t Target, keys []string) (producer.Summary, error) {
	return e.change(ctx, t, schema.OpAdd, keys)
}

// Remove publishes the removal of keys from list segment t, like Add.
func (e *Editor) Remove(ctx context.Context, t Target, keys []string) (producer.Summary, error) {
	return e.change(ctx, t, schema.OpRemove, keys)
}

// chunk is the most changes per Stream.Send.
const chunk = 2500

func (e *Editor) change(ctx context.Context, t Target, op schema.Op, keys []string) (sum producer.Summary, err error) {
	keys, err = CheckKeys(keys)
	if err != nil {
		return sum, err
	}
	tg, err := e.resolve(ctx, op.String(), t)
	if err != nil {
		return sum, err
	}
	start := e.now()
	id := tg.id
	sum = producer.Summary{Run: producer.NewRunID(start), Started: start, Env: id.Env, Segment: id.Segment, Generation: id.Generation,
		ContextKind: id.ContextKind, Topic: e.Topic, Source: SourceManual, Input: fmt.Sprintf("segments %s (%d keys)", op, len(keys)),
		Rows: int64(len(keys))}
	defer func() {
		sum.Duration = e.now().Sub(start)
		sum.Outcome = producer.Succeeded
		if err != nil {
			err = fmt.Errorf("%s run %s: %w", op, sum.Run, err)
			sum.Outcome, sum.Error = producer.Failed, err.Error()
		}
		e.record(ctx, tg.dest.Name, sum)
	}()
	lease, err := e.Locker.Lock(ctx, id)
	if err != nil {
		return sum, err
	}
	defer func() {
		if uerr := lease.Unlock(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	// Above what the destination applied, in case the counter was lost.
	info, err := segmentstore.Info(ctx, tg.client, tg.dest.Prefix(), bigsegments.Ref(id.Segment, id.Generation))
	if err != nil {
		return sum, err
	}
	rng, err := e.Seq.Reserve(ctx, id, info.LastSeq+1, uint64(len(keys)))
	if err != nil {
		return sum, err
	}
	stream, err := e.Streams.Stream(ctx, publish.Origin{Segment: id, Run: sum.Run, Source: SourceManual})
	if err != nil {
		return sum, err
	}
	buf := make([]snapshot.Change, 0, min(chunk, len(keys)))
	seq := rng.First
	for i, k := range keys {
		buf = append(buf, snapshot.Change{Op: op, Key: []byte(k), Seq: seq})
		seq++
		if len(buf) == chunk || i == len(keys)-1 {
			if err := stream.Send(ctx, buf); err != nil {
				return sum, err
			}
			buf = buf[:0]
		}
	}
	if err := stream.Wait(ctx); err != nil {
		return sum, err
	}
	sum.Events, sum.FirstSeq, sum.LastSeq = stream.Acked(), rng.First, rng.Last
	if op == schema.OpAdd {
		sum.Added = sum.Events
	} else {
		sum.Removed = sum.Events
	}
	// Published in full: a lease lost meanwhile means another run may
	// have interleaved, which the caller should hear of.
	return sum, lease.Check(ctx)
}

// Import makes list segment t's members those of the CSV at path (or
// http(s) URL), whose context keys are in column idColumn (default
// user_id): it is diffed against what the segment holds like a mapping
// run, rows without a usable key are excluded and counted, and only the
// adds and removes are published.
func (e *Editor) Import(ctx context.Context, t Target, path, idColumn string) (producer.Summary, error) {
	tg, err := e.resolve(ctx, "import", t)
	if err != nil {
		return producer.Summary{}, err
	}
	id := tg.id
	res, err := e.Importer.Run(ctx, catalog.Mapping{
		Name: HistoryName(id.Segment), Source: catalog.Source{Kind: catalog.SourceCSV, Location: path},
		Segment: id.Segment, Destinations: []string{tg.dest.Name}, IDProperty: cmp.Or(idColumn, catalog.DefaultIDProperty),
		ContextKind: id.ContextKind, Generation: id.Generation, Enabled: true,
	})
	var sum producer.Summary
	for _, r := range res {
		sum = r.Summary
		if sum.Run != "" {
			e.record(ctx, r.Destination, sum)
		}
	}
	return sum, err
}

// record adds a run to the history; a history that cannot be written is
// logged, not made the edit's failure (the events are published).
func (e *Editor) record(ctx context.Context, dest string, sum producer.Summary) {
	if e.History == nil {
		return
	}
	rec := runstore.Record{ID: sum.Run, Mapping: HistoryName(sum.Segment), Destination: dest, Trigger: TriggerManual, Summary: sum}
	if err := e.History.Add(context.WithoutCancel(ctx), rec); err != nil {
		log := e.Log
		if log == nil {
			log = slog.Default()
		}
		log.WarnContext(ctx, "record a segment edit in the history", "segment", sum.Segment, "run", sum.Run, "error", err)
	}
}

func (e *Editor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
