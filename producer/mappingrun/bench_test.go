package mappingrun

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source/amplitude"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
)

// BenchmarkAmplitudePull times a first sync of a cohort from the fake
// Amplitude API (export, status polled once, a 302 to a presigned gzip
// file streamed through the snapshot sort) until Redis holds every member,
// beside the same CSV read from a local file, in the same world and in
// alternating order. The ratio amplitude/csv is the figure (issue 8: at
// most 1.5). Rows: COHORTSYNC_BENCH_ROWS, default 2,000,000.
//
//	go test -run '^$' -bench AmplitudePull -benchtime 1x -count 3 -timeout 60m ./producer/mappingrun/
//
// (-benchtime 1x: Go runs a benchmark once with b.N = 1 before any larger
// b.N, and each run here is two syncs of millions of members.)
func BenchmarkAmplitudePull(b *testing.B) {
	rows := 2_000_000
	if v := os.Getenv("COHORTSYNC_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("COHORTSYNC_BENCH_ROWS=%q: want a positive integer", v)
		}
		rows = n
	}
	w := newWorldFor(b, testenv.Redis(b), 30*time.Minute)
	// Millions of keys take testenv.DropPrefix's cleanup longer than its
	// minute on a small machine: delete them first, with more time.
	b.Cleanup(func() {
		for _, d := range w.dests {
			dropKeys(b, w.rdb, d.Prefix()+":*")
		}
	})
	cohort := amplitudetest.Cohort{ID: "big", Name: "Everyone", Generate: rows}
	path := filepath.Join(b.TempDir(), "big.csv")
	writeExport(b, path, cohort)
	srv := amplitudetest.New(b, amplitudetest.Config{Gzip: true, Pending: 1, Cohorts: []amplitudetest.Cohort{cohort}})
	env := map[string]string{"AMP_KEY": srv.APIKey(), "AMP_SECRET": srv.SecretKey()}
	dests := projectDests{w.dests, map[string]catalog.AmplitudeProject{"main": {Name: "main", BaseURL: srv.URL,
		APIKey: catalog.SecretRef{Env: "AMP_KEY"}, SecretKey: catalog.SecretRef{Env: "AMP_SECRET"}}}}
	r := w.runnerWith(b.TempDir(), dests, func(c *Config) {
		c.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
		c.Amplitude = amplitude.Options{PollInterval: 100 * time.Millisecond}
	})
	// A small sync first: the topic's partitions, the consumer's group and
	// the connections are ready before the clock starts.
	w.run(r, mapping(csvFile(b, "warm-up"), "production", "staging"))
	timed := func(m catalog.Mapping) time.Duration {
		start := time.Now()
		res := w.run(r, m) // returns once the consumer applied every event
		if res[0].Summary.Added != int64(rows) {
			b.Fatalf("%s: %d added, want %d", m.Segment, res[0].Summary.Added, rows)
		}
		return time.Since(start)
	}
	var csvTime, ampTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Each into a destination of its own, so that both create every
		// member's keys (a second segment of the same members in one
		// destination only adds to existing sets, and is faster).
		csvM := mapping(path, "production")
		csvM.Segment = fmt.Sprintf("bench-csv-%d", i)
		ampM := ampMapping("big", "", "staging")
		ampM.Segment = fmt.Sprintf("bench-amp-%d", i)
		benchRuns++
		if benchRuns%2 == 0 {
			csvTime += timed(csvM)
			ampTime += timed(ampM)
		} else {
			ampTime += timed(ampM)
			csvTime += timed(csvM)
		}
	}
	n := float64(b.N)
	b.ReportMetric(ampTime.Seconds()/csvTime.Seconds(), "amplitude/csv")
	b.ReportMetric(float64(rows)*n/csvTime.Seconds(), "csv-members/s")
	b.ReportMetric(float64(rows)*n/ampTime.Seconds(), "amplitude-members/s")
	b.Logf("%d rows, %d runs each: local CSV %v per run, Amplitude pull %v per run, ratio %.2f",
		rows, b.N, (csvTime / time.Duration(b.N)).Round(time.Millisecond), (ampTime / time.Duration(b.N)).Round(time.Millisecond),
		ampTime.Seconds()/csvTime.Seconds())
}

// dropKeys unlinks every key matching pattern (on a standalone Redis, as
// testenv.Redis gives), within 10 minutes.
func dropKeys(b *testing.B, rdb redis.UniversalClient, pattern string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // the benchmark's contexts are done
	defer cancel()
	iter := rdb.Scan(ctx, 0, pattern, 10000).Iterator()
	pipe := rdb.Pipeline()
	for iter.Next(ctx) {
		pipe.Unlink(ctx, iter.Val())
		if pipe.Len() == 10000 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Errorf("unlink %s: %v", pattern, err)
				return
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && iter.Err() == nil {
		b.Errorf("unlink %s: %v", pattern, err)
	}
	if err := iter.Err(); err != nil {
		b.Errorf("scan %s: %v", pattern, err)
	}
}

// benchRuns alternates which source syncs first across the runs of
// -count, as b.N is 1 in each.
var benchRuns int

func writeExport(b *testing.B, path string, c amplitudetest.Cohort) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = amplitudetest.WriteExport(bw, c, nil)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
}
