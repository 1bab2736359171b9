package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cohortsync/cohortsync/schema"
)

// SegmentID names the membership a Store keeps: one context kind of one
// generation of one segment of one environment.
type SegmentID struct {
	Env         string
	Segment     string
	Generation  int
	ContextKind string
}

func (id SegmentID) String() string {
	return fmt.Sprintf("env %q segment %q generation %d context kind %q", id.Env, id.Segment, id.Generation, id.ContextKind)
}

// Validate applies the event schema's rules, so that every event the store's
// snapshots produce is valid.
func (id SegmentID) Validate() error {
	for _, f := range [...]struct{ name, v string }{
		{"env", id.Env}, {"segment", id.Segment}, {"context kind", id.ContextKind},
	} {
		if err := schema.CheckIdentifier(f.v); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if strings.IndexByte(f.v, 0x1f) >= 0 {
			return fmt.Errorf("%s: contains the unit separator 0x1f", f.name)
		}
	}
	if id.Generation < 1 {
		return fmt.Errorf("generation: %d is not >= 1", id.Generation)
	}
	return nil
}

// dirName is the segment's directory under the state dir: a readable part
// (cut, unsafe characters replaced) and a hash of the exact identity, so any
// identifier maps to one safe name that no other identity shares.
func (id SegmentID) dirName() string {
	sum := sha256.Sum256([]byte(id.Env + "\x1f" + id.Segment + "\x1f" + strconv.Itoa(id.Generation) + "\x1f" + id.ContextKind))
	readable := slug(id.Env) + "__" + slug(id.Segment) + "_g" + strconv.Itoa(id.Generation) + "__" + slug(id.ContextKind)
	if len(readable) > 120 {
		readable = readable[:120]
	}
	return readable + "-" + hex.EncodeToString(sum[:8])
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func slug(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// validRun matches run ids usable in file names.
var validRun = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// File names inside a segment directory.
const (
	stateFile    = "state.json"
	stateTmpFile = "state.json.tmp"
	lockFileName = "lock"
	tmpDirName   = "tmp"
	snapPrefix   = "snap-"
	snapSuffix   = ".keys"
	stateFormat  = 1
)

// state is the JSON state file.
type state struct {
	Format      int    `json:"format"`
	Env         string `json:"env"`
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	ContextKind string `json:"context_kind"`
	// NextSeq is the first sequence number of the next phase. While a
	// snapshot is pending it is the first number of the pending phase.
	NextSeq   uint64       `json:"next_seq"`
	Committed *snapshotRef `json:"committed,omitempty"`
	Pending   *pendingRef  `json:"pending,omitempty"`
}

type snapshotRef struct {
	File  string `json:"file"`
	Run   string `json:"run"`
	Count int64  `json:"count"`
}

type pendingRef struct {
	snapshotRef
	// ReservedUpto bounds the sequence numbers the pending phase may use:
	// NextSeq + committed count + pending count. No later phase uses a
	// number <= ReservedUpto.
	ReservedUpto uint64 `json:"reserved_upto"`
	// Attempts counts publications of this pending snapshot (1 + recoveries).
	Attempts int `json:"attempts"`
}

// Store is the snapshot state of one segment, locked for the life of the
// Store. It is not safe for concurrent use.
type Store struct {
	id    SegmentID
	dir   string
	lease Lease
	seq   SeqAllocator
	// shared and rebuilder are set by WithSharedState; nil otherwise.
	shared        SharedSeq
	rebuilder     Rebuilder
	rebuildReason string // WithRebuild
	st            state
	closed        bool
	// hook, set by tests, is called at each crash point of the protocol; an
	// error from it aborts the step there, as a crash would.
	hook func(point string) error
}

// Option changes how Open builds a Store.
type Option func(*options)

type options struct {
	locker        Locker
	seq           SeqAllocator
	shared        SharedSeq
	rebuilder     Rebuilder
	rebuildReason string
}

// WithLocker makes the store lock its segment with l instead of a
// FileLocker on the state directory.
func WithLocker(l Locker) Option { return func(o *options) { o.locker = l } }

// WithSeqAllocator makes the store reserve sequence numbers from a instead
// of StateSeq.
func WithSeqAllocator(a SeqAllocator) Option { return func(o *options) { o.seq = a } }

// Open locks and loads the store of id under stateDir, creating it if
// needed, and removes files left by interrupted runs. It fails at once with
// an error wrapping ErrLocked if another sync holds the segment.
func Open(ctx context.Context, stateDir string, id SegmentID, opts ...Option) (*Store, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	if stateDir == "" {
		return nil, errors.New("snapshot store: state dir required")
	}
	o := options{locker: FileLocker{StateDir: stateDir}, seq: StateSeq{}}
	for _, opt := range opts {
		opt(&o)
	}
	dir := filepath.Join(stateDir, id.dirName())
	if err := os.MkdirAll(filepath.Join(dir, tmpDirName), 0o755); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	lease, err := o.locker.Lock(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("snapshot store of %s: %w", id, err)
	}
	s := &Store{id: id, dir: dir, lease: lease, seq: o.seq, shared: o.shared, rebuilder: o.rebuilder, rebuildReason: o.rebuildReason}
	if err := s.load(); err != nil {
		_ = lease.Unlock() // the load error is the one to report
		return nil, err
	}
	if err := s.removeGarbage(); err != nil {
		_ = lease.Unlock()
		return nil, err
	}
	return s, nil
}

func (s *Store) load() error {
	path := filepath.Join(s.dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s.st = state{Format: stateFormat, Env: s.id.Env, Segment: s.id.Segment, Generation: s.id.Generation,
			ContextKind: s.id.ContextKind, NextSeq: 1}
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot store: read state: %w", err)
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("snapshot store: state file %s: %w: %w", path, ErrCorrupt, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("snapshot store: state file %s: %w: %s", path, ErrCorrupt, fmt.Sprintf(format, a...))
	}
	switch {
	case st.Format != stateFormat:
		return bad("format %d, this build reads %d", st.Format, stateFormat)
	case st.Env != s.id.Env || st.Segment != s.id.Segment || st.Generation != s.id.Generation || st.ContextKind != s.id.ContextKind:
		return bad("it belongs to env %q segment %q generation %d context kind %q, not %s",
			st.Env, st.Segment, st.Generation, st.ContextKind, s.id)
	case st.NextSeq < 1:
		return bad("next_seq %d", st.NextSeq)
	}
	for _, ref := range []*snapshotRef{st.Committed, pendingSnap(st.Pending)} {
		if ref == nil {
			continue
		}
		if !isSnapName(ref.File) || ref.Count < 0 {
			return bad("snapshot reference %+v", *ref)
		}
		if _, err := os.Stat(filepath.Join(s.dir, ref.File)); err != nil {
			return fmt.Errorf("snapshot store: state file %s names %s: %w", path, ref.File, err)
		}
	}
	if p := st.Pending; p != nil {
		var old int64
		if st.Committed != nil {
			old = st.Committed.Count
		}
		if p.ReservedUpto < st.NextSeq+uint64(old+p.Count) {
			return bad("pending reservation up to %d is too small for next_seq %d", p.ReservedUpto, st.NextSeq)
		}
	}
	s.st = st
	return nil
}

func pendingSnap(p *pendingRef) *snapshotRef {
	if p == nil {
		return nil
	}
	return &p.snapshotRef
}

func isSnapName(name string) bool {
	run, ok := strings.CutPrefix(name, snapPrefix)
	if !ok {
		return false
	}
	run, ok = strings.CutSuffix(run, snapSuffix)
	return ok && validRun.MatchString(run)
}

// removeGarbage deletes what interrupted runs leave: sort runs, temp files,
// and snapshot files the state does not reference.
func (s *Store) removeGarbage() error {
	keep := map[string]bool{}
	if s.st.Committed != nil {
		keep[s.st.Committed.File] = true
	}
	if s.st.Pending != nil {
		keep[s.st.Pending.File] = true
	}
	var errs []error
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == stateTmpFile || (strings.HasPrefix(name, snapPrefix) && !keep[name]) {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	tmp, err := os.ReadDir(filepath.Join(s.dir, tmpDirName))
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.dir, tmpDirName, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapshot store: remove files of interrupted runs: %w", err)
	}
	return nil
}

// Dir is the segment's directory; callers may keep their own files there
// (names not starting with "snap-", "state" or "lock").
func (s *Store) Dir() string { return s.dir }

// ID is the segment of the store.
func (s *Store) ID() SegmentID { return s.id }

// NextSeq is the first sequence number the next phase will use.
func (s *Store) NextSeq() uint64 { return s.st.NextSeq }

// CommittedCount is the number of keys in the committed snapshot (0 when none).
func (s *Store) CommittedCount() int64 {
	if s.st.Committed == nil {
		return 0
	}
	return s.st.Committed.Count
}

// CommittedRun is the run of the committed snapshot, "" when none.
func (s *Store) CommittedRun() string {
	if s.st.Committed == nil {
		return ""
	}
	return s.st.Committed.Run
}

// PendingRun is the run whose snapshot is pending (staged, not committed),
// "" when none.
func (s *Store) PendingRun() string {
	if s.st.Pending == nil {
		return ""
	}
	return s.st.Pending.Run
}

// NewSorter returns a Sorter spilling into the store's temp directory.
func (s *Store) NewSorter(chunkBytes int64) (*Sorter, error) {
	return NewSorter(SortOptions{ChunkBytes: chunkBytes, TempDir: filepath.Join(s.dir, tmpDirName)})
}

// Phase is one publication of a diff: committed → pending.
type Phase struct {
	Run          string // run of the pending snapshot
	Recovery     bool   // republishing a snapshot an earlier run left pending
	Attempt      int    // 1 for the run's own publication, 2+ for recoveries
	OldCount     int64  // keys in the committed snapshot
	NewCount     int64  // keys in the pending snapshot
	FirstSeq     uint64 // sequence number of the first change
	ReservedUpto uint64 // no change gets a number above this
	oldPath      string
	newPath      string
}

func (s *Store) checkOpen() error {
	if s.closed {
		return errors.New("snapshot store: closed")
	}
	return nil
}

func (s *Store) crashPoint(point string) error {
	if s.hook != nil {
		if err := s.hook(point); err != nil {
			return fmt.Errorf("snapshot store: at %s: %w", point, err)
		}
	}
	return nil
}

// resume returns the phase that republishes the pending snapshot left by an
// interrupted run, with a fresh sequence range after the one that run
// reserved; nil if nothing is pending. The new range is durable before resume
// returns.
func (s *Store) resume(ctx context.Context) (*Phase, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	p := s.st.Pending
	if p == nil {
		return nil, nil
	}
	// Both files are read in full before anything is published: a damaged
	// snapshot must stop the run before it sends a partial diff.
	if err := s.verify(s.st.Committed, &p.snapshotRef); err != nil {
		return nil, err
	}
	r, err := s.reserve(ctx, p.ReservedUpto+1, s.CommittedCount()+p.Count)
	if err != nil {
		return nil, err
	}
	next := s.st
	np := *p
	next.Pending = &np
	next.NextSeq, np.ReservedUpto = r.First, r.Last
	np.Attempts++
	if err := s.crashPoint("resume:before-state"); err != nil {
		return nil, err
	}
	if err := s.writeState(next); err != nil {
		return nil, err
	}
	return s.phase(), nil
}

// verify reads each referenced snapshot through, checking format, order,
// checksum and that its count matches the state.
func (s *Store) verify(refs ...*snapshotRef) error {
	for _, ref := range refs {
		if ref == nil {
			continue
		}
		path := filepath.Join(s.dir, ref.File)
		r, err := OpenKeyFile(path)
		if err != nil {
			return fmt.Errorf("snapshot store: snapshot of run %s: %w", ref.Run, err)
		}
		for err == nil {
			_, err = r.Next()
		}
		_ = r.Close() // read-only: a close error loses nothing
		if err != io.EOF {
			return fmt.Errorf("snapshot store: snapshot of run %s: %w", ref.Run, err)
		}
		if r.Count() != ref.Count {
			return fmt.Errorf("snapshot store: snapshot of run %s: %w",
				ref.Run, &CorruptError{Path: path, Reason: fmt.Sprintf("%d keys, the state says %d", r.Count(), ref.Count)})
		}
	}
	return nil
}

func (s *Store) phase() *Phase {
	p := s.st.Pending
	ph := &Phase{
		Run: p.Run, Recovery: p.Attempts > 1, Attempt: p.Attempts,
		OldCount: s.CommittedCount(), NewCount: p.Count,
		FirstSeq: s.st.NextSeq, ReservedUpto: p.ReservedUpto,
		newPath: filepath.Join(s.dir, p.File),
	}
	if s.st.Committed != nil {
		ph.oldPath = filepath.Join(s.dir, s.st.Committed.File)
	}
	return ph
}

// reserve reserves the sequence range of a phase diffing snapshots of
// together keys: more numbers than the diff can use (see the package
// comment), none below floor.
func (s *Store) reserve(ctx context.Context, floor uint64, keys int64) (SeqRange, error) {
	r, err := s.seq.Reserve(ctx, s.id, floor, uint64(keys)+1)
	if err != nil {
		return r, fmt.Errorf("snapshot store: %w", err)
	}
	if r.First < floor || r.Last-r.First != uint64(keys) {
		return r, fmt.Errorf("snapshot store: sequence allocator returned %d..%d for %d numbers from %d", r.First, r.Last, keys+1, floor)
	}
	return r, nil
}

// stage turns the keys of sorter into the pending snapshot of run and
// reserves its sequence range, durably, before anything is published
// (step 1). It fails if a snapshot is already pending: resume and commit it
// first. accept, unless nil, has the last word: it sees the committed
// snapshot's size and the new one's once it is sorted, before anything is
// staged, and an error from it leaves the store as it was (no pending run,
// nothing to recover) and is returned. The caller (Sync) owns the sorter
// and closes it.
func (s *Store) stage(ctx context.Context, run string, sorter *Sorter, accept func(committed, next int64) error) (*Phase, SortStats, error) {
	if err := s.checkOpen(); err != nil {
		return nil, SortStats{}, err
	}
	if !validRun.MatchString(run) {
		return nil, SortStats{}, fmt.Errorf("snapshot store: run id %q must match %s", run, validRun)
	}
	if s.st.Pending != nil {
		return nil, SortStats{}, fmt.Errorf("snapshot store: run %s is still pending; recover it first", s.st.Pending.Run)
	}
	name := snapPrefix + run + snapSuffix
	if s.st.Committed != nil && s.st.Committed.File == name {
		return nil, SortStats{}, fmt.Errorf("snapshot store: run %s is already committed", run)
	}
	// The committed snapshot is read through on another goroutine while the
	// sort's last steps and its merge run here: the two are independent,
	// and a damaged snapshot still stops the run before anything is staged.
	verified := make(chan error, 1)
	go func() { verified <- s.verify(s.st.Committed) }()
	tmp := filepath.Join(s.dir, tmpDirName, name)
	st, err := sorter.Finish(ctx, tmp)
	if verr := <-verified; verr != nil {
		// Only the temp file may exist; Open's cleanup would remove it too.
		return nil, st, errors.Join(verr, removeIfExists(tmp))
	}
	if err != nil {
		return nil, st, fmt.Errorf("snapshot store: sort: %w", err)
	}
	if accept != nil {
		if err := accept(s.CommittedCount(), st.Unique); err != nil {
			// Only the temp file exists; Open's cleanup would remove it too.
			return nil, st, errors.Join(err, os.Remove(tmp))
		}
	}
	if err := s.crashPoint("stage:sorted"); err != nil {
		return nil, st, err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		return nil, st, fmt.Errorf("snapshot store: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return nil, st, err
	}
	if err := s.crashPoint("stage:renamed"); err != nil {
		return nil, st, err
	}
	r, err := s.reserve(ctx, s.st.NextSeq, s.CommittedCount()+st.Unique)
	if err != nil {
		return nil, st, err
	}
	next := s.st
	next.NextSeq = r.First
	next.Pending = &pendingRef{
		snapshotRef:  snapshotRef{File: name, Run: run, Count: st.Unique},
		ReservedUpto: r.Last,
		Attempts:     1,
	}
	if err := s.writeState(next); err != nil {
		return nil, st, err
	}
	return s.phase(), st, nil
}

// removeIfExists removes path; a path already gone is no error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot store: %w", err)
	}
	return nil
}

// commit makes the phase's pending snapshot the committed one and moves
// next_seq past its reserved range (step 2's end). Call it only once every
// change of the phase is acknowledged. The superseded snapshot file is then
// removed; if that fails the commit stands and the error says so. The
// lease is checked first: a store that lost its segment to another holder
// leaves its phase pending, for that holder to recover.
func (s *Store) commit(ctx context.Context, ph *Phase) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	p := s.st.Pending
	if p == nil || p.Run != ph.Run || s.st.NextSeq != ph.FirstSeq || p.ReservedUpto != ph.ReservedUpto {
		return fmt.Errorf("snapshot store: commit of run %s (seq %d..%d) does not match the pending state", ph.Run, ph.FirstSeq, ph.ReservedUpto)
	}
	if err := s.lease.Check(ctx); err != nil {
		return fmt.Errorf("snapshot store: commit of run %s: %w", ph.Run, err)
	}
	if err := s.crashPoint("commit:before-state"); err != nil {
		return err
	}
	old := s.st.Committed
	next := s.st
	next.Committed = &snapshotRef{File: p.File, Run: p.Run, Count: p.Count}
	next.Pending = nil
	next.NextSeq = p.ReservedUpto + 1
	if err := s.writeState(next); err != nil {
		return err
	}
	if err := s.crashPoint("commit:after-state"); err != nil {
		return err
	}
	if old != nil && old.File != p.File {
		if err := os.Remove(filepath.Join(s.dir, old.File)); err != nil {
			return fmt.Errorf("snapshot store: run %s committed, but removing the superseded snapshot failed: %w", p.Run, err)
		}
	}
	return nil
}

// writeState replaces the state file atomically (temp file, fsync, rename,
// fsync of the directory) and adopts next only once it is durable.
func (s *Store) writeState(next state) error {
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return fmt.Errorf("snapshot store: encode state: %w", err)
	}
	b = append(b, '\n')
	tmp := filepath.Join(s.dir, stateTmpFile)
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("snapshot store: write state: %w", err)
	}
	if err := s.crashPoint("state:temp-written"); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, stateFile)); err != nil {
		return fmt.Errorf("snapshot store: write state: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.st = next
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// On a failed write or sync that error is the one to report; the
	// file is rewritten from scratch next time.
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot store: sync dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close() // read-only handle: the sync error is what matters
		return fmt.Errorf("snapshot store: sync dir: %w", err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("snapshot store: sync dir: %w", err)
	}
	return nil
}

// Close releases the lock. It is idempotent. A crash is equivalent to Close
// at any point: the kernel drops the lock and Open cleans up.
func (s *Store) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lease.Unlock()
}
