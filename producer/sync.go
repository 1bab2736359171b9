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

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// NewRunID returns a run id that sorts by start time (to the second) and is
// unique: "20261125T201500Z-1a2b3c4d".
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Sync publishes the changes between the segment's last committed snapshot
// and the CSV in req, and commits the CSV as the new snapshot once every
// event is acknowledged. If an earlier run was interrupted after it started
// publishing, its snapshot is republished and committed first. The Summary
// is filled as far as the run got, also on error.
func Sync(ctx context.Context, cfg Config, req SyncRequest) (Summary, error) {
	ctx, end := startSyncSpan(ctx, cfg, req)
	sum, err := syncWith(ctx, cfg, req, nil)
	end(sum, err)
	return sum, err
}

// publisherWrapper lets tests interpose on publishing (inject failures).
type publisherWrapper func(snapshot.Publisher) snapshot.Publisher

func syncWith(ctx context.Context, cfg Config, req SyncRequest, wrap publisherWrapper) (sum Summary, err error) {
	start := time.Now()
	sum.Run = NewRunID(start)
	defer func() {
		sum.Duration = time.Since(start)
		if err != nil {
			err = fmt.Errorf("sync run %s: %w", sum.Run, err)
		}
	}()
	req.applyDefaults()
	if err := errors.Join(cfg.Validate(), req.Validate()); err != nil {
		return sum, err
	}
	id := snapshot.SegmentID{Env: req.Env, Segment: req.Segment, Generation: req.Generation, ContextKind: req.ContextKind}
	sum.Env, sum.Segment, sum.Generation, sum.ContextKind, sum.Topic = id.Env, id.Segment, id.Generation, id.ContextKind, cfg.Topic

	store, err := snapshot.Open(cfg.StateDir, id)
	if err != nil {
		return sum, err
	}
	defer func() { err = errors.Join(err, store.Close()) }()

	if err := EnsureTopics(ctx, cfg); err != nil {
		return sum, err
	}
	w := NewWriter(cfg)
	// Close waits for writes still in flight (after an error or a cancelled
	// ctx), so nothing of this run is sent after Sync returns.
	defer func() { err = errors.Join(err, closeWriter(w)) }()

	publish := func(ph *snapshot.Phase) (snapshot.PhaseResult, error) {
		p, err := newPublisher(ctx, w, cfg, id, ph.Run, req.Source)
		if err != nil {
			return snapshot.PhaseResult{}, err
		}
		var pub snapshot.Publisher = p
		if wrap != nil {
			pub = wrap(pub)
		}
		res, err := store.Publish(ctx, ph, pub, cfg.SendBatch)
		if err != nil {
			return res, err
		}
		return res, store.Commit(ph)
	}

	// Step 3 of the protocol: finish what an interrupted run left pending,
	// behind a full acknowledgement barrier, before anything of this run.
	ph, err := store.Resume()
	if err != nil {
		return sum, err
	}
	if ph != nil {
		res, err := publish(ph)
		sum.Recovered = &PhaseSummary{Run: res.Run, Attempt: ph.Attempt, Added: res.Added, Removed: res.Removed,
			FirstSeq: res.FirstSeq, LastSeq: res.LastSeq}
		sum.Events += res.Changes()
		if err != nil {
			return sum, fmt.Errorf("recover interrupted run %s: %w", ph.Run, err)
		}
	}

	sorter, err := store.NewSorter(cfg.SortChunkBytes)
	if err != nil {
		return sum, err
	}
	defer func() { err = errors.Join(err, sorter.Close()) }()
	exclPath := cfg.ExclusionsFile
	if exclPath == "" {
		exclPath = filepath.Join(store.Dir(), "exclusions-"+sum.Run+".csv")
	}
	report := &exclusionReport{path: exclPath}
	st, err := cohortcsv.Read(ctx, req.Input, cohortcsv.Options{IDColumn: req.IDColumn}, sorter.Add, report.add)
	err = errors.Join(err, report.close())
	if err == nil && report.written() == "" && cfg.ExclusionsFile != "" {
		// A fixed path must not keep describing an earlier run.
		if rmErr := os.Remove(exclPath); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = fmt.Errorf("remove stale exclusion report: %w", rmErr)
		}
	}
	sum.Rows, sum.Excluded, sum.ExclusionsFile = st.Rows, st.Excluded, report.written()
	if err != nil {
		name := req.InputName
		if name == "" {
			name = "input"
		}
		return sum, fmt.Errorf("read %s: %w", name, err)
	}

	ph, sst, err := store.StageIf(ctx, sum.Run, sorter, shrinkGuard(cfg.MaxShrink))
	sum.Keys, sum.Duplicates = sst.Unique, sst.Duplicates
	if err != nil {
		return sum, err
	}
	res, err := publish(ph)
	sum.Added, sum.Removed, sum.Unchanged = res.Added, res.Removed, res.Unchanged
	sum.FirstSeq, sum.LastSeq = res.FirstSeq, res.LastSeq
	sum.Events += res.Changes()
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

func closeWriter(w *kafka.Writer) error {
	if err := w.Close(); err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}

// exclusionReport writes excluded rows as CSV (row,value,reason), creating
// the file at the first exclusion only.
type exclusionReport struct {
	path string
	f    *os.File
	cw   *csv.Writer
	rec  [3]string
}

func (r *exclusionReport) add(e cohortcsv.Exclusion) error {
	if r.cw == nil {
		if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
		f, err := os.Create(r.path)
		if err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
		r.f, r.cw = f, csv.NewWriter(f)
		if err := r.cw.Write([]string{"row", "value", "reason"}); err != nil {
			return fmt.Errorf("exclusion report: %w", err)
		}
	}
	r.rec = [3]string{strconv.FormatInt(e.Row, 10), e.Value, e.Reason}
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
