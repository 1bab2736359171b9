package producer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

const benchEvents = 200_000

var benchID = snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}

func benchChanges() []snapshot.Change {
	cs := make([]snapshot.Change, benchEvents)
	for i := range cs {
		cs[i] = snapshot.Change{Op: schema.OpAdd, Key: []byte(fmt.Sprintf("user-%08d@example.com", i)), Seq: uint64(i + 1)}
	}
	return cs
}

func benchSetup(b *testing.B, compression string) (Config, *kafka.Writer) {
	cfg := testConfig(b)
	cfg.TopicPartitions = DefaultConfig().TopicPartitions
	cfg.Compression = compression
	ctx := testenv.Context(b, time.Minute)
	if err := EnsureTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	w := NewWriter(cfg)
	b.Cleanup(func() { w.Close() })
	return cfg, w
}

var benchCompressions = []string{"none", "lz4", "snappy"}

// BenchmarkRawProduce is the reference: kafka-go WriteMessages of
// pre-encoded messages of the same size as the producer's, with the same
// writer settings, SendBatch messages per call and InFlight calls at once.
func BenchmarkRawProduce(b *testing.B) {
	for _, comp := range benchCompressions {
		b.Run("compression="+comp, func(b *testing.B) {
			cfg, w := benchSetup(b, comp)
			p, err := newPublisher(context.Background(), w, cfg, benchID, "bench", "csv")
			if err != nil {
				b.Fatal(err)
			}
			msgs, err := p.encode(benchChanges())
			if err != nil {
				b.Fatal(err)
			}
			ctx := testenv.Context(b, 10*time.Minute)
			b.ResetTimer()
			for b.Loop() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				var first error
				slots := make(chan struct{}, cfg.InFlight)
				for i := 0; i < len(msgs); i += cfg.SendBatch {
					chunk := msgs[i:min(i+cfg.SendBatch, len(msgs))]
					slots <- struct{}{}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-slots }()
						if err := w.WriteMessages(ctx, chunk...); err != nil {
							mu.Lock()
							first = err
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if first != nil {
					b.Fatal(first)
				}
			}
			b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPublish is the producer's publishing path for the same events:
// encoding from snapshot changes, Send in SendBatch slices, Wait for acks.
func BenchmarkPublish(b *testing.B) {
	for _, comp := range benchCompressions {
		b.Run("compression="+comp, func(b *testing.B) {
			cfg, w := benchSetup(b, comp)
			changes := benchChanges()
			ctx := testenv.Context(b, 10*time.Minute)
			b.ResetTimer()
			for b.Loop() {
				p, err := newPublisher(ctx, w, cfg, benchID, "bench", "csv")
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < len(changes); i += cfg.SendBatch {
					if err := p.Send(ctx, changes[i:min(i+cfg.SendBatch, len(changes))]); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.Wait(ctx); err != nil {
					b.Fatal(err)
				}
				if p.Acked() != benchEvents {
					b.Fatalf("acked %d of %d", p.Acked(), benchEvents)
				}
			}
			b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkSync is a whole sync of a 200k-row CSV into a new segment
// generation (all adds): CSV parsing, sort, diff, publish, commit.
func BenchmarkSync(b *testing.B) {
	cfg := testConfig(b)
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
		sum, err := Sync(ctx, cfg, SyncRequest{Env: "production", Segment: "bench", Generation: gen,
			Input: strings.NewReader(data)})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Added != benchEvents {
			b.Fatalf("added %d", sum.Added)
		}
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
