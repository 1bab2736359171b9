package producer

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source"
)

// NewRunID returns a run id that sorts by start time (to the second) and is
// unique: "20261125T201500Z-1a2b3c4d".
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Sync publishes the changes between the segment's last committed snapshot
// and req's Input through kf's clients, and commits it as the new snapshot
// once every event is acknowledged. If an earlier run was interrupted after it started
// publishing, its snapshot is republished and committed first. The Summary
// is filled as far as the run got, also on error.
func Sync(ctx context.Context, cfg Config, kf *kafkax.Factory, req SyncRequest) (Summary, error) {
	ctx, end := startSyncSpan(ctx, cfg, req)
	sum, err := syncWith(ctx, cfg, kf, req, nil)
	end(sum, err)
	return sum, err
}

// publisherWrapper lets tests interpose on publishing (inject failures).
type publisherWrapper func(snapshot.Publisher) snapshot.Publisher

func syncWith(ctx context.Context, cfg Config, kf *kafkax.Factory, req SyncRequest, wrap publisherWrapper) (sum Summary, err error) {
	start := time.Now()
	sum.Run, sum.Started = NewRunID(start), start
	meter := req.Meter
	if meter == nil {
		meter = new(Meter)
	}
	meter.start(sum.Run, start)
	defer func() {
		meter.end()
		sum.Duration = time.Since(start)
		sum.Outcome = outcome(err)
		if err != nil {
			err = fmt.Errorf("sync run %s: %w", sum.Run, err)
			sum.Error = err.Error()
		}
	}()
	req.applyDefaults()
	if err := errors.Join(cfg.Validate(), req.Validate()); err != nil {
		return sum, err
	}
	id := snapshot.SegmentID{Env: req.Env, Segment: req.Segment, Generation: req.Generation, ContextKind: req.ContextKind}
	sum.Env, sum.Segment, sum.Generation, sum.ContextKind, sum.Topic = id.Env, id.Segment, id.Generation, id.ContextKind, cfg.Topic
	sum.Input, sum.Source = req.Input.Name(), req.Source

	store, err := snapshot.Open(ctx, cfg.StateDir, id, req.StateOptions...)
	if err != nil {
		return sum, err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	pub, err := publish.New(cfg.Config, kf)
	if err != nil {
		return sum, err
	}
	// Close ends the writes still in flight (after an error or a cancelled
	// ctx, when no Stream's Wait was reached) and waits for them, so nothing
	// of this run is sent after Sync returns.
	defer func() { err = errors.Join(err, pub.Close()) }()
	if err := publish.EnsureTopics(ctx, cfg.Config, kf); err != nil {
		return sum, err
	}

	pubFor := func(ph *snapshot.Phase) (snapshot.Publisher, error) {
		p, err := pub.Stream(ctx, publish.Origin{Segment: id, Run: ph.Run, Source: req.Source})
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			return meter.publisher(ph, wrap(p)), nil
		}
		return meter.publisher(ph, p), nil
	}

	exclPath := cfg.ExclusionsFile
	if exclPath == "" {
		exclPath = filepath.Join(store.Dir(), "exclusions-"+sum.Run+".csv")
	}
	// Runs after the recovery of an interrupted run, if any.
	fill := func(add func(string) error) error {
		meter.set(PhaseReading)
		report := &exclusionReport{path: exclPath}
		exclude := func(e source.Exclusion) error {
			meter.row()
			return report.add(e)
		}
		if req.Exclusions != nil {
			exclude = func(e source.Exclusion) error {
				meter.row()
				if err := report.add(e); err != nil {
					return err
				}
				return req.Exclusions(ctx, sum.Run, e)
			}
		}
		st, err := req.Input.Read(ctx, func(key string) error {
			meter.row()
			return add(key)
		}, exclude)
		err = errors.Join(err, report.close())
		if err == nil && report.written() == "" && cfg.ExclusionsFile != "" {
			// A fixed path must not keep describing an earlier run.
			if rmErr := os.Remove(exclPath); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = fmt.Errorf("remove stale exclusion report: %w", rmErr)
			}
		}
		sum.Rows, sum.Excluded, sum.ExclusionsFile = st.Rows, st.Excluded, report.written()
		if err != nil {
			return fmt.Errorf("read %s: %w", req.Input.Name(), err)
		}
		meter.set(PhaseSorting)
		return nil
	}

	res, err := store.Sync(ctx, sum.Run, fill, pubFor, snapshot.SyncOptions{
		SendBatch: cfg.SendBatch, ChunkBytes: cfg.SortChunkBytes, Accept: shrinkGuard(cfg.MaxShrink),
	})
	if r := res.Rebuilt; r != nil {
		sum.Rebuilt = &RebuildSummary{Reason: r.Reason, Members: r.Members, DroppedPending: r.DroppedPending}
	}
	if r := res.Recovered; r != nil {
		sum.Recovered = &PhaseSummary{Run: r.Run, Attempt: r.Attempt, Added: r.Added, Removed: r.Removed,
			FirstSeq: r.FirstSeq, LastSeq: r.LastSeq}
		sum.Events += r.Changes()
	}
	sum.Keys, sum.Duplicates = res.Sort.Unique, res.Sort.Duplicates
	sum.Added, sum.Removed, sum.Unchanged = res.Phase.Added, res.Phase.Removed, res.Phase.Unchanged
	sum.FirstSeq, sum.LastSeq, sum.SeqReserved = res.Phase.FirstSeq, res.Phase.LastSeq, res.Phase.ReservedUpto
	sum.Events += res.Phase.Changes()
	if err != nil {
		return sum, err
	}
	if cfg.ExclusionsFile == "" {
		if err := pruneReports(store.Dir(), cfg.ExclusionsKeep, sum.ExclusionsFile); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// ErrShrink is returned when a snapshot lost more members than --max-shrink
// allows; nothing was published.
var ErrShrink = errors.New("snapshot shrank more than --max-shrink allows")

// shrinkGuard returns the Stage check of --max-shrink, nil when it is off.
func shrinkGuard(maxShrink float64) func(committed, next int64) error {
	if maxShrink == 0 {
		return nil
	}
	return func(committed, next int64) error {
		if committed == 0 || next >= committed {
			return nil
		}
		if lost := float64(committed-next) / float64(committed); lost > maxShrink {
			return fmt.Errorf("%w: %d members, %.1f%% fewer than the %d of the last sync (limit %.1f%%); nothing was published, rerun with --max-shrink 0 if the drop is real",
				ErrShrink, next, 100*lost, committed, 100*maxShrink)
		}
		return nil
	}
}

// pruneReports keeps the newest keep per-run exclusion reports in dir, and
// always current (this run's). Run ids start with their UTC time to the
// second, so names sort by age except within one second, where the random
// suffix decides: hence the explicit exception for the current report.
func pruneReports(dir string, keep int, current string) error {
	names, err := filepath.Glob(filepath.Join(dir, "exclusions-*.csv"))
	if err != nil {
		return fmt.Errorf("prune exclusion reports: %w", err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == current })
	if current != "" {
		keep--
	}
	if len(names) <= keep {
		return nil
	}
	sort.Strings(names)
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("prune exclusion reports: %w", err)
		}
	}
	return nil
}

// exclusionReport writes excluded rows as CSV (row,line,value,reason), creating
// the file at the first exclusion only.
type exclusionReport struct {
	path string
	f    *os.File
	cw   *csv.Writer
	rec  [4]string
}

func (r *exclusionReport) add(e source.Exclusion) error {
	if r.cw == nil {
		if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
		f, err := os.Create(r.path)
		if err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
		r.f, r.cw = f, csv.NewWriter(f)
		if err := r.cw.Write([]string{"row", "line", "value", "reason"}); err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
	}
	line := ""
	if e.Line > 0 {
		line = strconv.FormatInt(e.Line, 10)
	}
	r.rec = [4]string{strconv.FormatInt(e.Row, 10), line, e.Value, e.Reason}
	if err := r.cw.Write(r.rec[:]); err != nil {
		return fmt.Errorf("exclusion report %s: %w", r.path, err)
	}
	return nil
}

// written is the report's path, or "" if nothing was excluded.
func (r *exclusionReport) written() string {
	if r.f == nil {
		return ""
	}
	return r.path
}

func (r *exclusionReport) close() error {
	if r.f == nil {
		return nil
	}
	r.cw.Flush()
	err := errors.Join(r.cw.Error(), r.f.Close())
	if err != nil {
		return fmt.Errorf("exclusion report %s: %w", r.path, err)
	}
	return nil
}
