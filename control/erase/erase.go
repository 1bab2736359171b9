package erase

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/membership"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/control/segments"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

// Source is the source label of an erase's events.
const Source = "erase"

// Trigger is the run history's trigger of an erase.
const Trigger = "erase"

// HistoryName is the name an erase from env is recorded under in the run
// history ("erase:<env>"; a mapping's name cannot hold ':').
func HistoryName(env string) string { return "erase:" + env }

// Config tunes an Eraser. The zero value takes every default.
type Config struct {
	// LockWait bounds how long Erase waits for a segment's lease that a
	// run holds. Default DefaultLockWait.
	LockWait time.Duration
	// LockPoll is how often it tries again meanwhile. Default
	// DefaultLockPoll.
	LockPoll time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultLockWait = 2 * time.Minute
	DefaultLockPoll = 500 * time.Millisecond
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.LockWait < 0 {
		errs = append(errs, setting.Invalid("lock-wait", c.LockWait, "a duration >= 0 (0 for the default %v)", DefaultLockWait))
	}
	if c.LockPoll < 0 || (c.LockPoll > 0 && c.LockPoll < 10*time.Millisecond) {
		errs = append(errs, setting.Invalid("lock-poll", c.LockPoll, "a duration of at least 10ms"))
	}
	return errors.Join(errs...)
}

// ErasedList records erased keys (segmentlease.Erased does).
type ErasedList interface {
	Add(ctx context.Context, env, contextKey, receipt string) error
	Forget(ctx context.Context, env, contextKey string) (bool, error)
	Keys(ctx context.Context, env string) (map[string]string, error)
}

// History records runs (runstore.Store does, and the tracking history of
// internal/app, which adds the barrier serve's run watcher checks).
type History interface {
	Add(ctx context.Context, r runstore.Record) error
}

// Eraser erases context keys.
type Eraser struct {
	Catalog segments.Catalog
	Connect segments.Connector
	// Locker and Seq are the leases and shared sequence counters of the
	// runs (segmentlease.Locker and SeqAllocator).
	Locker snapshot.Locker
	Seq    snapshot.SeqAllocator
	// Streams publishes the remove events (publish.Publisher does); Topic
	// is the topic they go to, recorded in the receipt.
	Streams segments.Streams
	Topic   string
	// Ends lists the topic's end offsets (freshness.Ends), the receipt's
	// barrier; nil leaves the barrier out.
	Ends     func(ctx context.Context) (map[int]int64, error)
	Erased   ErasedList
	Receipts *Store
	// History, when set, records the erase as a run.
	History History
	// Log gets a warning when the history cannot be written. Default
	// slog.Default().
	Log    *slog.Logger
	Config Config
}

// Erase removes contextKey from every segment of env's destination
// through the event path and returns its receipt, also stored (Store.Get
// reads it back by Receipt.ID). It returns once Kafka acknowledged every
// remove event; the consumer applies them after (Receipt.Barrier). On an
// error part way, the receipt of what was done is stored and returned with
// the error; erasing again is harmless (removes are idempotent).
func (e *Eraser) Erase(ctx context.Context, env, contextKey string) (Receipt, error) {
	if err := e.Config.Validate(); err != nil {
		return Receipt{}, err
	}
	if _, err := segments.CheckKeys([]string{contextKey}); err != nil {
		return Receipt{}, err
	}
	d, err := membership.Destination(ctx, e.Catalog, env)
	if err != nil {
		return Receipt{}, err
	}
	client, err := e.Connect(ctx, d)
	if err != nil {
		return Receipt{}, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	start := e.now()
	rec := Receipt{ID: producer.NewRunID(start), Environment: d.Environment, Destination: d.Name, Prefix: d.Prefix(), ContextKey: contextKey,
		ContextHash: bigsegments.HashContextKey(contextKey), Requested: start, Topic: e.Topic, Segments: []Removal{}}
	if err := e.Erased.Add(ctx, d.Environment, contextKey, rec.ID); err != nil {
		return rec, err
	}
	rec.Listed = true
	err = e.erase(ctx, d, client, &rec)
	if err != nil {
		rec.Error = err.Error()
	}
	e.record(ctx, rec)
	if serr := e.Receipts.Save(context.WithoutCancel(ctx), rec); serr != nil {
		err = errors.Join(err, serr)
	}
	return rec, err
}

// erase publishes the removes and fills rec.
func (e *Eraser) erase(ctx context.Context, d catalog.Destination, client segmentstore.Client, rec *Receipt) error {
	view := &segments.View{Catalog: e.Catalog, Connect: e.Connect, Now: e.now}
	segs, err := view.List(ctx, segments.Filter{Destination: d.Name})
	if err != nil {
		return err
	}
	included, _, err := segmentstore.Membership(ctx, client, d.Prefix(), rec.ContextKey)
	if err != nil {
		return err
	}
	for _, s := range segs {
		r := Removal{Segment: s.Key, Generation: s.Generation, Ref: s.Ref(), ContextKind: s.ContextKind, Mapping: s.Mapping,
			WasMember: slices.Contains(included, s.Ref())}
		id := snapshot.SegmentID{Env: d.Environment, Segment: s.Key, Generation: s.Generation, ContextKind: s.ContextKind}
		seq, err := e.remove(ctx, d, client, id, rec)
		if err != nil {
			return fmt.Errorf("segment %q generation %d: %w", s.Key, s.Generation, err)
		}
		r.Seq = seq
		rec.Segments = append(rec.Segments, r)
	}
	rec.Published = e.now()
	if e.Ends != nil {
		ends, err := e.Ends(ctx)
		if err != nil {
			return fmt.Errorf("list the topic's end offsets (the erase's barrier): %w", err)
		}
		rec.Barrier = ends
	}
	return nil
}

// remove publishes the removal of rec's key from segment id under its
// lease and returns its sequence number once Kafka acknowledged it.
func (e *Eraser) remove(ctx context.Context, d catalog.Destination, client segmentstore.Client, id snapshot.SegmentID, rec *Receipt) (seq uint64, err error) {
	lease, err := e.lock(ctx, id)
	if err != nil {
		return 0, err
	}
	defer func() {
		if uerr := lease.Unlock(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	// Above what the destination applied, in case the counter was lost.
	info, err := segmentstore.Info(ctx, client, d.Prefix(), bigsegments.Ref(id.Segment, id.Generation))
	if err != nil {
		return 0, err
	}
	rng, err := e.Seq.Reserve(ctx, id, info.LastSeq+1, 1)
	if err != nil {
		return 0, err
	}
	stream, err := e.Streams.Stream(ctx, publish.Origin{Segment: id, Run: rec.ID, Source: Source})
	if err != nil {
		return 0, err
	}
	if err := stream.Send(ctx, []snapshot.Change{{Op: schema.OpRemove, Key: []byte(rec.ContextKey), Seq: rng.First}}); err != nil {
		return 0, err
	}
	if err := stream.Wait(ctx); err != nil {
		return 0, err
	}
	return rng.First, lease.Check(ctx)
}

// lock takes id's lease, waiting (bounded by Config.LockWait) while a run
// holds it.
func (e *Eraser) lock(ctx context.Context, id snapshot.SegmentID) (snapshot.Lease, error) {
	wait := time.NewTimer(cmp.Or(e.Config.LockWait, DefaultLockWait))
	defer wait.Stop()
	poll := time.NewTicker(cmp.Or(e.Config.LockPoll, DefaultLockPoll))
	defer poll.Stop()
	for {
		lease, err := e.Locker.Lock(ctx, id)
		if !errors.Is(err, snapshot.ErrLocked) {
			return lease, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the lease: %w (%w)", ctx.Err(), err)
		case <-wait.C:
			return nil, fmt.Errorf("a run held the segment for %v: %w", cmp.Or(e.Config.LockWait, DefaultLockWait), err)
		case <-poll.C:
		}
	}
}

// record adds the erase to the run history; a history that cannot be
// written does not fail the erase (its receipt is the record that counts).
func (e *Eraser) record(ctx context.Context, rec Receipt) {
	if e.History == nil {
		return
	}
	sum := producer.Summary{Run: rec.ID, Started: rec.Requested, Duration: e.now().Sub(rec.Requested), Env: rec.Environment,
		Topic: rec.Topic, Source: Source, Input: "erase of one context key", Rows: 1, Outcome: producer.Succeeded}
	// One event per segment, each numbered by its own segment's counter:
	// the receipt has them; the summary's one range cannot.
	sum.Events, sum.Removed = int64(len(rec.Segments)), int64(len(rec.Segments))
	if rec.Error != "" {
		sum.Outcome, sum.Error = producer.Failed, rec.Error
	}
	err := e.History.Add(context.WithoutCancel(ctx), runstore.Record{ID: rec.ID, Mapping: HistoryName(rec.Environment),
		Destination: rec.Destination, Trigger: Trigger, Summary: sum})
	if err != nil {
		log := cmp.Or(e.Log, slog.Default())
		log.WarnContext(ctx, "record an erase in the run history", "receipt", rec.ID, "destination", rec.Destination, "error", err)
	}
}

// Forget takes contextKey off env's erased-keys list, so that syncs may
// add it again; it reports whether the key was on it.
func (e *Eraser) Forget(ctx context.Context, env, contextKey string) (bool, error) {
	d, err := membership.Destination(ctx, e.Catalog, env)
	if err != nil {
		return false, err
	}
	return e.Erased.Forget(ctx, d.Environment, contextKey)
}

func (e *Eraser) now() time.Time {
	if e.Config.Now != nil {
		return e.Config.Now()
	}
	return time.Now()
}
