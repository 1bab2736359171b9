package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/bumpstore"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/generation"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/rollback"
	"github.com/cohortsync/cohortsync/producer/source"
)

// Triggers of the runs this file records in the history.
const (
	TriggerRollback         = "rollback"
	TriggerGenerationBump   = "generation-bump"
	TriggerGenerationFinish = "generation-finish"
)

// MutateRequest is the process and settings of a command that changes a
// synced segment through the event path (segments rollback, segments
// generation bump|finish), as for sync --mapping.
type MutateRequest struct {
	Process Process
	Env     func(string) (string, bool)
	Kafka   kafkax.Config
	Redis   redisx.Config
	Store   catalogstore.Config
	Runs    mappingrun.Config
	// Retention is how long the runs recorded are kept (runstore's
	// default when 0).
	Retention time.Duration
	Stdout    io.Writer
	Stderr    io.Writer
}

// mutate starts what req describes, runs f with it and tears it down.
func mutate(ctx context.Context, req MutateRequest, f func(*runs) error) error {
	r, err := startRuns(ctx, req.Process, req.Env, req.Kafka, req.Redis, req.Store, req.Runs, req.Retention, req.Stderr)
	if err != nil {
		return err
	}
	return errors.Join(f(r), r.down.run())
}

// mappingOf is the stored mapping syncing segment: a synced segment has
// exactly one.
func mappingOf(ctx context.Context, s *catalogstore.Store, segment string) (catalog.Mapping, error) {
	all, err := s.List(ctx)
	if err != nil {
		return catalog.Mapping{}, err
	}
	var found []catalog.Mapping
	for _, m := range all {
		if m.Segment == segment {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return catalog.Mapping{}, fmt.Errorf("segment %q: no stored mapping syncs it (cohortsync mappings list)", segment)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, m := range found {
		names[i] = m.Name
	}
	return catalog.Mapping{}, fmt.Errorf("segment %q is synced by several mappings (%s): roll back or bump through one of them at a time is ambiguous; give each its own segment", segment, strings.Join(names, ", "))
}

// RollbackRequest is what segments rollback restores: Segment's
// membership right after Run, in Run's destination (Destination, when
// set, must be it).
type RollbackRequest struct {
	Segment, Run, Destination string
}

// SegmentsRollback restores the membership a synced segment had right
// after an earlier run, through the event path (producer/rollback), and
// records it in the run history with trigger "rollback". The owning
// mapping is paused first so that its next scheduled run does not undo
// the rollback.
func SegmentsRollback(ctx context.Context, req MutateRequest, rr RollbackRequest) error {
	return mutate(ctx, req, func(r *runs) error { return rollbackSegment(ctx, r, req, rr) })
}

func rollbackSegment(ctx context.Context, r *runs, req MutateRequest, rr RollbackRequest) error {
	m, err := mappingOf(ctx, r.store, rr.Segment)
	if err != nil {
		return err
	}
	if m.Source.Kind == catalog.SourcePush {
		// A push adds or removes what the partner says, not a diff: its
		// events do not tell what a member was before them.
		return fmt.Errorf("segment %q is fed by pushes (mapping %q): rollback restores the segments of pulled sources only", rr.Segment, m.Name)
	}
	rec, err := runRecord(ctx, r.history, m, rr)
	if err != nil {
		return err
	}
	d, err := r.store.Destination(ctx, rec.Destination)
	if err != nil {
		return err
	}
	target, err := rollback.TargetOf(rec.Summary, snapshot.SegmentID{Env: d.Environment, Segment: m.Segment, Generation: m.Generation, ContextKind: m.ContextKind})
	if err != nil {
		return err
	}
	if _, err := r.store.Pause(ctx, m.Name); err != nil {
		return err
	}
	if err := say(req.Stdout, "mapping %s paused: its next scheduled run would undo the rollback (cohortsync mappings resume %s once its source is right again)\n", m.Name, m.Name); err != nil {
		return err
	}
	before := r.pub.before(ctx, []string{rec.Destination})
	results, err := r.runner.RunSource(ctx, m, []string{rec.Destination}, func(_ context.Context, d catalog.Destination, c redis.UniversalClient) (source.Source, error) {
		return &rollback.Source{Target: target, Kafka: r.kf, Topic: req.Runs.Producer.Topic,
			Destination: segmentstore.Rebuilder{Client: c, Prefix: d.Prefix(), Wait: req.Runs.RebuildWait}}, nil
	})
	if err := recordAndWrite(ctx, r, req.Stdout, m.Name, TriggerRollback, before, results, err); err != nil {
		return fmt.Errorf("rollback of segment %s to run %s: %w", m.Segment, rr.Run, err)
	}
	return say(req.Stdout, "segment %s in destination %s: membership of run %s published (rollback run %s)\n", m.Segment, rec.Destination, rr.Run, results[0].Summary.Run)
}

// runRecord is the history's record of rr.Run, which must be a run of m.
func runRecord(ctx context.Context, h *runstore.Store, m catalog.Mapping, rr RollbackRequest) (runstore.Record, error) {
	recs, err := h.Get(ctx, rr.Run)
	if errors.Is(err, runstore.ErrNotFound) {
		return runstore.Record{}, fmt.Errorf("run %s is not in the run history: never recorded, or older than its retention (cohortsync runs list --mapping %s): %w", rr.Run, m.Name, err)
	}
	if err != nil {
		return runstore.Record{}, err
	}
	if rr.Destination != "" {
		recs = slices.DeleteFunc(recs, func(rec runstore.Record) bool { return rec.Destination != rr.Destination })
		if len(recs) == 0 {
			return runstore.Record{}, fmt.Errorf("run %s did not write destination %q", rr.Run, rr.Destination)
		}
	}
	if len(recs) > 1 {
		return runstore.Record{}, fmt.Errorf("run %s wrote several destinations: name one with --destination", rr.Run)
	}
	rec := recs[0]
	if rec.Mapping != m.Name {
		return runstore.Record{}, fmt.Errorf("run %s is a run of mapping %q, segment %q is synced by %q", rr.Run, rec.Mapping, m.Segment, m.Name)
	}
	return rec, nil
}

// GenerationBump builds the next generation of a synced segment beside
// the current one: a full first sync of its mapping's source into the new
// generation's keys, in every destination; then moves the stored mapping
// to it, and waits up to wait for the consumers to apply it. The current
// generation is untouched: evaluators keep reading it until their flag
// data says otherwise (GenerationFinish then removes it).
func GenerationBump(ctx context.Context, req MutateRequest, segment string, wait time.Duration) error {
	return mutate(ctx, req, func(r *runs) error { return bump(ctx, r, req, segment, wait) })
}

func bump(ctx context.Context, r *runs, req MutateRequest, segment string, wait time.Duration) error {
	m, bs, last, err := bumpState(ctx, r, req.Store.Prefix, segment)
	if err != nil {
		return err
	}
	b, err := bumpstore.Begin(last, m, time.Now())
	if errors.Is(err, bumpstore.ErrInProgress) {
		// Built already: say again whether it is applied.
		if err := say(req.Stdout, "%s\n", GenerationStatus(m, last)); err != nil {
			return err
		}
		return reportBuilt(ctx, r, req.Stdout, *last, wait)
	}
	if err != nil {
		return err
	}
	if err := bs.Put(ctx, b); err != nil {
		return err
	}
	next := m
	next.Generation = b.To
	before := r.pub.before(ctx, next.Destinations)
	results, err := r.runner.Run(ctx, next)
	if err := recordAndWrite(ctx, r, req.Stdout, m.Name, TriggerGenerationBump, before, results, err); err != nil {
		return fmt.Errorf("generation %d of segment %s is not built (generation %d is untouched); run the bump again: %w", b.To, segment, b.From, err)
	}
	if _, err := r.store.SetGeneration(ctx, m.Name, b.From, b.To); err != nil {
		return err
	}
	b.Phase, b.Built = bumpstore.Built, map[string]bumpstore.Build{}
	for _, res := range results {
		b.Built[res.Destination] = bumpstore.Build{Run: res.Summary.Run, Members: res.Summary.Keys,
			Published: res.Summary.Started.Add(res.Summary.Duration).UTC()}
	}
	if err := bs.Put(ctx, b); err != nil {
		return err
	}
	if err := say(req.Stdout, "mapping %s now runs into generation %d; generation %d is untouched\n", m.Name, b.To, b.From); err != nil {
		return err
	}
	return reportBuilt(ctx, r, req.Stdout, b, wait)
}

// reportBuilt waits up to wait for every destination to apply the built
// bump b, and says where each stands and what comes next.
func reportBuilt(ctx context.Context, r *runs, stdout io.Writer, b bumpstore.Bump, wait time.Duration) error {
	applied, err := waitBuilt(ctx, r, b, wait)
	if werr := writeApplied(stdout, b, applied); werr != nil {
		return errors.Join(err, werr)
	}
	if err != nil {
		return err
	}
	return say(stdout, "once evaluators read generation %d (the segment's \"generation\": %d in their flag data): cohortsync segments generation finish %s --confirm-evaluators-moved\n", b.To, b.To, b.Segment)
}

// bumpState reads segment's mapping, the bump store and the mapping's last
// bump.
func bumpState(ctx context.Context, r *runs, prefix, segment string) (catalog.Mapping, *bumpstore.Store, *bumpstore.Bump, error) {
	return lastBump(ctx, r.control, r.store, prefix, segment)
}

// lastBump reads segment's mapping from s, and its last bump from the bump
// store on rdb under prefix.
func lastBump(ctx context.Context, rdb redis.UniversalClient, s *catalogstore.Store, prefix, segment string) (catalog.Mapping, *bumpstore.Store, *bumpstore.Bump, error) {
	m, err := mappingOf(ctx, s, segment)
	if err != nil {
		return m, nil, nil, err
	}
	bs, err := bumpstore.New(rdb, bumpstore.Config{Prefix: prefix})
	if err != nil {
		return m, nil, nil, err
	}
	last, err := bs.Last(ctx, m.Name)
	return m, bs, last, err
}

// applied reports, per destination of b, whether its consumer applied the
// run that built generation b.To: its big_segments_synchronized_on reached
// the run's publication, which the consumer writes only once it committed
// every partition's messages produced before (consumer/freshness). The
// consumer's clock is compared with the producer's, as a rebuild does.
func applied(ctx context.Context, r *runs, b bumpstore.Bump) (map[string]bool, error) {
	out := map[string]bool{}
	for name, build := range b.Built {
		d, err := r.store.Destination(ctx, name)
		if err != nil {
			return nil, err
		}
		c, err := r.dests.connect(ctx, d)
		if err != nil {
			return nil, err
		}
		at, ok, err := segmentstore.SyncTime(ctx, c, d.Prefix())
		if err != nil {
			return nil, err
		}
		out[name] = ok && !at.Before(build.Published)
	}
	return out, nil
}

// ErrNotApplied is wrapped by GenerationBump's error when a destination's
// consumer did not apply the new generation within the wait.
var ErrNotApplied = errors.New("published, not yet applied")

// waitBuilt polls applied until every destination applied b or wait
// passed.
func waitBuilt(ctx context.Context, r *runs, b bumpstore.Bump, wait time.Duration) (map[string]bool, error) {
	deadline := time.Now().Add(wait)
	for {
		got, err := applied(ctx, r, b)
		if err != nil {
			return got, err
		}
		if !slices.Contains(slices.Collect(maps.Values(got)), false) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("generation %d of segment %s after %v: %w (is the consumer running?)", b.To, b.Segment, wait, ErrNotApplied)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// writeApplied prints, per destination, where generation b.To stands.
func writeApplied(w io.Writer, b bumpstore.Bump, applied map[string]bool) error {
	for _, name := range slices.Sorted(maps.Keys(b.Built)) {
		state := "published, not yet applied"
		if applied[name] {
			state = "applied"
		}
		if err := say(w, "destination %s: generation %d %s (%d members, run %s)\n", name, b.To, state, b.Built[name].Members, b.Built[name].Run); err != nil {
			return err
		}
	}
	return nil
}

// GenerationFinish removes the previous generation of a bumped segment
// through the event path, once confirmed says evaluators moved to the new
// one and every destination applied it.
func GenerationFinish(ctx context.Context, req MutateRequest, segment string, confirmed bool) error {
	return mutate(ctx, req, func(r *runs) error { return finish(ctx, r, req, segment, confirmed) })
}

func finish(ctx context.Context, r *runs, req MutateRequest, segment string, confirmed bool) error {
	m, bs, b, err := bumpState(ctx, r, req.Store.Prefix, segment)
	if err != nil {
		return err
	}
	if err := bumpstore.Finish(b, m, confirmed); err != nil {
		return err
	}
	got, err := applied(ctx, r, *b)
	if err != nil {
		return err
	}
	for name, ok := range got {
		if !ok {
			return fmt.Errorf("destination %s has not applied generation %d yet: evaluators reading it would miss members; wait for its consumer: %w", name, b.To, ErrNotApplied)
		}
	}
	old := m
	old.Generation = b.From
	before := r.pub.before(ctx, old.Destinations)
	results, err := r.runner.Purge(ctx, old)
	if err := recordAndWrite(ctx, r, req.Stdout, m.Name, TriggerGenerationFinish, before, results, err); err != nil {
		return fmt.Errorf("removal of generation %d of segment %s failed; run finish again: %w", b.From, segment, err)
	}
	// The removals are now the last event of every membership the two
	// generations share: make the live generation's the last again.
	before = r.pub.before(ctx, m.Destinations)
	results, err = r.runner.RunSource(ctx, m, nil, func(_ context.Context, d catalog.Destination, c redis.UniversalClient) (source.Source, error) {
		return &generation.Handover{Segment: snapshot.SegmentID{Env: d.Environment, Segment: m.Segment, Generation: b.To, ContextKind: m.ContextKind},
			From: b.From, Destination: segmentstore.Rebuilder{Client: c, Prefix: d.Prefix(), Wait: req.Runs.RebuildWait}}, nil
	})
	if err := recordAndWrite(ctx, r, req.Stdout, m.Name, TriggerGenerationFinish, before, results, err); err != nil {
		return fmt.Errorf("generation %d of segment %s removed, but republishing generation %d after it failed; run finish again: %w", b.From, segment, b.To, err)
	}
	b.Phase, b.Finished = bumpstore.Finished, time.Now().UTC()
	if err := bs.Put(ctx, *b); err != nil {
		return err
	}
	return say(req.Stdout, "segment %s: generation %d removed from every destination; generation %d is the segment\n", segment, b.From, b.To)
}

// GenerationShow prints where the last generation bump of segment's
// mapping stands.
func GenerationShow(ctx context.Context, rc redisx.Config, sc catalogstore.Config, segment string, stdout io.Writer) error {
	return withStoreRedis(rc, sc, func(s *catalogstore.Store, rdb redis.UniversalClient) error {
		m, _, b, err := lastBump(ctx, rdb, s, sc.Prefix, segment)
		if err != nil {
			return err
		}
		return say(stdout, "%s\n", GenerationStatus(m, b))
	})
}

// writeBumpNote follows a mapping shown as YAML with a comment saying
// where its last generation bump stands, if it has one.
func writeBumpNote(ctx context.Context, rdb redis.UniversalClient, prefix string, m catalog.Mapping, stdout io.Writer) error {
	bs, err := bumpstore.New(rdb, bumpstore.Config{Prefix: prefix})
	if err != nil {
		return err
	}
	b, err := bs.Last(ctx, m.Name)
	if err != nil || b == nil {
		return err
	}
	return say(stdout, "# %s\n", GenerationStatus(m, b))
}

// GenerationStatus says in one line where m's last bump b (nil if none)
// stands, for segments show and mappings show.
func GenerationStatus(m catalog.Mapping, b *bumpstore.Bump) string {
	switch {
	case b == nil:
		return fmt.Sprintf("generation %d (never bumped)", m.Generation)
	case b.Phase == bumpstore.Building:
		return fmt.Sprintf("generation %d; bump to %d started %s, not built: run generation bump again", m.Generation, b.To, b.Started.Format(time.RFC3339))
	case b.Phase == bumpstore.Built:
		return fmt.Sprintf("generation %d, built beside %d (still in Redis until generation finish --confirm-evaluators-moved)", b.To, b.From)
	}
	return fmt.Sprintf("generation %d; generation %d removed %s", m.Generation, b.From, b.Finished.Format(time.RFC3339))
}

// recordAndWrite records results in the run history, with what tells when
// they are applied (before was read before the run), and prints them; it
// returns runErr, the run's error, joined to a failure to print.
func recordAndWrite(ctx context.Context, r *runs, stdout io.Writer, mapping, trigger string, before beforeRun, results []mappingrun.Result, runErr error) error {
	record(ctx, r.history, r.log, mapping, trigger, results, r.pub.after(ctx, before))
	return errors.Join(runErr, writeResults(stdout, mapping, results))
}
