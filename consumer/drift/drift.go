package drift

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cohortsync/cohortsync/consumer/rewind"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// Check compares every destination of cfg with the log (see the package
// comment); Report.Drifted says whether they disagree.
func Check(ctx context.Context, kf *kafkax.Factory, cfg Config) (rep Report, err error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	cfg = cfg.withDefaults()
	err = withSortDir(cfg, func(dir string) error {
		lf, err := readLog(ctx, kf, cfg, dir, cfg.Group != "")
		if err != nil {
			return err
		}
		rep, err = compare(ctx, kf, cfg, lf, dir, nil)
		return err
	})
	return rep, err
}

// withSortDir calls fn with a new directory for sort files under
// cfg.TempDir, removed afterwards.
func withSortDir(cfg Config, fn func(dir string) error) (err error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "cohortsync-drift-")
	if err != nil {
		return fmt.Errorf("sort directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove sort directory: %w", rerr))
		}
	}()
	return fn(dir)
}

// Rebuilt is what Rebuild did.
type Rebuilt struct {
	// Before is the drift Rebuild found and repaired; After, the check
	// made once it had written.
	Before, After Report
	// Added and Removed count the memberships written.
	Added   int64 `json:"added"`
	Removed int64 `json:"removed"`
	// Kept counts the extra members left in place because the log is
	// incomplete (LogStats.Incomplete) and holds no event of theirs.
	Kept int64 `json:"kept"`
}

// ErrStillDrifts is wrapped by Rebuild's error when the check after the
// repair still finds drift: something else wrote to the destination
// meanwhile.
var ErrStillDrifts = errors.New("the destination still drifts after the rebuild")

// rebuildBatch is how many changes one Writer.Apply gets.
const rebuildBatch = 5000

// Rebuild makes every destination of cfg hold what the log says (see the
// package comment), while cfg.Group, the consumer group that applies the
// topic, has no members. It reads the whole log (the group's offsets do
// not matter: its consumers, started afterwards, apply again what they
// had not committed). Freshness is held back from start to end; on
// any error the hold stays, so SDKs keep reporting the destinations
// STALE, and Rebuild may be run again (every write is idempotent).
func Rebuild(ctx context.Context, kf *kafkax.Factory, cfg Config) (Rebuilt, error) {
	if err := cfg.Validate(); err != nil {
		return Rebuilt{}, err
	}
	if cfg.Group == "" {
		return Rebuilt{}, setting.Missing("group-id", "the consumer group applying the topic, which must be stopped")
	}
	group := cfg.Group
	cfg = cfg.withDefaults()
	kc := kf.Client(30 * time.Second)
	if err := rewind.Stopped(ctx, kc, group); err != nil {
		return Rebuilt{}, err
	}
	note := "cohortsync rebuild started " + time.Now().UTC().Format(time.RFC3339)
	for _, d := range cfg.Destinations {
		if err := segmentstore.HoldFreshness(ctx, d.Client, d.Prefix, note); err != nil {
			return Rebuilt{}, err
		}
	}
	cfg.Progress("freshness held back: SDKs report the destinations STALE until the consumers have caught up after the rebuild")
	var res Rebuilt
	err := withSortDir(cfg, func(dir string) (err error) {
		res, err = repairFromLog(ctx, kf, cfg, dir)
		return err
	})
	if err != nil {
		return res, err
	}
	// A consumer started during the rebuild may have applied events the
	// rebuild compared against an older state: hold on until it is stopped.
	if err := rewind.Stopped(ctx, kc, group); err != nil {
		return res, fmt.Errorf("consumers joined during the rebuild; freshness stays held back: %w", err)
	}
	for _, d := range cfg.Destinations {
		if err := segmentstore.ReleaseFreshness(ctx, d.Client, d.Prefix); err != nil {
			return res, err
		}
	}
	cfg.Progress("rebuilt; freshness released: start the consumers, which mark the destinations current once they have caught up")
	return res, nil
}

// repairFromLog reads the log, repairs what drifted and checks again.
func repairFromLog(ctx context.Context, kf *kafkax.Factory, cfg Config, dir string) (res Rebuilt, err error) {
	lf, err := readLog(ctx, kf, cfg, dir, false)
	if err != nil {
		return res, err
	}
	w := newRepair(ctx, cfg, len(lf.stats.Incomplete) > 0)
	if res.Before, err = compare(ctx, kf, cfg, lf, dir, w.fix); err != nil {
		return res, err
	}
	if err := w.flushAll(); err != nil {
		return res, err
	}
	res.Added, res.Removed, res.Kept = w.added, w.removed, w.kept
	cfg.Progress(fmt.Sprintf("wrote %d missing and removed %d extra memberships; checking again", w.added, w.removed))
	if res.After, err = compare(ctx, kf, cfg, lf, dir, nil); err != nil {
		return res, err
	}
	var missing, extra int64
	for _, s := range res.After.Segments {
		missing, extra = missing+s.Missing, extra+s.Extra
	}
	if missing > 0 || extra != w.kept {
		return res, fmt.Errorf("%w: %d members missing, %d extra (%d kept on purpose); did a consumer run meanwhile? run rebuild again once the group is stopped",
			ErrStillDrifts, missing, extra, w.kept)
	}
	return res, nil
}

// repair turns the differences compare finds into Writer batches.
type repair struct {
	ctx        context.Context
	cfg        Config
	incomplete bool
	writers    []*segmentstore.Writer
	batches    [][]segmentstore.Change
	kinds      map[segID]string // context kinds read back for removals without an event

	added, removed, kept int64
}

func newRepair(ctx context.Context, cfg Config, incomplete bool) *repair {
	r := &repair{ctx: ctx, cfg: cfg, incomplete: incomplete, kinds: map[segID]string{},
		writers: make([]*segmentstore.Writer, len(cfg.Destinations)), batches: make([][]segmentstore.Change, len(cfg.Destinations))}
	for i, d := range cfg.Destinations {
		r.writers[i] = segmentstore.NewWriter(d.Client, nil)
	}
	return r
}

func (r *repair) fix(d int, ref, key string, add bool, ev *logEvent) error {
	if !add && ev == nil && r.incomplete {
		// Events retention removed may have added it: keep it.
		r.kept++
		return nil
	}
	segment, gen, ok := bigsegments.ParseRef(ref)
	if !ok {
		return fmt.Errorf("segment ref %q under prefix %q: not <segment>.g<generation>", ref, r.cfg.Destinations[d].Prefix)
	}
	c := segmentstore.Change{Prefix: r.cfg.Destinations[d].Prefix, Segment: segment, Generation: gen, ContextKey: key, Remove: !add}
	if ev != nil {
		c.ContextKind, c.Seq, c.Run = ev.kind, ev.seq, ev.run
	} else {
		kind, err := r.kind(d, ref)
		if err != nil {
			return err
		}
		c.ContextKind = kind
	}
	if add {
		r.added++
	} else {
		r.removed++
	}
	r.batches[d] = append(r.batches[d], c)
	if len(r.batches[d]) >= rebuildBatch {
		return r.flush(d)
	}
	return nil
}

// kind is the context kind ref's metadata records, for a removal the log
// holds no event of (the Writer records the kind of every change).
func (r *repair) kind(d int, ref string) (string, error) {
	id := segID{d, ref}
	if k, ok := r.kinds[id]; ok {
		return k, nil
	}
	dest := r.cfg.Destinations[d]
	info, err := segmentstore.Info(r.ctx, dest.Client, dest.Prefix, ref)
	if err != nil {
		return "", err
	}
	r.kinds[id] = info.ContextKind
	return info.ContextKind, nil
}

func (r *repair) flush(d int) error {
	if len(r.batches[d]) == 0 {
		return nil
	}
	failures, err := r.writers[d].Apply(r.ctx, r.batches[d])
	if err != nil {
		return fmt.Errorf("write destination %s: %w", r.cfg.Destinations[d].Name, err)
	}
	var errs []error
	for _, f := range failures {
		c := r.batches[d][f.Index]
		errs = append(errs, fmt.Errorf("destination %s, %s of segment %s: %w", r.cfg.Destinations[d].Name, c.ContextKey, bigsegments.Ref(c.Segment, c.Generation), f.Err))
	}
	r.batches[d] = r.batches[d][:0]
	return errors.Join(errs...)
}

func (r *repair) flushAll() error {
	for d := range r.batches {
		if err := r.flush(d); err != nil {
			return err
		}
	}
	return nil
}
