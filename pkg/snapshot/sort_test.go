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
// the Go heap (sampled every 5 ms) and of the process RSS (VmHWM: run this
// benchmark alone for the number to mean this sort). Run with
//
//	go test ./pkg/snapshot -run '^$' -bench SortSnapshot10M -benchtime 1x
func BenchmarkSortSnapshot10MPeakMemory(b *testing.B) {
	const n = 10_000_000
	for b.Loop() {
		runtime.GC()
		stop := make(chan struct{})
		var peak uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		st := sortKeys(b, n, DefaultChunkBytes)
		close(stop)
		wg.Wait()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(st.Runs), "runs")
		if hwm, err := peakRSS(); err == nil {
			b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
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
