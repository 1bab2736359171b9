package consumer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/schema"
)

// recordSpans returns a tracer provider recording every span, shut down
// when the test ends, and its recorder.
func recordSpans(t *testing.T) (trace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(ctx); err != nil {
			t.Errorf("shut down tracer provider: %v", err)
		}
	})
	return tp, rec
}

// remote is a producer's span context, as a sync run would have.
func remote(traceByte, spanByte byte) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x0c, 0x5b, traceByte, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13},
		SpanID:     trace.SpanID{0x51, spanByte, 1, 2, 3, 4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
}

// tracedMessage is an event message carrying sc in its headers as the
// producer writes it with the W3C propagator (no trace headers for an
// invalid sc).
func tracedMessage(t *testing.T, sc trace.SpanContext, key string) kafka.Message {
	t.Helper()
	e := ev("staging", "traced", 1, key, schema.OpAdd, 1)
	m := e.Message()
	if sc.IsValid() {
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
		propagation.TraceContext{}.Inject(ctx, schema.HeaderCarrier{Headers: &m.Headers})
		if (schema.HeaderCarrier{Headers: &m.Headers}).Get("traceparent") == "" {
			t.Fatal("the propagator wrote no traceparent header")
		}
	}
	return m
}

func linkIDs(links []trace.Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.SpanContext.TraceID().String() + "/" + l.SpanContext.SpanID().String()
	}
	return out
}

func TestTraceLinks(t *testing.T) {
	a, b, c := remote(1, 1), remote(2, 2), remote(3, 3)
	aOtherSpan := remote(1, 9)
	id := func(sc trace.SpanContext) string { return sc.TraceID().String() + "/" + sc.SpanID().String() }
	local := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled,
	}))
	for _, tc := range []struct {
		name       string
		propagator propagation.TextMapPropagator
		none       bool // no extractor at all
		ctx        context.Context
		msgs       []trace.SpanContext // invalid: no trace headers
		limit      int
		malformed  bool // the first message carries a malformed traceparent
		want       []string
	}{
		{name: "no propagator configured: no links", none: true, msgs: []trace.SpanContext{a, b}, want: nil},
		{name: "a propagator reading no fields: no links", propagator: propagation.NewCompositeTextMapPropagator(),
			msgs: []trace.SpanContext{a, b}, want: nil},
		{name: "one sync run's messages: one link", msgs: []trace.SpanContext{a, a, a, a}, want: []string{id(a)}},
		{name: "interleaved runs: each linked once, in batch order", msgs: []trace.SpanContext{b, a, b, a, c, a},
			want: []string{id(b), id(a), id(c)}},
		{name: "two spans of one trace are two links", msgs: []trace.SpanContext{a, aOtherSpan}, want: []string{id(a), id(aOtherSpan)}},
		{name: "messages without trace headers are skipped", msgs: []trace.SpanContext{{}, a, {}, {}, b},
			want: []string{id(a), id(b)}},
		{name: "a malformed traceparent is skipped", malformed: true, msgs: []trace.SpanContext{a, b}, want: []string{id(b)}},
		{name: "the span context of ctx is never a link", ctx: local, msgs: []trace.SpanContext{{}, {}}, want: nil},
		{name: "capped at the limit", limit: 2, msgs: []trace.SpanContext{a, b, c}, want: []string{id(a), id(b)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.propagator
			if p == nil {
				p = propagation.TraceContext{}
			}
			var ex TraceExtractor = telemetry.NewPropagator(p)
			if tc.none {
				ex = nil
			}
			batch := make([]item, len(tc.msgs))
			for i, sc := range tc.msgs {
				batch[i].msg = tracedMessage(t, sc, fmt.Sprintf("user-%d", i))
			}
			if tc.malformed {
				schema.HeaderCarrier{Headers: &batch[0].msg.Headers}.Set("traceparent", "00-not-a-trace-01")
			}
			ctx, limit := tc.ctx, tc.limit
			if ctx == nil {
				ctx = context.Background()
			}
			if limit == 0 {
				limit = maxLinks
			}
			got := linkIDs(traceLinks(ctx, ex, batch, limit))
			if !slices.Equal(got, tc.want) {
				t.Errorf("links %q, want %q", got, tc.want)
			}
		})
	}
}

func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// TestApplyBatchSpanLinksToProducerTraces runs the consumer over messages
// whose headers carry the producers' W3C trace context and checks the recorded "apply batch" spans link to exactly
// those producer spans and count what they applied.
func TestApplyBatchSpanLinksToProducerTraces(t *testing.T) {
	tp, rec := recordSpans(t)
	forEachBackend(t, func(t *testing.T, brokers []string, onBroker bool, rdb redis.UniversalClient) {
		ke := newKafka(t, brokers, onBroker, 2)
		cfg := testConfig(t, ke)
		cfg.TracerProvider, cfg.Propagator = tp, telemetry.NewPropagator(propagation.TraceContext{})
		runA, runB := remote(0xa, 0xa), remote(0xb, 0xb)
		var msgs []kafka.Message
		for i := range 6 {
			msgs = append(msgs, tracedMessage(t, runA, fmt.Sprintf("a-%d", i)))
		}
		for i := range 4 {
			msgs = append(msgs, tracedMessage(t, runB, fmt.Sprintf("b-%d", i)))
		}
		msgs = append(msgs, tracedMessage(t, trace.SpanContext{}, "untraced"))
		ke.produce(t, msgs...)

		c := start(t, ke.kf, cfg, rdb)
		c.waitCaughtUp(t)
		if err := c.stop(); err != nil { // every batch span has ended
			t.Fatal(err)
		}

		var (
			spans   int
			applied int64
			links   = map[string]bool{}
		)
		for _, s := range rec.Ended() {
			if v, ok := spanAttr(s, "messaging.destination.name"); s.Name() != "apply batch" || !ok || v.AsString() != ke.topic {
				continue // another test's span
			}
			spans++
			if s.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("span kind %v, want consumer", s.SpanKind())
			}
			if v, ok := spanAttr(s, "messaging.batch.message_count"); !ok || v.AsInt64() < 1 {
				t.Errorf("span without a batch size: %v", s.Attributes())
			}
			if _, ok := spanAttr(s, "cohortsync.dead_lettered"); !ok {
				t.Errorf("span without a dead-lettered count: %v", s.Attributes())
			}
			v, _ := spanAttr(s, "cohortsync.applied")
			applied += v.AsInt64()
			ids := make([]trace.Link, 0, len(s.Links()))
			for _, l := range s.Links() {
				ids = append(ids, trace.Link{SpanContext: l.SpanContext})
			}
			seen := map[string]bool{}
			for _, id := range linkIDs(ids) {
				if seen[id] {
					t.Errorf("span links %s twice", id)
				}
				seen[id] = true
				links[id] = true
			}
		}
		if spans == 0 {
			t.Fatal(`no "apply batch" span recorded`)
		}
		if applied != int64(len(msgs)) {
			t.Errorf("spans count %d applied events, want %d", applied, len(msgs))
		}
		want := []trace.Link{{SpanContext: runA}, {SpanContext: runB}}
		for _, id := range linkIDs(want) {
			if !links[id] {
				t.Errorf("no span links to producer span %s (links %v)", id, links)
			}
		}
		if len(links) != len(want) {
			t.Errorf("links %v, want only the two producer spans", links)
		}
	})
}
