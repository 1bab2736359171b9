package amplitude

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// BenchmarkRead reads a 2M-row export through a Source (export, one
// status poll, a 302 to a presigned gzip file) beside the same CSV read
// from a local file by csvfile, each into a no-op emit: the cost of the
// source alone, without the sync behind it.
//
//	go test -run '^$' -bench Read -benchtime 3x ./producer/source/amplitude/
func BenchmarkRead(b *testing.B) {
	const rows = 2_000_000
	cohort := amplitudetest.Cohort{ID: "big", Generate: rows}
	path := filepath.Join(b.TempDir(), "big.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := amplitudetest.WriteExport(bw, cohort, nil); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  amplitudetest.Config
	}{{"gzip", amplitudetest.Config{Gzip: true}}, {"plain", amplitudetest.Config{}}} {
		b.Run(tc.name, func(b *testing.B) {
			tc.cfg.Pending, tc.cfg.Cohorts = 1, []amplitudetest.Cohort{cohort}
			srv := amplitudetest.New(b, tc.cfg)
			c, err := New(srv.URL, Credentials{APIKey: srv.APIKey(), SecretKey: srv.SecretKey()}, Options{PollInterval: 10 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			read := func(s source.Source) time.Duration {
				start := time.Now()
				st, err := s.Read(context.Background(), func(string) error { return nil }, nil)
				if err != nil || st.Keys != rows {
					b.Fatalf("%s: %d keys, %v", s.Name(), st.Keys, err)
				}
				return time.Since(start)
			}
			var amp, local time.Duration
			for range b.N {
				amp += read(c.Source("big", ""))
				fs, err := csvfile.Open(path, csvfile.Options{})
				if err != nil {
					b.Fatal(err)
				}
				local += read(fs)
				if err := fs.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(amp.Seconds()/local.Seconds(), "amplitude/csv")
			b.ReportMetric(rows*float64(b.N)/amp.Seconds(), "amplitude-rows/s")
			b.ReportMetric(rows*float64(b.N)/local.Seconds(), "csv-rows/s")
		})
	}
}
