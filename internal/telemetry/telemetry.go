package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// The variables FromEnv reads (the OpenTelemetry SDK's standard names).
const (
	EnvSDKDisabled          = "OTEL_SDK_DISABLED"
	EnvTracesExporter       = "OTEL_TRACES_EXPORTER"
	EnvOTLPEndpoint         = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint   = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol         = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvOTLPTracesProtocol   = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvPropagators          = "OTEL_PROPAGATORS"
	EnvServiceName          = "OTEL_SERVICE_NAME"
	EnvResourceAttributes   = "OTEL_RESOURCE_ATTRIBUTES"
	defaultOTLPTracesTarget = "http://localhost:4318/v1/traces" // the OTLP/HTTP default
	otlpProtocol            = "http/protobuf"                   // the only one otlptracehttp speaks
	serviceNameKey          = "service.name"
)

// ShutdownTimeout bounds Shutdown: flushing spans to a collector that is
// gone must not hold up the process's exit.
const ShutdownTimeout = 5 * time.Second

// Providers are the process's telemetry providers, built once and handed to
// the parts.
type Providers struct {
	// TracerProvider makes spans; a no-op one when tracing is off. Never nil
	// from FromEnv.
	TracerProvider trace.TracerProvider
	// Propagator carries trace context in message headers.
	Propagator Propagator

	shutdown func(context.Context) error // nil: nothing to flush
}

// Shutdown flushes and stops the exporters, within ShutdownTimeout (and
// ctx). Calling it again does nothing.
func (p *Providers) Shutdown(ctx context.Context) error {
	if p.shutdown == nil {
		return nil
	}
	f := p.shutdown
	p.shutdown = nil
	ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}

// ConsoleOutput is where OTEL_TRACES_EXPORTER=console writes spans: stderr,
// since stdout carries a sync's summary.
var ConsoleOutput io.Writer = os.Stderr

// FromEnv builds the providers the variables read by lookup ask for:
//
//   - OTEL_TRACES_EXPORTER: none, otlp (OTLP over HTTP) or console. Unset,
//     it is otlp when an OTLP endpoint below is set (setting one says where
//     to send), else none: with nothing set, tracing is off.
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
//     with /v1/traces appended: where otlp sends (default
//     http://localhost:4318/v1/traces). The exporter reads the other
//     OTEL_EXPORTER_OTLP_* variables (headers, timeout) itself.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     http/protobuf, the only one supported; grpc is rejected rather than
//     sending HTTP to a gRPC port.
//   - OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES,
//     else serviceName: the resource's service.name.
//   - OTEL_RESOURCE_ATTRIBUTES: the resource's other attributes, as
//     key=value,key=value with percent-encoded values.
//   - OTEL_SDK_DISABLED=true: no spans, whatever the exporter.
//   - OTEL_PROPAGATORS: tracecontext (default), baggage, or none; a
//     comma-separated list.
//
// Invalid values are *setting.Error naming the variable. The variables
// of an exporter (endpoint, protocol, resource) are checked only when it
// is on: set for another program, they do not stop this one.
func FromEnv(ctx context.Context, lookup func(string) (string, bool), serviceName string) (Providers, error) {
	e, err := parseEnv(lookup)
	if err != nil {
		return Providers{}, err
	}
	p := Providers{TracerProvider: noop.NewTracerProvider(), Propagator: NewPropagator(e.propagator)}
	if e.disabled || e.exporter == "" || e.exporter == "none" {
		return p, nil
	}
	var exp sdktrace.SpanExporter
	if e.exporter == "otlp" {
		// New connects lazily: an unreachable collector costs dropped
		// spans, never a failed run.
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(e.target))
	} else {
		exp, err = stdouttrace.New(stdouttrace.WithWriter(ConsoleOutput))
	}
	if err != nil {
		return Providers{}, fmt.Errorf("%s=%s: %w", EnvTracesExporter, e.exporter, err)
	}
	// Not merged over resource.Default(): that reads the variables with
	// os.Getenv, and the built-in name merged over it hid the user's. Of
	// duplicate keys the last is kept: the built-in name first, as the
	// default, OTEL_SERVICE_NAME last, over a service.name in
	// OTEL_RESOURCE_ATTRIBUTES as the specification orders them.
	attrs := append([]attribute.KeyValue{attribute.String(serviceNameKey, serviceName)}, e.attributes...)
	if e.serviceName != "" {
		attrs = append(attrs, attribute.String(serviceNameKey, e.serviceName))
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil {
		return Providers{}, fmt.Errorf("telemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	p.TracerProvider, p.shutdown = tp, tp.Shutdown
	return p, nil
}

// CheckEnv reports what FromEnv would reject, building nothing: for a
// command line that validates every setting before it starts.
func CheckEnv(lookup func(string) (string, bool)) error {
	_, err := parseEnv(lookup)
	return err
}

// env is what the variables say.
type env struct {
	disabled   bool
	exporter   string // "", none, otlp or console
	target     string // the OTLP/HTTP traces URL, for otlp
	propagator propagation.TextMapPropagator
	// The resource, read when an exporter is on: OTEL_SERVICE_NAME ("":
	// unset) and OTEL_RESOURCE_ATTRIBUTES.
	serviceName string
	attributes  []attribute.KeyValue
}

// parseEnv reads and checks the variables, reporting every invalid one.
func parseEnv(lookup func(string) (string, bool)) (env, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var (
		e    env
		errs []error
		err  error
	)
	switch strings.ToLower(get(EnvSDKDisabled)) {
	case "", "false":
	case "true":
		e.disabled = true
	default:
		errs = append(errs, envError(EnvSDKDisabled, get(EnvSDKDisabled), "true or false"))
	}
	if e.propagator, err = propagators(get(EnvPropagators)); err != nil {
		errs = append(errs, err)
	}
	e.exporter = strings.ToLower(get(EnvTracesExporter))
	if e.exporter == "" && (get(EnvOTLPTracesEndpoint) != "" || get(EnvOTLPEndpoint) != "") {
		e.exporter = "otlp" // an endpoint says where to send: that is asking for otlp
	}
	switch e.exporter {
	case "", "none":
		return e, errors.Join(errs...)
	case "console":
	case "otlp":
		if e.target, err = otlpTarget(get); err != nil {
			errs = append(errs, err)
		}
		if err := checkOTLPProtocol(get); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, envError(EnvTracesExporter, get(EnvTracesExporter), "none, otlp or console"))
		return e, errors.Join(errs...)
	}
	e.serviceName = get(EnvServiceName)
	if e.attributes, err = resourceAttributes(get(EnvResourceAttributes)); err != nil {
		errs = append(errs, err)
	}
	return e, errors.Join(errs...)
}

// checkOTLPProtocol accepts the protocol the variables name only if it is
// the one otlptracehttp speaks: an OTLP/HTTP request to a gRPC port fails
// on every export, and only in the logs.
func checkOTLPProtocol(get func(string) string) error {
	name, v := EnvOTLPTracesProtocol, get(EnvOTLPTracesProtocol)
	if v == "" {
		name, v = EnvOTLPProtocol, get(EnvOTLPProtocol)
	}
	switch strings.ToLower(v) {
	case "", otlpProtocol:
		return nil
	case "grpc":
		return envError(name, v, otlpProtocol+" (grpc is not supported; use http/protobuf, the collector's port 4318)")
	default:
		return envError(name, v, otlpProtocol+", the only OTLP protocol supported")
	}
}

// resourceAttributes parses OTEL_RESOURCE_ATTRIBUTES: key=value pairs
// separated by commas, each value percent-decoded (the specification's
// W3C Baggage form, without properties).
func resourceAttributes(list string) ([]attribute.KeyValue, error) {
	if list == "" {
		return nil, nil
	}
	const want = "key=value pairs separated by commas, values percent-encoded"
	var attrs []attribute.KeyValue
	for _, pair := range strings.Split(list, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, envError(EnvResourceAttributes, list, want)
		}
		// PathUnescape, not QueryUnescape: in baggage a + is a +.
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, envError(EnvResourceAttributes, list, want)
		}
		attrs = append(attrs, attribute.String(k, val))
	}
	return attrs, nil
}

// envError is the error of an environment-only setting: it names the
// variable, which is what the user set.
func envError(name, value, want string) *setting.Error {
	e := setting.Invalid(name, value, "%s", want)
	e.Source = name
	return e
}

// otlpTarget is the OTLP/HTTP traces URL the variables name.
func otlpTarget(get func(string) string) (string, error) {
	name, v := EnvOTLPTracesEndpoint, get(EnvOTLPTracesEndpoint)
	if v == "" {
		name, v = EnvOTLPEndpoint, get(EnvOTLPEndpoint)
	}
	if v == "" {
		return defaultOTLPTracesTarget, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", envError(name, v, "an http:// or https:// URL of an OTLP/HTTP collector")
	}
	if name == EnvOTLPEndpoint { // the base URL: the signal's path is appended
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// propagators builds the composite propagator a comma-separated list names.
func propagators(list string) (propagation.TextMapPropagator, error) {
	if list == "" {
		return propagation.TraceContext{}, nil
	}
	var ps []propagation.TextMapPropagator
	for _, name := range strings.Split(list, ",") {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		case "none":
		default:
			return nil, envError(EnvPropagators, list, "a comma-separated list of tracecontext, baggage or none")
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...), nil
}
