package snapshot

import (
	"context"
	"strconv"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// countPub acknowledges every change at once and only counts them.
type countPub struct{ n int64 }

func (p *countPub) Send(_ context.Context, batch []Change) error {
	p.n += int64(len(batch))
	return nil
}

func (*countPub) Wait(context.Context) error { return nil }

// churnFill adds the n members of export v (0 or 1) of a cohort whose two
// exports differ by 1% of n (n/200 left, n/200 joined), in a scattered
// order, shaped like the 10M file of BENCHMARKS.md: user-<id>@example.com
// with ids of ten digits, so every key shares its first 8 bytes.
func churnFill(n, v int) func(add func(string) error) error {
	return func(add func(string) error) error {
		const prime = 1_000_003
		buf := make([]byte, 0, 64)
		for i := range n {
			id := (i * prime) % n
			if v == 1 && id < n/200 {
				id += n // joined in export 1 in place of the left ones
			}
			buf = append(strconv.AppendInt(append(buf[:0], "user-"...), 1_000_000_000+int64(id), 10), "@example.com"...)
			if err := add(string(buf)); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkStoreSync times Store.Sync of n keys (default 2M,
// COHORTSYNC_BENCH_KEYS to scale) with a publisher that acknowledges at
// once, so it is the producer's sort, diff and commit without Kafka or CSV:
// "first" into an empty segment (all adds), "resync1pct" against a committed
// snapshot that differs by 1%. It reports the high-water marks of the heap
// and of the process RSS during the sync. Run with
//
//	go test ./pkg/snapshot -run '^$' -bench StoreSync -benchtime 2x
func BenchmarkStoreSync(b *testing.B) {
	n := testenv.BenchKeys(b, 2_000_000)
	ctx := context.Background()
	sync := func(b *testing.B, s *Store, run string, v int) (SyncResult, peakMem) {
		var res SyncResult
		pub := &countPub{}
		peak := measurePeak(b, func() {
			var err error
			res, err = s.Sync(ctx, run, churnFill(n, v), func(*Phase) (Publisher, error) { return pub, nil }, SyncOptions{})
			if err != nil {
				b.Fatal(err)
			}
		})
		if res.Sort.Unique != int64(n) || pub.n != res.Phase.Changes() {
			b.Fatalf("sync of %d keys: %+v, %d changes published", n, res, pub.n)
		}
		return res, peak
	}
	b.Run("first", func(b *testing.B) {
		var peak peakMem
		gen := 0
		for b.Loop() {
			gen++
			id := testID
			id.Generation = gen
			s, err := Open(ctx, b.TempDir(), id)
			if err != nil {
				b.Fatal(err)
			}
			var res SyncResult
			res, peak = sync(b, s, "run-1", 0)
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if res.Phase.Added != int64(n) {
				b.Fatalf("first sync added %d of %d", res.Phase.Added, n)
			}
		}
		peak.report(b)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
	b.Run("resync1pct", func(b *testing.B) {
		s, err := Open(ctx, b.TempDir(), testID)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Close() }() // the benchmark's own store
		sync(b, s, "run-0", 0)
		var peak peakMem
		v, iter := 0, 0
		b.ResetTimer()
		for b.Loop() {
			v, iter = 1-v, iter+1
			var res SyncResult
			res, peak = sync(b, s, "run-"+strconv.Itoa(iter), v)
			if res.Phase.Added != int64(n/200) || res.Phase.Removed != int64(n/200) {
				b.Fatalf("re-sync: %+v, want %d each way", res.Phase.DiffStats, n/200)
			}
		}
		peak.report(b)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	})
}
