// Package telemetry builds the process's OpenTelemetry providers once, from
// the standard OTEL_* environment variables, so that the parts (producer,
// consumer) get them injected and no library touches otel's globals. Traces
// are off unless OTEL_TRACES_EXPORTER or an OTLP endpoint says otherwise.
//
// It also adapts a propagator to Kafka message headers: the producer
// injects a sync run's trace context into every event, the consumer
// extracts it to link each batch's span to the runs it applies. The parts
// declare the small interfaces they need; this package is where
// go.opentelemetry.io/otel/propagation (and the net/http it imports) stays.
package telemetry
