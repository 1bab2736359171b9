package telemetry

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
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

// consoleTo sends the console exporter's output to w until the test ends.
func consoleTo(t *testing.T, w io.Writer) {
	prev := ConsoleOutput
	ConsoleOutput = w
	t.Cleanup(func() { ConsoleOutput = prev })
}

// fromEnv is FromEnv on env with service name cohortsync-test, checking
// that CheckEnv agrees on whether env is valid.
func fromEnv(t *testing.T, env map[string]string) (Providers, error) {
	t.Helper()
	lookup := lookupOf(env)
	p, err := FromEnv(t.Context(), lookup, "cohortsync-test")
	if checkErr := CheckEnv(lookup); (checkErr == nil) != (err == nil) {
		t.Errorf("CheckEnv = %v, FromEnv = %v: they disagree", checkErr, err)
	}
	return p, err
}

func TestFromEnv(t *testing.T) {
	consoleTo(t, io.Discard)
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
		{name: "a base endpoint alone means otlp", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:1"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		{name: "a traces endpoint alone means otlp", env: map[string]string{EnvOTLPTracesEndpoint: "http://127.0.0.1:1/v1/traces"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		{name: "exporter none beats an endpoint", env: map[string]string{EnvTracesExporter: "none", EnvOTLPEndpoint: "http://127.0.0.1:1"}, fields: []string{"traceparent", "tracestate"}},
		{name: "protocol http/protobuf", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPProtocol: "http/protobuf"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		{name: "traces protocol http/protobuf beats grpc for the other signals",
			env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:1", EnvOTLPProtocol: "grpc", EnvOTLPTracesProtocol: "http/protobuf"}, recording: true, fields: []string{"traceparent", "tracestate"}},
		{name: "protocol unchecked while tracing is off", env: map[string]string{EnvOTLPProtocol: "grpc"}, fields: []string{"traceparent", "tracestate"}},
		{name: "resource attributes unchecked while tracing is off", env: map[string]string{EnvResourceAttributes: "no-equals"}, fields: []string{"traceparent", "tracestate"}},
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
		{name: "an endpoint alone that is not a URL", env: map[string]string{EnvOTLPEndpoint: "collector:4318"},
			want: `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": want an http:// or https:// URL of an OTLP/HTTP collector`},
		{name: "protocol grpc", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPProtocol: "grpc"},
			want: `OTEL_EXPORTER_OTLP_PROTOCOL="grpc": want http/protobuf (grpc is not supported; use http/protobuf, the collector's port 4318)`},
		{name: "traces protocol grpc, with an endpoint alone", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4317", EnvOTLPTracesProtocol: "grpc"},
			want: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc": want http/protobuf (grpc is not supported; use http/protobuf, the collector's port 4318)`},
		{name: "protocol http/json", env: map[string]string{EnvTracesExporter: "otlp", EnvOTLPProtocol: "http/json"},
			want: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": want http/protobuf, the only OTLP protocol supported`},
		{name: "every bad variable reported", env: map[string]string{EnvSDKDisabled: "yes", EnvPropagators: "b3", EnvTracesExporter: "zipkin"},
			want: `OTEL_SDK_DISABLED="yes": want true or false` + "\n" +
				`OTEL_PROPAGATORS="b3": want a comma-separated list of tracecontext, baggage or none` + "\n" +
				`OTEL_TRACES_EXPORTER="zipkin": want none, otlp or console`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := fromEnv(t, tc.env)
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
	consoleTo(t, &buf)
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

// TestResource: the built-in service name is the default that the
// standard variables override, OTEL_SERVICE_NAME first.
func TestResource(t *testing.T) {
	consoleTo(t, io.Discard)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		service string            // the resource's service.name
		attrs   map[string]string // other attributes it must hold
		want    string            // error; "" = none
	}{
		{name: "the built-in name by default", service: "cohortsync-test"},
		{name: "OTEL_SERVICE_NAME wins", env: map[string]string{EnvServiceName: "sync-eu"}, service: "sync-eu"},
		{name: "service.name in the attributes is used", env: map[string]string{EnvResourceAttributes: "service.name=sync-us,deployment.environment=prod"},
			service: "sync-us", attrs: map[string]string{"deployment.environment": "prod"}},
		{name: "OTEL_SERVICE_NAME beats the attribute", env: map[string]string{EnvServiceName: "sync-eu", EnvResourceAttributes: "service.name=sync-us"},
			service: "sync-eu"},
		{name: "values percent-decoded, spaces trimmed, + kept", env: map[string]string{EnvResourceAttributes: " team = data%2Cgrowth , note=a+b%20c"},
			service: "cohortsync-test", attrs: map[string]string{"team": "data,growth", "note": "a+b c"}},
		{name: "an empty value is a value", env: map[string]string{EnvResourceAttributes: "k="}, service: "cohortsync-test", attrs: map[string]string{"k": ""}},
		{name: "an entry without =", env: map[string]string{EnvResourceAttributes: "a=1,b"},
			want: `OTEL_RESOURCE_ATTRIBUTES="a=1,b": want key=value pairs separated by commas, values percent-encoded`},
		{name: "an empty key", env: map[string]string{EnvResourceAttributes: "=1"},
			want: `OTEL_RESOURCE_ATTRIBUTES="=1": want key=value pairs separated by commas, values percent-encoded`},
		{name: "a trailing comma", env: map[string]string{EnvResourceAttributes: "a=1,"},
			want: `OTEL_RESOURCE_ATTRIBUTES="a=1,": want key=value pairs separated by commas, values percent-encoded`},
		{name: "a bad percent-encoding", env: map[string]string{EnvResourceAttributes: "a=100%"},
			want: `OTEL_RESOURCE_ATTRIBUTES="a=100%": want key=value pairs separated by commas, values percent-encoded`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{EnvTracesExporter: "console"}
			maps.Copy(env, tc.env)
			p, err := fromEnv(t, env)
			if tc.want != "" {
				if err == nil || err.Error() != tc.want {
					t.Fatalf("FromEnv = %v\nwant %s", err, tc.want)
				}
				if ses := setting.Errors(err); len(ses) != 1 || ses[0].Source != EnvResourceAttributes {
					t.Errorf("errors %v, want one *setting.Error from %s", ses, EnvResourceAttributes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = p.Shutdown(context.WithoutCancel(t.Context())) }()
			_, span := p.TracerProvider.Tracer("test").Start(t.Context(), "probe")
			span.End()
			ro, ok := span.(sdktrace.ReadOnlySpan)
			if !ok {
				t.Fatalf("span %T is not an SDK span", span)
			}
			set := ro.Resource().Set()
			if v, _ := set.Value(attribute.Key(serviceNameKey)); v.AsString() != tc.service {
				t.Errorf("service.name = %q, want %q", v.AsString(), tc.service)
			}
			if v, ok := set.Value("telemetry.sdk.name"); !ok || v.AsString() != "opentelemetry" {
				t.Errorf("telemetry.sdk.name = %q, %v: the SDK's attributes are missing", v.AsString(), ok)
			}
			for k, want := range tc.attrs {
				if v, ok := set.Value(attribute.Key(k)); !ok || v.AsString() != want {
					t.Errorf("%s = %q (present %v), want %q", k, v.AsString(), ok, want)
				}
			}
		})
	}
}
