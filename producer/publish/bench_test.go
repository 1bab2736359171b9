package publish_test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/publish/publishtest"
	"github.com/cohortsync/cohortsync/schema"
)

const benchEvents = 200_000

var benchOrigin = publish.Origin{
	Segment: snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"},
	Run:     "bench", Source: "csv",
}

func benchChanges() []snapshot.Change {
	cs := make([]snapshot.Change, benchEvents)
	for i := range cs {
		cs[i] = snapshot.Change{Op: schema.OpAdd, Key: []byte(fmt.Sprintf("user-%08d@example.com", i)), Seq: uint64(i + 1)}
	}
	return cs
}

// benchSetup returns the config of a benchmark's topic, created.
func benchSetup(b *testing.B, compression string) (publish.Config, *kafkax.Factory) {
	cfg, kf := publishtest.Config(b)
	cfg.Compression = compression
	ctx := testenv.Context(b, time.Minute)
	if err := publish.EnsureTopics(ctx, cfg, kf); err != nil {
		b.Fatal(err)
	}
	return cfg, kf
}

// benchMessages encodes changes as schema.Event.Message does, which the
// Stream's own encoding matches byte for byte (TestEncodeMatchesSchema).
func benchMessages(changes []snapshot.Change) []kafka.Message {
	o := benchOrigin
	now := time.Now()
	msgs := make([]kafka.Message, len(changes))
	for i, c := range changes {
		ev := schema.Event{Env: o.Segment.Env, Segment: o.Segment.Segment, Generation: o.Segment.Generation,
			ContextKind: o.Segment.ContextKind, ContextKey: string(c.Key), Op: c.Op, Run: o.Run, Seq: c.Seq, Source: o.Source, Time: now}
		msgs[i] = ev.Message()
	}
	return msgs
}

var benchCompressions = []string{"none", "lz4", "snappy"}

// BenchmarkRawProduce is the reference: kafka-go WriteMessages of
// pre-encoded messages of the same size as the producer's, with the same
// writer settings, SendBatch messages per call and InFlight calls at once.
func BenchmarkRawProduce(b *testing.B) {
	for _, comp := range benchCompressions {
		b.Run("compression="+comp, func(b *testing.B) {
			cfg, kf := benchSetup(b, comp)
			w := publish.NewWriter(cfg, kf)
			b.Cleanup(func() { w.Close() })
			msgs := benchMessages(benchChanges())
			ctx := testenv.Context(b, 10*time.Minute)
			cpu0 := processCPU(b)
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
			reportRate(b, cpu0)
		})
	}
}

// BenchmarkPublish is the producer's publishing path for the same events:
// encoding from snapshot changes, Send in SendBatch slices, Wait for acks.
func BenchmarkPublish(b *testing.B) {
	for _, comp := range benchCompressions {
		b.Run("compression="+comp, func(b *testing.B) {
			cfg, kf := benchSetup(b, comp)
			pub, err := publish.New(cfg, kf)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { pub.Close() })
			changes := benchChanges()
			ctx := testenv.Context(b, 10*time.Minute)
			cpu0 := processCPU(b)
			b.ResetTimer()
			for b.Loop() {
				p, err := pub.Stream(ctx, benchOrigin)
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
			reportRate(b, cpu0)
		})
	}
}

// reportRate reports events/s and the CPU the process spent per event since
// cpu0. The machine's other load (the broker shares its cores) moves
// events/s much more than the CPU per event, which is what the producer
// costs a first sync that shares the machine with the consumer.
func reportRate(b *testing.B, cpu0 time.Duration) {
	events := float64(benchEvents) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/events, "cpu-ns/event")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
