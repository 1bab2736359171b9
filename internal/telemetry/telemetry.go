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
	EnvPropagators          = "OTEL_PROPAGATORS"
	defaultOTLPTracesTarget = "http://localhost:4318/v1/traces" // the OTLP/HTTP default
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
//   - OTEL_TRACES_EXPORTER: none (default), otlp (OTLP over HTTP) or console.
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
//     with /v1/traces appended: where otlp sends (default
//     http://localhost:4318/v1/traces). The exporter reads the other
//     OTEL_EXPORTER_OTLP_* variables (headers, timeout) itself.
//   - OTEL_SDK_DISABLED=true: no spans, whatever the exporter.
//   - OTEL_PROPAGATORS: tracecontext (default), baggage, or none; a
//     comma-separated list.
//
// Invalid values are *setting.Error naming the variable. serviceName is
// the resource's service.name.
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
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", serviceName)))
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
	switch e.exporter {
	case "", "none", "console":
	case "otlp":
		if e.target, err = otlpTarget(get); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, envError(EnvTracesExporter, get(EnvTracesExporter), "none, otlp or console"))
	}
	return e, errors.Join(errs...)
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
