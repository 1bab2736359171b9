package telemetry

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/setting"
)

func lookupOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestFromEnv(t *testing.T) {
	prev := ConsoleOutput
	ConsoleOutput = io.Discard
	t.Cleanup(func() { ConsoleOutput = prev })
	for _, tc := range []struct {
		name      string
		env       map[string]string
		recording bool     // spans are recorded (an SDK provider)
		fields    []string // the propagator's headers
		want      string   // error; "" = none
	}{
		{name: "nothing set: no spans, W3C trace context", fields: []string{"traceparent", "tracestate"}},
		{name: "exporter none", env: map[string]string{EnvTracesExporter: "none"}, fields: []string{"traceparent", "tracestate"}},
		{name: "console exporter", env: map[string]string{EnvTracesExporter: "console"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		// The collectors below refuse connections at once: the spans are
		// dropped (logged), as in production with a collector down.
		{name: "otlp with the default endpoint", env: map[string]string{EnvTracesExporter: "otlp"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		{name: "otlp with a base endpoint", env: map[string]string{EnvTracesExporter: "OTLP", EnvOTLPEndpoint: "http://127.0.0.1:1"}, recording: true,
			fields: []string{"traceparent", "tracestate"}},
		{name: "otlp with a traces endpoint", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPTracesEndpoint: "https://127.0.0.1:1/v1/traces"}, recording: true,
			fields: []string{"traceparent", "tracestate"}},
		{name: "sdk disabled wins over the exporter", env: map[string]string{EnvTracesExporter: "otlp", EnvSDKDisabled: "true"},
			fields: []string{"traceparent", "tracestate"}},
		{name: "baggage too", env: map[string]string{EnvPropagators: "tracecontext,baggage"}, fields: []string{"traceparent", "tracestate", "baggage"}},
		{name: "propagators none", env: map[string]string{EnvPropagators: "none"}, fields: nil},
		{name: "unknown exporter", env: map[string]string{EnvTracesExporter: "jaeger"},
			want: `OTEL_TRACES_EXPORTER="jaeger": want none, otlp or console`},
		{name: "endpoint not a URL", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPEndpoint: "collector:4318"},
			want: `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": want an http:// or https:// URL of an OTLP/HTTP collector`},
		{name: "traces endpoint named when it is the bad one", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPEndpoint: "http://ok:4318", EnvOTLPTracesEndpoint: "ftp://x"},
			want: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="ftp://x": want an http:// or https:// URL of an OTLP/HTTP collector`},
		{name: "every bad variable reported", env: map[string]string{EnvSDKDisabled: "yes", EnvPropagators: "b3", EnvTracesExporter: "zipkin"},
			want: `OTEL_SDK_DISABLED="yes": want true or false` + "\n" +
				`OTEL_PROPAGATORS="b3": want a comma-separated list of tracecontext, baggage or none` + "\n" +
				`OTEL_TRACES_EXPORTER="zipkin": want none, otlp or console`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := lookupOf(tc.env)
			p, err := FromEnv(t.Context(), lookup, "cohortsync-test")
			if checkErr := CheckEnv(lookup); (checkErr == nil) != (err == nil) {
				t.Errorf("CheckEnv = %v, FromEnv = %v: they disagree", checkErr, err)
			}
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("FromEnv = %v\nwant %s", err, tc.want)
				}
				for _, se := range setting.Errors(err) {
					if !strings.HasPrefix(se.Source, "OTEL_") {
						t.Errorf("error %v does not name its variable as the source", se)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := p.Shutdown(context.WithoutCancel(t.Context())); err != nil {
					t.Errorf("Shutdown = %v", err)
				}
				if err := p.Shutdown(t.Context()); err != nil {
					t.Errorf("second Shutdown = %v", err)
				}
			}()
			_, span := p.TracerProvider.Tracer("test").Start(t.Context(), "probe")
			if span.IsRecording() != tc.recording {
				t.Errorf("span recording %v, want %v", span.IsRecording(), tc.recording)
			}
			span.End()
			// A composite propagator lists its fields in map order.
			if got := slices.Sorted(slices.Values(p.Propagator.Fields())); !slices.Equal(got, slices.Sorted(slices.Values(tc.fields))) {
				t.Errorf("propagator fields %q, want %q", got, tc.fields)
			}
		})
	}
}

// TestConsoleExporterWritesSpans: console sends ended spans to
// ConsoleOutput once flushed by Shutdown.
func TestConsoleExporterWritesSpans(t *testing.T) {
	var buf bytes.Buffer
	prev := ConsoleOutput
	ConsoleOutput = &buf
	t.Cleanup(func() { ConsoleOutput = prev })
	p, err := FromEnv(t.Context(), lookupOf(map[string]string{EnvTracesExporter: "console"}), "cohortsync-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.TracerProvider.Tracer("test").Start(t.Context(), "console-probe")
	span.End()
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"Name":"console-probe"`) || !strings.Contains(out, "cohortsync-test") {
		t.Errorf("console output lacks the span or the service name:\n%s", out)
	}
}

// TestPropagatorRoundTrip: what Inject writes into headers, Extract reads
// back; the zero Propagator does nothing.
func TestPropagatorRoundTrip(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(t.Context()) }()
	ctx, span := tp.Tracer("test").Start(t.Context(), "sync")
	defer span.End()
	p := NewPropagator(propagation.TraceContext{})
	var headers []kafka.Header
	p.Inject(ctx, &headers)
	if len(headers) == 0 {
		t.Fatal("Inject wrote no header")
	}
	got := trace.SpanContextFromContext(p.Extract(context.WithoutCancel(t.Context()), headers))
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("extracted %v, want the span %v", got, span.SpanContext())
	}

	var zero Propagator
	var none []kafka.Header
	zero.Inject(ctx, &none)
	if len(none) != 0 || zero.Fields() != nil {
		t.Errorf("the zero Propagator wrote %v, fields %v", none, zero.Fields())
	}
	if sc := trace.SpanContextFromContext(zero.Extract(t.Context(), headers)); sc.IsValid() {
		t.Errorf("the zero Propagator extracted %v", sc)
	}
}
