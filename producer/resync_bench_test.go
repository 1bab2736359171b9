package producer

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// writeCohortCSV writes an export of the members ids (user-<id>@example.com)
// in a scattered order, as exports come, like the 10M file of BENCHMARKS.md.
func writeCohortCSV(b *testing.B, path string, ids []int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString("amplitude_id,user_id,country\n") // errors surface at Flush
	for _, id := range ids {
		fmt.Fprintf(w, "%d,user-%d@example.com,US\n", id, id)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// churnCohorts returns the ids of two exports of n members differing by 1%
// of n: n/200 members left, n/200 joined. Ids are scattered by a
// multiplicative permutation so the input is far from sorted.
func churnCohorts(n int) (old, next []int) {
	const prime = 1_000_003
	old, next = make([]int, n), make([]int, n)
	for i := range n {
		id := 1_000_000_000 + (i*prime)%(n+n/200)
		old[i] = id
		next[i] = id
	}
	// next drops the ids of old's first n/200 rows and takes the n/200 ids
	// old never had in their places.
	seen := make([]bool, n+n/200)
	for _, id := range old {
		seen[id-1_000_000_000] = true
	}
	j := 0
	for k := 0; j < n/200; k++ {
		if !seen[k] {
			next[j] = 1_000_000_000 + k
			j++
		}
	}
	return old, next
}

// BenchmarkResync1pct times a re-sync of an n-member segment (default 2M,
// COHORTSYNC_BENCH_KEYS to scale) whose export changed by 1% (n/200 left,
// n/200 joined): CSV read, sort, diff against the committed snapshot,
// publish the 1% to the test's broker, commit. Each iteration alternates
// the producer with its reference, `LC_ALL=C sort` of the new export then
// `LC_ALL=C comm -3` against the previous export already sorted (as the
// producer has its committed snapshot), and the exports swap roles between
// iterations so every run is a 1% re-sync. ratio is producer time over
// reference time, summed over the iterations. Run with
//
//	go test ./producer -run '^$' -bench Resync1pct -benchtime 2x
//
// At full size, set the real broker's variables: the untimed first sync
// publishes every member, which the in-process fake broker would hold in
// this process's memory.
func BenchmarkResync1pct(b *testing.B) {
	for _, tool := range []string{"sort", "comm"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("the reference needs %s: %v", tool, err)
		}
	}
	n := testenv.BenchKeys(b, 2_000_000)
	cfg, kf := testConfig(b)
	dir := b.TempDir()
	oldIDs, nextIDs := churnCohorts(n)
	csvs := [2]string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")}
	writeCohortCSV(b, csvs[0], oldIDs)
	writeCohortCSV(b, csvs[1], nextIDs)
	sorted := [2]string{filepath.Join(dir, "a.sorted"), filepath.Join(dir, "b.sorted")}
	ctx := testenv.Context(b, 30*time.Minute)
	run := func(i int, first bool) {
		src, err := csvfile.Open(csvs[i], csvfile.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = src.Close() }()
		sum, err := Sync(ctx, cfg, kf, SyncRequest{Env: "production", Segment: "resync", Generation: 1, Input: src})
		if err != nil {
			b.Fatal(err)
		}
		want := int64(n) / 200
		if first {
			want = 0 // removed; and added n
		}
		if sum.Keys != int64(n) || sum.Removed != want || (!first && sum.Added != want) {
			b.Fatalf("sync of %s: keys %d added %d removed %d, want %d keys and %d removed", csvs[i], sum.Keys, sum.Added, sum.Removed, n, want)
		}
	}
	reference := func(i int) {
		sortCmd := exec.CommandContext(ctx, "sort", "-o", sorted[i], csvs[i])
		sortCmd.Env = append(os.Environ(), "LC_ALL=C", "TMPDIR="+dir)
		if out, err := sortCmd.CombinedOutput(); err != nil {
			b.Fatalf("sort: %v: %s", err, out)
		}
		prev := sorted[1-i]
		if _, err := os.Stat(prev); err != nil {
			return // the first export: nothing to compare with yet
		}
		comm := exec.CommandContext(ctx, "comm", "-3", prev, sorted[i])
		comm.Env = append(os.Environ(), "LC_ALL=C")
		out, err := os.Create(filepath.Join(dir, "comm.out"))
		if err != nil {
			b.Fatal(err)
		}
		comm.Stdout = out
		err = comm.Run()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatalf("comm: %v", err)
		}
	}
	// The first sync of the segment and the first sort are not timed: both
	// sides then start each iteration with the previous export sorted.
	run(0, true)
	reference(0)
	var subject, ref, subjectCPU, refCPU time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i = 1 - i
		start, cpu := time.Now(), cpuTime(b, syscall.RUSAGE_SELF)
		run(i, false)
		subject += time.Since(start)
		subjectCPU += cpuTime(b, syscall.RUSAGE_SELF) - cpu
		start, cpu = time.Now(), cpuTime(b, syscall.RUSAGE_CHILDREN)
		reference(i)
		ref += time.Since(start)
		refCPU += cpuTime(b, syscall.RUSAGE_CHILDREN) - cpu
	}
	b.ReportMetric(subject.Seconds()/float64(b.N), "resync-s")
	b.ReportMetric(ref.Seconds()/float64(b.N), "sort+comm-s")
	b.ReportMetric(subject.Seconds()/ref.Seconds(), "ratio")
	// CPU time moves less than elapsed time on a shared machine; the
	// producer's includes the in-process broker of the test's fake Kafka.
	b.ReportMetric(subjectCPU.Seconds()/refCPU.Seconds(), "cpu-ratio")
}

// cpuTime is the user + system time of who (this process, or its waited-for
// children).
func cpuTime(b *testing.B, who int) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
