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
	"sync"
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
// ioBufferLen plus one longest record each); more runs are merged in
// several passes.
const mergeFanIn = 64

// spanBytes is the memory of one key's index entry, counted in the budget.
const spanBytes = 16

// ctxEvery is how many keys a loop handles between checks of ctx.
const ctxEvery = 1 << 16

// SortOptions configure a Sorter.
type SortOptions struct {
	// ChunkBytes bounds the memory allocated for the in-memory chunks: key
	// bytes plus 16 bytes of index per key. There are two chunks of half
	// of it each: while one is filled, the other, full, is sorted and
	// spilled to a run file on another goroutine (so on a second core);
	// their buffers are reused. Default DefaultChunkBytes (64 MiB). The
	// merge then needs 272 KiB of read buffer per run (at most 64 runs at
	// once), besides the last chunk, which it reads from memory.
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

// chunk is an in-memory sort chunk: key bytes and their index.
type chunk struct {
	arena []byte
	spans []span
}

func (c *chunk) keyAt(sp span) []byte { return c.arena[sp.off : sp.off+sp.n] }

// Sorter builds a sorted, de-duplicated key file from keys added in any
// order, in memory bounded by ChunkBytes whatever the number of keys.
//
// A full chunk goes to the Sorter's spill goroutine, which sorts it and
// writes it to a run file while Add fills the other chunk; Add waits only
// when the next chunk is full before the previous one is written. The
// goroutine is started at the first spill and stopped by Finish or Close.
type Sorter struct {
	opts   SortOptions
	budget int    // bytes of one chunk: half of ChunkBytes
	cur    *chunk // being filled
	spare  *chunk // free for the next fill; nil while the spiller holds it
	runs   []string
	added  int64
	dups   int64
	nextID int
	closed bool
	// The spill goroutine: jobs in, one result out per job.
	jobs    chan spillJob
	results chan spillResult
	busy    bool // a job is out: its result is still to be collected
	wg      sync.WaitGroup
}

type spillJob struct {
	c    *chunk
	path string
}

type spillResult struct {
	c    *chunk
	path string
	dups int64
	err  error
}

// NewSorter returns a Sorter; Close it to stop its spill goroutine and
// remove its run files.
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
	return &Sorter{opts: opts, budget: int(opts.ChunkBytes / 2), cur: &chunk{}}, nil
}

// Add buffers key, handing a full chunk to the spill goroutine first.
func (s *Sorter) Add(key string) error {
	if s.closed {
		return errors.New("sorter: Add after Close")
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("sorter: key of %d bytes (want 1..%d)", len(key), MaxKeyLen)
	}
	if !s.cur.reserve(len(key), s.budget) {
		if err := s.handOff(); err != nil {
			return err
		}
		if !s.cur.reserve(len(key), s.budget) {
			// Only possible for one key larger than the whole budget, which
			// the bounds on ChunkBytes and MaxKeyLen rule out.
			return fmt.Errorf("sorter: key of %d bytes does not fit in a chunk of %d", len(key), s.budget)
		}
	}
	c := s.cur
	off := len(c.arena)
	c.arena = append(c.arena, key...)
	c.spans = append(c.spans, span{prefix: keyPrefix(c.arena[off:]), off: uint32(off), n: uint32(len(key))})
	s.added++
	return nil
}

// reserve makes room for one more key of n bytes, growing the buffers while
// their allocated size (not just their length) stays within budget. It
// reports false when the chunk is full.
func (c *chunk) reserve(n, budget int) bool {
	if len(c.arena)+n > cap(c.arena) {
		size := min(max(2*cap(c.arena), min(64<<10, budget/4), len(c.arena)+n), budget-cap(c.spans)*spanBytes)
		if size < len(c.arena)+n {
			return false
		}
		a := make([]byte, len(c.arena), size)
		copy(a, c.arena)
		c.arena = a
	}
	if len(c.spans) == cap(c.spans) {
		size := min(max(2*cap(c.spans), min(4096, budget/4/spanBytes)), (budget-cap(c.arena))/spanBytes)
		if size <= len(c.spans) {
			return false
		}
		sp := make([]span, len(c.spans), size)
		copy(sp, c.spans)
		c.spans = sp
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

// sort sorts the chunk's keys.
func (c *chunk) sort() { sortSpans(c.arena, c.spans, 0) }

// sortSpans sorts spans whose keys share their first depth bytes, holding
// in prefix the 8 bytes from depth, by those 8 bytes and then the length
// within them (a key ending inside the window sorts before a longer one with
// the same bytes, which zero padding alone would not tell apart). Runs that
// tie on a whole window are sorted again on the next one: keys sharing a
// long prefix ("user-1000…") cost a few integer comparisons per window
// instead of a byte comparison from the start at every step.
func sortSpans(arena []byte, spans []span, depth uint32) {
	for len(spans) > 1 {
		radixSpans(spans, depth, 56)
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

// allReachWindowEnd reports whether every key goes at least to the end of
// the 8-byte window at depth.
func allReachWindowEnd(spans []span, depth uint32) bool {
	for _, sp := range spans {
		if sp.n-depth < 8 {
			return false
		}
	}
	return true
}

// radixCutoff is the size under which radixSpans hands a bucket to a
// comparison sort.
const radixCutoff = 64

// radixSpans sorts spans by (prefix, length within the window at depth),
// prefix bytes below bit shift+8 being the ones still to look at: an
// in-place MSD radix sort (American flag sort) on the prefix, one byte per
// level, with small buckets and the keys tied on all 8 bytes finished by a
// comparison sort. A level whose keys all share the byte costs one pass
// and no moves, so a common prefix is cheap.
func radixSpans(spans []span, depth uint32, shift int) {
	for len(spans) > radixCutoff && shift >= 0 {
		var count [256]int
		for _, sp := range spans {
			count[byte(sp.prefix>>shift)]++
		}
		if b := byte(spans[0].prefix >> shift); count[b] == len(spans) {
			shift -= 8 // one bucket: the next byte, without recursion
			continue
		}
		var start, end [256]int
		sum := 0
		for b, c := range count {
			start[b] = sum
			sum += c
			end[b] = sum
		}
		next := start
		for b := range 256 {
			for next[b] < end[b] {
				sp := spans[next[b]]
				d := int(byte(sp.prefix >> shift))
				for d != b {
					// Put sp in its bucket and take the one it displaces.
					spans[next[d]], sp = sp, spans[next[d]]
					next[d]++
					d = int(byte(sp.prefix >> shift))
				}
				spans[next[b]] = sp
				next[b]++
			}
		}
		for b := range 256 {
			if end[b]-start[b] > 1 {
				radixSpans(spans[start[b]:end[b]], depth, shift-8)
			}
		}
		return
	}
	if shift < 0 && allReachWindowEnd(spans, depth) {
		return // equal windows and lengths: sortSpans goes on to the next window
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.prefix != b.prefix {
			if a.prefix < b.prefix {
				return -1
			}
			return 1
		}
		return cmp.Compare(min(a.n-depth, 8), min(b.n-depth, 8))
	})
}

// write writes the sorted chunk de-duplicated to w and returns the
// duplicates it dropped.
func (c *chunk) write(w *KeyWriter) (dups int64, err error) {
	var prev []byte
	for i, sp := range c.spans {
		k := c.keyAt(sp)
		if i > 0 && bytes.Equal(k, prev) {
			dups++
			continue
		}
		if err := w.Append(k); err != nil {
			return dups, err
		}
		prev = k
	}
	return dups, nil
}

func (s *Sorter) newRunPath() string {
	s.nextID++
	return filepath.Join(s.opts.TempDir, "run-"+strconv.Itoa(s.nextID)+".keys")
}

// spill sorts c and writes it to the run file path (not fsynced: a crash
// discards runs). On error the file is removed.
func spill(c *chunk, path string) (int64, error) {
	c.sort()
	w, err := CreateKeyFile(path)
	if err != nil {
		return 0, fmt.Errorf("sorter: spill: %w", err)
	}
	dups, err := c.write(w)
	if err != nil {
		w.Abort()
		return 0, fmt.Errorf("sorter: spill: %w", err)
	}
	if err := w.Close(false); err != nil {
		return 0, fmt.Errorf("sorter: spill: %w", err)
	}
	return dups, nil
}

// spiller is the spill goroutine: it spills each chunk it receives and
// hands it back, emptied, with the outcome.
func (s *Sorter) spiller(jobs <-chan spillJob, results chan<- spillResult) {
	defer s.wg.Done()
	for j := range jobs {
		dups, err := spill(j.c, j.path)
		j.c.arena, j.c.spans = j.c.arena[:0], j.c.spans[:0]
		results <- spillResult{c: j.c, path: j.path, dups: dups, err: err}
	}
}

// handOff gives the full current chunk to the spill goroutine, after the
// previous one is written, and continues in the chunk that one freed.
func (s *Sorter) handOff() error {
	if err := s.collect(); err != nil {
		return err
	}
	if s.jobs == nil {
		s.jobs, s.results = make(chan spillJob), make(chan spillResult, 1)
		s.wg.Add(1)
		go s.spiller(s.jobs, s.results)
	}
	next := s.spare
	if next == nil {
		// The second chunk: the first one's growth found the sizes that
		// fill the budget, so allocate them at once rather than leave
		// another series of outgrown buffers to the garbage collector.
		next = &chunk{arena: make([]byte, 0, cap(s.cur.arena)), spans: make([]span, 0, cap(s.cur.spans))}
	}
	s.jobs <- spillJob{c: s.cur, path: s.newRunPath()}
	s.busy = true
	s.cur, s.spare = next, nil
	return nil
}

// collect waits for the spill in progress, if any, and takes its run and
// its chunk back.
func (s *Sorter) collect() error {
	if !s.busy {
		return nil
	}
	r := <-s.results
	s.busy = false
	s.spare = r.c
	if r.err != nil {
		return r.err
	}
	s.runs = append(s.runs, r.path)
	s.dups += r.dups
	return nil
}

// stopSpiller ends the spill goroutine and waits for it, collecting the
// spill in progress.
func (s *Sorter) stopSpiller() error {
	if s.jobs == nil {
		return nil
	}
	close(s.jobs)
	s.jobs = nil
	err := s.collect()
	s.wg.Wait()
	return err
}

// Finish writes every added key, sorted and de-duplicated, to path (created
// or truncated, fsynced) and removes the run files. The Sorter cannot be used
// afterwards except for Close.
//
// Once keys were spilled, the last chunk is sorted here while the spill
// goroutine writes the one before, and is merged with the runs from
// memory: it is never written to a run file.
func (s *Sorter) Finish(ctx context.Context, path string) (st SortStats, err error) {
	if s.closed {
		return SortStats{}, errors.New("sorter: Finish after Close")
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	st = SortStats{Added: s.added}
	last := s.cur
	last.sort()
	if err := s.stopSpiller(); err != nil {
		return st, err
	}
	s.cur, s.spare = nil, nil // only last is needed now: free the other chunk
	if len(s.runs) == 0 {
		w, err := CreateKeyFile(path)
		if err != nil {
			return st, fmt.Errorf("sorter: %w", err)
		}
		dups, err := last.write(w)
		if err != nil {
			w.Abort()
			return st, fmt.Errorf("sorter: %w", err)
		}
		if err := w.Close(true); err != nil {
			return st, fmt.Errorf("sorter: %w", err)
		}
		st.Unique, st.Duplicates = w.Count(), s.dups+dups
		return st, nil
	}
	st.Runs = len(s.runs)
	// The last chunk takes one of the final merge's places.
	for len(s.runs)+1 > mergeFanIn {
		group := s.runs[:mergeFanIn]
		out := s.newRunPath()
		if _, err := s.merge(ctx, group, nil, out, false); err != nil {
			return st, err
		}
		for _, p := range group {
			if err := os.Remove(p); err != nil {
				return st, fmt.Errorf("sorter: remove run: %w", err)
			}
		}
		s.runs = append(s.runs[mergeFanIn:], out)
	}
	n, err := s.merge(ctx, s.runs, last, path, true)
	if err != nil {
		return st, err
	}
	st.Unique, st.Duplicates = n, s.dups
	return st, nil
}

// runCursor is one run in the merge heap: a run file, or the sorted
// in-memory chunk when r is nil.
type runCursor struct {
	r   *KeyReader
	mem *chunk
	i   int
	key []byte
}

func (c *runCursor) next() ([]byte, error) {
	if c.r != nil {
		return c.r.Next()
	}
	if c.i == len(c.mem.spans) {
		return nil, io.EOF
	}
	c.i++
	return c.mem.keyAt(c.mem.spans[c.i-1]), nil
}

func (c *runCursor) close() error {
	if c.r == nil {
		return nil
	}
	return c.r.Close()
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

// merge k-way merges sorted runs, and the sorted chunk mem unless nil, into
// out, dropping keys equal to the last one written (duplicates within mem
// and across runs), and returns the keys written.
func (s *Sorter) merge(ctx context.Context, runs []string, mem *chunk, out string, durable bool) (int64, error) {
	h := make(runHeap, 0, len(runs)+1)
	defer func() {
		for _, c := range h {
			_ = c.close() // read-only: a close error loses nothing
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
	if mem != nil && len(mem.spans) > 0 {
		c := &runCursor{mem: mem}
		c.key, _ = c.next() // not empty: a key, no error
		h = append(h, c)
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
		c.key, err = c.next()
		switch {
		case err == io.EOF:
			heap.Pop(&h)
			if err := c.close(); err != nil {
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
	if err := w.Close(durable); err != nil {
		return 0, fmt.Errorf("sorter: merge: %w", err)
	}
	return n, nil
}

// Close stops the spill goroutine (after the spill in progress, if any)
// and removes the run files not yet merged. It is idempotent.
func (s *Sorter) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	// A failed spill removed its own file; its error was or will never be
	// returned by Add, so only the removals below matter here.
	_ = s.stopSpiller()
	s.cur, s.spare = nil, nil
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
