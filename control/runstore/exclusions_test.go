package runstore

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source"
)

func exclusion(i int64) source.Exclusion {
	e := source.Exclusion{Row: i, Line: i + 1, Value: fmt.Sprintf("user-%d", i), Reason: "empty_id"}
	switch i % 3 {
	case 1: // no line (a push member), and a value CSV must quote
		e.Line, e.Value, e.Reason = 0, fmt.Sprintf("a \"quoted\",\nvalue %d", i), "missing_id"
	case 2:
		e.Value = ""
	}
	return e
}

// TestExclusions: a run's exclusions come back in order and intact (CSV
// quoting included) through blocks and pipelines, past the limit they are
// counted and left out, a run without any gives the header alone, and the
// report expires with the run.
func TestExclusions(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			s, err := New(b.Client, Config{Prefix: prefix, Retention: time.Hour, MaxExclusions: 50_000})
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name      string
				rows      int64
				wantKept  int64
				wantLeft  int64
				wantBlock bool
			}{
				{name: "none", rows: 0},
				{name: "a few", rows: 3, wantKept: 3, wantBlock: true},
				{name: "many blocks and pipelines", rows: 40_000, wantKept: 40_000, wantBlock: true},
				{name: "over the limit", rows: 60_001, wantKept: 50_000, wantLeft: 10_001, wantBlock: true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					run := "20261207T120000Z-" + strings.ReplaceAll(tc.name, " ", "-")
					w := s.NewExclusionWriter(run, "production")
					var want bytes.Buffer
					cw := csv.NewWriter(&want)
					_ = cw.Write(ExclusionsHeader)
					for i := int64(1); i <= tc.rows; i++ {
						e := exclusion(i)
						w.Add(ctx, e)
						if i <= tc.wantKept {
							line := ""
							if e.Line > 0 {
								line = fmt.Sprint(e.Line)
							}
							_ = cw.Write([]string{fmt.Sprint(e.Row), line, e.Value, e.Reason})
						}
					}
					cw.Flush()
					kept, err := w.Close(ctx)
					if err != nil || kept != (ExclusionsKept{Kept: tc.wantKept, LeftOut: tc.wantLeft}) {
						t.Fatalf("Close = %+v, %v; want %d kept, %d left out", kept, err, tc.wantKept, tc.wantLeft)
					}
					if again, err := w.Close(ctx); err != nil || again != kept {
						t.Fatalf("second Close = %+v, %v", again, err)
					}
					var got bytes.Buffer
					if err := s.WriteExclusions(ctx, run, "production", &got); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Fatalf("report of %d bytes differs from the %d written (first 200: %q)", got.Len(), want.Len(), got.String()[:min(200, got.Len())])
					}
					key := s.exclusionsKey(run, "production")
					n, err := b.Client.Exists(ctx, key).Result()
					if err != nil || (n == 1) != tc.wantBlock {
						t.Fatalf("key exists %d, %v; want %v", n, err, tc.wantBlock)
					}
					if tc.wantBlock {
						ttl, err := b.Client.PTTL(ctx, key).Result()
						if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
							t.Fatalf("report TTL %v, %v; want the retention, 1h", ttl, err)
						}
						if l, _ := b.Client.LLen(ctx, key).Result(); l > tc.wantKept/100+1 {
							t.Fatalf("%d list elements for %d rows: want blocks of rows", l, tc.wantKept)
						}
					}
				})
			}
			if b.Miniredis != nil {
				b.Miniredis.FastForward(time.Hour + time.Second)
				var got bytes.Buffer
				if err := s.WriteExclusions(ctx, "20261207T120000Z-a-few", "production", &got); err != nil || got.String() != "row,line,value,reason\n" {
					t.Fatalf("after the retention: %q, %v; want the header alone", got.String(), err)
				}
			}
		})
	}
}

// TestExclusionsStoreDown: a store that fails does not fail the run: Add
// goes on without a call per row, Close says that nothing was kept, and
// why.
func TestExclusionsStoreDown(t *testing.T) {
	ctx := t.Context()
	rdb := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := New(rdb, Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := s.NewExclusionWriter("20261207T120000Z-down", "production")
	for i := range int64(100_000) {
		w.Add(ctx, exclusion(i+1))
	}
	kept, err := w.Close(ctx)
	if err == nil || kept.Kept != 0 || kept.Error == "" || !strings.Contains(kept.Error, "store exclusions") {
		t.Fatalf("Close = %+v, %v; want nothing kept, and why", kept, err)
	}
}

// BenchmarkExclusionWriter measures what keeping a run's exclusions costs
// the run: rows per second through an ExclusionWriter into Redis (blocks
// and pipelines included), 100,000 rows per op.
//
//	COHORTSYNC_INTEGRATION=1 go test -run '^$' -bench ExclusionWriter -benchtime 10x ./control/runstore/
func BenchmarkExclusionWriter(b *testing.B) {
	rb := testenv.Redis(b)
	prefix := testenv.Name(b) + ":"
	testenv.DropPrefix(b, rb.Client, testenv.Name(b))
	s, err := New(rb.Client, Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	const rows = 100_000
	es := make([]source.Exclusion, rows)
	for i := range es {
		es[i] = source.Exclusion{Row: int64(i + 1), Line: int64(i + 2), Value: fmt.Sprintf("user-%08d@example.com", i), Reason: "key_too_long"}
	}
	ctx := b.Context()
	b.ResetTimer()
	for i := range b.N {
		w := s.NewExclusionWriter(fmt.Sprintf("20261207T120000Z-%08d", i), "production")
		for _, e := range es {
			w.Add(ctx, e)
		}
		if kept, err := w.Close(ctx); err != nil || kept.Kept != rows {
			b.Fatalf("kept %+v, %v", kept, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}
