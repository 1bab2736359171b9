package producer

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

const benchEvents = 200_000

// BenchmarkSync is a whole sync of a 200k-row CSV into a new segment
// generation (all adds): CSV parsing, sort, diff, publish, commit.
func BenchmarkSync(b *testing.B) {
	cfg, kf := testConfig(b)
	cfg.TopicPartitions = DefaultConfig().TopicPartitions
	var csv strings.Builder
	csv.WriteString("amplitude_id,user_id,country\n")
	for i := range benchEvents {
		fmt.Fprintf(&csv, "%d,user-%08d@example.com,US\n", 1_000_000+i, i)
	}
	data := csv.String()
	ctx := testenv.Context(b, 10*time.Minute)
	gen := 0
	b.ResetTimer()
	for b.Loop() {
		gen++
		sum, err := Sync(ctx, cfg, kf, SyncRequest{Env: "production", Segment: "bench", Generation: gen,
			Input: csvfile.New(strings.NewReader(data), "bench.csv", csvfile.Options{})})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Added != benchEvents {
			b.Fatalf("added %d", sum.Added)
		}
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
