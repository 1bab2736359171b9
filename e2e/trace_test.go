package e2e

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestSyncSpanLinkedFromConsumerSpan: the tracer provider and propagator
// the process builds once reach both parts; the sync's span and the
// consumer's "apply batch" spans reach one in-process exporter, and every
// batch of the run's events links to the sync's span (not a parent: a
// batch mixes runs).
func TestSyncSpanLinkedFromConsumerSpan(t *testing.T) {
	kf := kafkaxtest.Kafka(t)
	rb := testenv.Redis(t)
	ctx := testenv.Context(t, 2*time.Minute)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) })
	prop := telemetry.NewPropagator(propagation.TraceContext{})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	topic, prefix := testenv.Name(t), testenv.Name(t)
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = topic, t.TempDir(), 2
	pcfg.Logger, pcfg.TracerProvider, pcfg.Propagator = quiet, tp, prop
	if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
		t.Fatal(err)
	}
	src, err := csvfile.Open("../testdata/cohort-day1.csv", csvfile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sum, err := producer.Sync(ctx, pcfg, kf, producer.SyncRequest{Env: "production", Segment: segment, Generation: 1, Input: src})
	if err != nil {
		t.Fatal(err)
	}

	cons, err := consumer.New(consumer.Config{
		Topic: topic, GroupID: testenv.Name(t), RedisPrefix: prefix,
		SyncInterval: 100 * time.Millisecond, Logger: quiet, TracerProvider: tp, Propagator: prop,
	}, rb.Client, kf)
	if err != nil {
		t.Fatal(err)
	}
	testenv.DropPrefix(t, rb.Client, prefix)
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = cons.Run(cctx) })
	if err := cons.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp: %v", err)
	}
	stop()
	wg.Wait() // every batch span has ended
	if runErr != nil {
		t.Fatalf("consumer.Run: %v", runErr)
	}

	var (
		syncSpan trace.SpanContext
		batches  int
		linked   int64 // events applied by batches linking to the sync
	)
	spans := exp.GetSpans()
	for _, s := range spans {
		if s.Name == "sync" {
			if syncSpan.IsValid() {
				t.Fatal("two sync spans")
			}
			syncSpan = s.SpanContext
		}
	}
	if !syncSpan.IsValid() {
		t.Fatalf("no sync span among %d exported", len(spans))
	}
	for _, s := range spans {
		if s.Name != "apply batch" {
			continue
		}
		batches++
		if s.Parent.IsValid() {
			t.Errorf("apply batch span has parent %v: a batch links to its runs, it is no child of one", s.Parent)
		}
		for _, l := range s.Links {
			if l.SpanContext.TraceID() == syncSpan.TraceID() && l.SpanContext.SpanID() == syncSpan.SpanID() {
				for _, a := range s.Attributes {
					if a.Key == "cohortsync.applied" {
						linked += a.Value.AsInt64()
					}
				}
			}
		}
	}
	if batches == 0 {
		t.Fatal("no apply batch span exported")
	}
	if linked != sum.Added {
		t.Errorf("batches linking to the sync span applied %d events, want all %d of the run", linked, sum.Added)
	}
}
