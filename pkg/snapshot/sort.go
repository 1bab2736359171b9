package snapshot

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// DefaultChunkBytes is the default memory budget of one in-memory sort chunk.
const DefaultChunkBytes = 64 << 20

// Bounds of SortOptions.ChunkBytes. The upper bound keeps arena offsets in
// 32 bits.
const (
	MinChunkBytes = 64 << 10
	MaxChunkBytes = 2 << 30
)

// mergeFanIn bounds the runs merged at once (open files, read buffers of
// ioBufferLen each); more runs are merged in several passes.
const mergeFanIn = 64

// spanBytes is the memory of one key's index entry, counted in the budget.
const spanBytes = 16

// ctxEvery is how many keys a loop handles between checks of ctx.
const ctxEvery = 1 << 16

// SortOptions configure a Sorter.
type SortOptions struct {
	// ChunkBytes bounds the memory allocated for the in-memory chunk: key
	// bytes plus 16 bytes of index per key. A full chunk is sorted and
	// spilled to a run file; its buffers are reused for the next one.
	// Default DefaultChunkBytes (64 MiB). The merge then needs 256 KiB of
	// read buffer per run (at most 64 runs at once).
	ChunkBytes int64
	// TempDir receives the run files. Required.
	TempDir string
}

// SortStats describe a finished sort.
type SortStats struct {
	Added      int64 // keys added
	Unique     int64 // distinct keys written
	Duplicates int64 // Added - Unique
	Runs       int   // run files spilled (0: sorted in memory)
}

// span locates a key in the arena. prefix holds 8 bytes of the key (big
// endian, zero padded): its first 8 until the chunk is sorted, then the
// window the sort last compared, so most comparisons never touch the arena.
type span struct {
	prefix uint64
	off    uint32
	n      uint32
}

// Sorter builds a sorted, de-duplicated key file from keys added in any
// order, in memory bounded by ChunkBytes whatever the number of keys.
type Sorter struct {
	opts   SortOptions
	arena  []byte
	spans  []span
	runs   []string
	added  int64
	dups   int64
	nextID int
	closed bool
}

// NewSorter returns a Sorter; Close it to remove its run files.
func NewSorter(opts SortOptions) (*Sorter, error) {
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.ChunkBytes < MinChunkBytes || opts.ChunkBytes > MaxChunkBytes {
		return nil, fmt.Errorf("chunk bytes %d out of range [%d, %d]", opts.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	if opts.TempDir == "" {
		return nil, errors.New("sorter: temp dir required")
	}
	return &Sorter{opts: opts}, nil
}

// Add buffers key, spilling a full chunk to a run file first.
func (s *Sorter) Add(key string) error {
	if s.closed {
		return errors.New("sorter: Add after Close")
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("sorter: key of %d bytes (want 1..%d)", len(key), MaxKeyLen)
	}
	if !s.reserve(len(key)) {
		if err := s.spill(); err != nil {
			return err
		}
		if !s.reserve(len(key)) {
			// Only possible for one key larger than the whole budget, which
			// the bounds on ChunkBytes and MaxKeyLen rule out.
			return fmt.Errorf("sorter: key of %d bytes does not fit in a chunk of %d", len(key), s.opts.ChunkBytes)
		}
	}
	off := len(s.arena)
	s.arena = append(s.arena, key...)
	s.spans = append(s.spans, span{prefix: keyPrefix(s.arena[off:]), off: uint32(off), n: uint32(len(key))})
	s.added++
	return nil
}

// reserve makes room for one more key of n bytes, growing the buffers while
// their allocated size (not just their length) stays within ChunkBytes. It
// reports false when the chunk is full.
func (s *Sorter) reserve(n int) bool {
	budget := int(s.opts.ChunkBytes)
	if len(s.arena)+n > cap(s.arena) {
		c := min(max(2*cap(s.arena), min(64<<10, budget/4), len(s.arena)+n), budget-cap(s.spans)*spanBytes)
		if c < len(s.arena)+n {
			return false
		}
		a := make([]byte, len(s.arena), c)
		copy(a, s.arena)
		s.arena = a
	}
	if len(s.spans) == cap(s.spans) {
		c := min(max(2*cap(s.spans), min(4096, budget/4/spanBytes)), (budget-cap(s.arena))/spanBytes)
		if c <= len(s.spans) {
			return false
		}
		sp := make([]span, len(s.spans), c)
		copy(sp, s.spans)
		s.spans = sp
	}
	return true
}

func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var b [8]byte
	copy(b[:], k)
	return binary.BigEndian.Uint64(b[:])
}

func (s *Sorter) keyAt(sp span) []byte { return s.arena[sp.off : sp.off+sp.n] }

// sortChunk sorts the buffered keys.
func (s *Sorter) sortChunk() { sortSpans(s.arena, s.spans, 0) }

// sortSpans sorts spans whose keys share their first depth bytes, holding
// in prefix the 8 bytes from depth, by those 8 bytes and then the length
// within them (a key ending inside the window sorts before a longer one with
// the same bytes, which zero padding alone would not tell apart). Runs that
// tie on a whole window are sorted again on the next one: keys sharing a
// long prefix ("user-1000…") cost a few integer comparisons per window
// instead of a byte comparison from the start at every step.
func sortSpans(arena []byte, spans []span, depth uint32) {
	for len(spans) > 1 {
		slices.SortFunc(spans, func(a, b span) int {
			if a.prefix != b.prefix {
				if a.prefix < b.prefix {
					return -1
				}
				return 1
			}
			return cmp.Compare(min(a.n-depth, 8), min(b.n-depth, 8))
		})
		// Keys reaching the window's end sort after the others with the same
		// window, so each run of them is contiguous: sort each on the next
		// window. A run that is the whole slice is handled by the loop
		// rather than by recursion.
		next := depth + 8
		whole := false
		for i := 0; i < len(spans); {
			j := i + 1
			if spans[i].n >= next {
				for j < len(spans) && spans[j].prefix == spans[i].prefix && spans[j].n >= next {
					j++
				}
			}
			if j-i > 1 {
				run := spans[i:j]
				for k := range run {
					run[k].prefix = keyPrefix(arena[run[k].off+next : run[k].off+run[k].n])
				}
				if j-i == len(spans) {
					whole = true
					break
				}
				sortSpans(arena, run, next)
			}
			i = j
		}
		if !whole {
			return
		}
		depth = next
	}
}

// writeChunk writes the sorted chunk de-duplicated to w.
func (s *Sorter) writeChunk(w *KeyWriter) error {
	var prev []byte
	for i, sp := range s.spans {
		k := s.keyAt(sp)
		if i > 0 && bytes.Equal(k, prev) {
			s.dups++
			continue
		}
		if err := w.Append(k); err != nil {
			return err
		}
		prev = k
	}
	return nil
}

func (s *Sorter) newRunPath() string {
	s.nextID++
	return filepath.Join(s.opts.TempDir, "run-"+strconv.Itoa(s.nextID)+".keys")
}

func (s *Sorter) spill() error {
	s.sortChunk()
	path := s.newRunPath()
	w, err := CreateKeyFile(path)
	if err != nil {
		return fmt.Errorf("sorter: spill: %w", err)
	}
	if err := s.writeChunk(w); err != nil {
		w.Abort()
		return fmt.Errorf("sorter: spill: %w", err)
	}
	// Runs are temporary: a crash discards them, so no fsync.
	if err := w.Close(false); err != nil {
		return fmt.Errorf("sorter: spill: %w", err)
	}
	s.runs = append(s.runs, path)
	s.arena = s.arena[:0]
	s.spans = s.spans[:0]
	return nil
}

// Finish writes every added key, sorted and de-duplicated, to path (created
// or truncated, fsynced) and removes the run files. The Sorter cannot be used
// afterwards except for Close.
func (s *Sorter) Finish(ctx context.Context, path string) (st SortStats, err error) {
	if s.closed {
		return SortStats{}, errors.New("sorter: Finish after Close")
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	st = SortStats{Added: s.added}
	if len(s.runs) == 0 {
		s.sortChunk()
		w, err := CreateKeyFile(path)
		if err != nil {
			return st, fmt.Errorf("sorter: %w", err)
		}
		if err := s.writeChunk(w); err != nil {
			w.Abort()
			return st, fmt.Errorf("sorter: %w", err)
		}
		if err := w.Close(true); err != nil {
			return st, fmt.Errorf("sorter: %w", err)
		}
		st.Unique, st.Duplicates = w.Count(), s.dups
		return st, nil
	}
	if len(s.spans) > 0 {
		if err := s.spill(); err != nil {
			return st, err
		}
	}
	s.arena, s.spans = nil, nil // the merge does not need them: free the memory
	st.Runs = len(s.runs)
	for len(s.runs) > mergeFanIn {
		group := s.runs[:mergeFanIn]
		out := s.newRunPath()
		if _, err := s.merge(ctx, group, out, false); err != nil {
			return st, err
		}
		for _, p := range group {
			if err := os.Remove(p); err != nil {
				return st, fmt.Errorf("sorter: remove run: %w", err)
			}
		}
		s.runs = append(s.runs[mergeFanIn:], out)
	}
	n, err := s.merge(ctx, s.runs, path, true)
	if err != nil {
		return st, err
	}
	st.Unique, st.Duplicates = n, s.dups
	return st, nil
}

// runCursor is one run in the merge heap.
type runCursor struct {
	r   *KeyReader
	key []byte
}

type runHeap []*runCursor

func (h runHeap) Len() int           { return len(h) }
func (h runHeap) Less(i, j int) bool { return bytes.Compare(h[i].key, h[j].key) < 0 }
func (h runHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)        { *h = append(*h, x.(*runCursor)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merge k-way merges sorted runs into out, dropping keys equal to the last
// one written (duplicates across runs), and returns the keys written.
func (s *Sorter) merge(ctx context.Context, runs []string, out string, sync bool) (int64, error) {
	h := make(runHeap, 0, len(runs))
	defer func() {
		for _, c := range h {
			_ = c.r.Close() // read-only: a close error loses nothing
		}
	}()
	for _, p := range runs {
		r, err := OpenKeyFile(p)
		if err != nil {
			return 0, fmt.Errorf("sorter: merge: %w", err)
		}
		c := &runCursor{r: r}
		h = append(h, c)
		if c.key, err = r.Next(); err != nil {
			// A run is never empty: EOF here is corruption too.
			return 0, fmt.Errorf("sorter: merge: first key of %s: %w", p, err)
		}
	}
	heap.Init(&h)
	w, err := CreateKeyFile(out)
	if err != nil {
		return 0, fmt.Errorf("sorter: merge: %w", err)
	}
	var last []byte
	var n int64
	for len(h) > 0 {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				w.Abort()
				return 0, fmt.Errorf("sorter: merge: %w", err)
			}
		}
		c := h[0]
		if n > 0 && bytes.Equal(c.key, last) {
			s.dups++
		} else {
			if err := w.Append(c.key); err != nil {
				w.Abort()
				return 0, fmt.Errorf("sorter: merge: %w", err)
			}
			last = append(last[:0], c.key...)
			n++
		}
		c.key, err = c.r.Next()
		switch {
		case err == io.EOF:
			heap.Pop(&h)
			if err := c.r.Close(); err != nil {
				w.Abort()
				return 0, fmt.Errorf("sorter: merge: %w", err)
			}
		case err != nil:
			w.Abort()
			return 0, fmt.Errorf("sorter: merge: %w", err)
		default:
			heap.Fix(&h, 0)
		}
	}
	if err := w.Close(sync); err != nil {
		return 0, fmt.Errorf("sorter: merge: %w", err)
	}
	return n, nil
}

// Close removes the run files not yet merged. It is idempotent.
func (s *Sorter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.arena, s.spans = nil, nil
	var errs []error
	for _, p := range s.runs {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.runs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sorter: remove runs: %w", err)
	}
	return nil
}
