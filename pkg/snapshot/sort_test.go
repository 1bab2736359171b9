package snapshot

import (
	"context"
	"fmt"
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
		s := &Sorter{}
		for _, k := range keys {
			off := len(s.arena)
			s.arena = append(s.arena, k...)
			s.spans = append(s.spans, span{prefix: keyPrefix(s.arena[off:]), off: uint32(off), n: uint32(len(k))})
		}
		s.sortChunk()
		got := make([]string, len(s.spans))
		for i, sp := range s.spans {
			got[i] = string(s.keyAt(sp))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: sorted %q, want %q", round, got, want)
		}
	}
}
