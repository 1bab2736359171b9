package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSorter(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	randomKeys := func(n, distinct int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "user-" + strconv.Itoa(rnd.IntN(distinct))
		}
		return out
	}
	tests := []struct {
		name       string
		keys       []string
		chunkBytes int64
		wantRuns   bool
	}{
		{name: "no keys", keys: nil},
		{name: "in memory with duplicates", keys: []string{"b", "a", "c", "a", "b", "a"}},
		{name: "keys sharing 8-byte prefixes", keys: []string{"prefix00b", "prefix00", "prefix00a", "prefix00", "prefix0"}},
		{name: "keys of MaxKeyLen in the smallest chunk", chunkBytes: MinChunkBytes, wantRuns: true,
			keys: []string{strings.Repeat("b", MaxKeyLen), strings.Repeat("a", MaxKeyLen), strings.Repeat("c", MaxKeyLen),
				strings.Repeat("a", MaxKeyLen), strings.Repeat("d", MaxKeyLen), strings.Repeat("e", MaxKeyLen)}},
		{name: "spilled runs, duplicates across runs", keys: randomKeys(20000, 5000), chunkBytes: MinChunkBytes, wantRuns: true},
		{name: "more runs than the merge fan-in", keys: randomKeys(200000, 150000), chunkBytes: MinChunkBytes, wantRuns: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewSorter(SortOptions{ChunkBytes: tt.chunkBytes, TempDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.keys {
				if err := s.Add(k); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "out.keys")
			st, err := s.Finish(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tt.keys)
			slices.Sort(want)
			want = slices.Compact(want)
			got, err := readKeys(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				want = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("sorted output differs: got %d keys, want %d", len(got), len(want))
			}
			if st.Added != int64(len(tt.keys)) || st.Unique != int64(len(want)) || st.Duplicates != st.Added-st.Unique {
				t.Fatalf("stats %+v, want added %d unique %d", st, len(tt.keys), len(want))
			}
			if (st.Runs > 0) != tt.wantRuns {
				t.Fatalf("runs = %d, want spilling %v", st.Runs, tt.wantRuns)
			}
			left, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Fatalf("run files left behind: %v", left)
			}
		})
	}
}

func TestSorterOptions(t *testing.T) {
	tests := []struct {
		name string
		opts SortOptions
		msg  string
	}{
		{"chunk too small", SortOptions{ChunkBytes: 1, TempDir: "x"}, "chunk bytes 1 out of range"},
		{"chunk too large", SortOptions{ChunkBytes: MaxChunkBytes + 1, TempDir: "x"}, "out of range"},
		{"no temp dir", SortOptions{}, "temp dir required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSorter(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestSorterCloseRemovesRuns(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSorter(SortOptions{ChunkBytes: MinChunkBytes, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		if err := s.Add(fmt.Sprintf("key-%06d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.runs) == 0 {
		t.Fatal("expected spilled runs")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("runs left: %v", left)
	}
	if err := s.Add("x"); err == nil {
		t.Fatal("Add after Close succeeded")
	}
}

// userKey makes keys shaped like real user ids (about 20 bytes).
func userKey(i int) string { return "user-" + strconv.Itoa(i*7919%100000007) + "@example.com" }

func sortKeys(b *testing.B, n int, chunkBytes int64) SortStats {
	dir := b.TempDir()
	s, err := NewSorter(SortOptions{ChunkBytes: chunkBytes, TempDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := s.Add(userKey(i)); err != nil {
			b.Fatal(err)
		}
	}
	st, err := s.Finish(context.Background(), filepath.Join(dir, "out.keys"))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkSortSnapshot sorts 1M distinct keys, in memory (default chunk)
// and spilled (4 MiB chunks).
func BenchmarkSortSnapshot(b *testing.B) {
	const n = 1_000_000
	for _, chunk := range []int64{DefaultChunkBytes, 4 << 20} {
		b.Run("chunk="+strconv.FormatInt(chunk>>20, 10)+"MiB", func(b *testing.B) {
			for b.Loop() {
				sortKeys(b, n, chunk)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// BenchmarkSortSnapshot10MPeakMemory sorts a 10M-key snapshot (about 260 MB
// of keys) with the default 64 MiB chunk and reports the high-water marks of
// the Go heap (sampled every 5 ms) and of the process RSS (VmHWM, reset
// before the sort). Run with
//
//	go test ./pkg/snapshot -run '^$' -bench SortSnapshot10M -benchtime 1x
func BenchmarkSortSnapshot10MPeakMemory(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		var st SortStats
		peak := measurePeak(b, func() { st = sortKeys(b, n, DefaultChunkBytes) })
		peak.report(b)
		b.ReportMetric(float64(st.Runs), "runs")
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}

// peakMem is the memory high-water mark of a measured call.
type peakMem struct {
	heap uint64 // HeapInuse, sampled every 5 ms
	rss  uint64 // VmHWM; 0 when it could not be read or reset
}

func (p peakMem) report(b *testing.B) {
	b.ReportMetric(float64(p.heap)/(1<<20), "peak-heap-MiB")
	if p.rss > 0 {
		b.ReportMetric(float64(p.rss)/(1<<20), "peak-rss-MiB")
	}
}

// measurePeak runs fn and returns the high-water marks of the Go heap and
// of the process RSS during it. The RSS mark is reset first (Linux
// clear_refs), so it covers fn, plus whatever else the process holds.
func measurePeak(b *testing.B, fn func()) peakMem {
	b.Helper()
	runtime.GC()
	resetOK := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	stop := make(chan struct{})
	var peak peakMem
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak.heap = max(peak.heap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	if hwm, err := peakRSS(); err == nil && resetOK {
		peak.rss = hwm
	}
	return peak
}

// peakRSS reads VmHWM from /proc/self/status (Linux).
func peakRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// TestSortSpansMatchesSortStrings checks the windowed sort against
// slices.Sort on random keys built to tie on whole windows: a small
// alphabet including the zero byte (which the window's zero padding must
// not confuse with a shorter key), shared prefixes of 0 to 24 bytes and
// lengths ending inside, at and past a window's end.
func TestSortSpansMatchesSortStrings(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	prefixes := []string{"", "user-", "prefix00", "user-1000000", strings.Repeat("\x00", 8), strings.Repeat("ab", 12)}
	for round := range 300 {
		keys := make([]string, 1+rnd.IntN(400))
		for i := range keys {
			b := []byte(prefixes[rnd.IntN(len(prefixes))])
			for range rnd.IntN(20) {
				b = append(b, "\x00ab"[rnd.IntN(3)])
			}
			if len(b) == 0 {
				b = append(b, 'a')
			}
			keys[i] = string(b)
		}
		c := &chunk{}
		for _, k := range keys {
			off := len(c.arena)
			c.arena = append(c.arena, k...)
			c.spans = append(c.spans, span{prefix: keyPrefix(c.arena[off:]), off: uint32(off), n: uint32(len(k))})
		}
		c.sort()
		got := make([]string, len(c.spans))
		for i, sp := range c.spans {
			got[i] = string(c.keyAt(sp))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: sorted %q, want %q", round, got, want)
		}
	}
}

// TestSorterMatchesSortForRandomInputs checks the sorter, with its spill
// goroutine and the last chunk merged from memory, against slices.Sort on
// random inputs: sizes from none to many chunks, duplicates within and
// across chunks, keys from 1 byte to MaxKeyLen.
func TestSorterMatchesSortForRandomInputs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for round := range 25 {
		n := rnd.IntN(30000)
		keys := make([]string, n)
		for i := range keys {
			switch rnd.IntN(100) {
			case 0:
				keys[i] = strings.Repeat("k", 1+rnd.IntN(MaxKeyLen))
			default:
				keys[i] = "user-" + strconv.Itoa(rnd.IntN(1+n/2)) + strings.Repeat("@", rnd.IntN(3))
			}
		}
		chunk := MinChunkBytes << rnd.IntN(5)
		dir := t.TempDir()
		s, err := NewSorter(SortOptions{ChunkBytes: int64(chunk), TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := s.Add(k); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(t.TempDir(), "out.keys")
		st, err := s.Finish(context.Background(), out)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got, err := readKeys(out)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Compact(slices.Sorted(slices.Values(keys)))
		if !slices.Equal(got, want) {
			t.Fatalf("round %d (%d keys, chunk %d): got %d keys, want %d", round, n, chunk, len(got), len(want))
		}
		if st.Added != int64(n) || st.Unique != int64(len(want)) || st.Duplicates != st.Added-st.Unique {
			t.Fatalf("round %d: stats %+v, want added %d unique %d", round, st, n, len(want))
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("round %d: run files left behind: %v", round, left)
		}
	}
}

// TestSorterSpillErrorIsReturned: a run file that cannot be written fails
// on the spill goroutine; the error must reach the caller (from Add or
// Finish), never be lost, and nothing may be left running.
func TestSorterSpillErrorIsReturned(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := NewSorter(SortOptions{ChunkBytes: MinChunkBytes, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	var addErr error
	for i := 0; i < 20000 && addErr == nil; i++ {
		addErr = s.Add(fmt.Sprintf("key-%06d", i))
	}
	err = addErr
	if err == nil {
		_, err = s.Finish(context.Background(), filepath.Join(t.TempDir(), "out.keys"))
	}
	if err == nil || !strings.Contains(err.Error(), "sorter: spill") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want the spill's missing directory", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
}

// TestSorterCloseMidwayStopsTheSpiller: closing a sorter whose spill is in
// flight (a run that ends with a cancelled context) waits for the spill
// goroutine and removes every run file.
func TestSorterCloseMidwayStopsTheSpiller(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	s, err := NewSorter(SortOptions{ChunkBytes: MinChunkBytes, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if err := s.Add(fmt.Sprintf("key-%06d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.jobs == nil {
		t.Fatal("no spill started")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("run files left behind: %v", left)
	}
}

// TestSyncCancelledWhileFillingLeavesNoGoroutine: a run whose context is
// cancelled while keys are still being added (after spills started) ends
// with the context's error, nothing staged, and no goroutine of its sorter
// left running.
func TestSyncCancelledWhileFillingLeavesNoGoroutine(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := Open(context.Background(), t.TempDir(), testID)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fill := func(add func(string) error) error {
		for i := range 50000 {
			if i == 40000 {
				cancel()
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := add(fmt.Sprintf("key-%06d", i)); err != nil {
				return err
			}
		}
		return nil
	}
	var log []event
	_, err = s.Sync(ctx, "run-1", fill, func(*Phase) (Publisher, error) { return &fakePub{log: &log, failAfter: -1}, nil },
		SyncOptions{ChunkBytes: MinChunkBytes})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s.PendingRun() != "" || len(log) != 0 {
		t.Fatalf("pending %q, %d events published after a cancelled fill", s.PendingRun(), len(log))
	}
	waitGoroutines(t, base)
	if left, _ := os.ReadDir(filepath.Join(s.Dir(), tmpDirName)); len(left) != 0 {
		t.Fatalf("run files left behind: %v", left)
	}
}

// waitGoroutines fails unless the goroutine count comes back to base
// within a second (an exiting goroutine is counted until it is gone).
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
