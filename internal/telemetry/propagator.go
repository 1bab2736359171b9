package telemetry

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cohortsync/cohortsync/schema"
)

// Propagator reads and writes trace context in Kafka message headers. It
// is the producer's injector and the consumer's extractor. The zero value
// propagates nothing.
type Propagator struct{ p propagation.TextMapPropagator }

// NewPropagator adapts p (nil: none).
func NewPropagator(p propagation.TextMapPropagator) Propagator { return Propagator{p: p} }

// Inject writes ctx's trace context into headers.
func (p Propagator) Inject(ctx context.Context, headers *[]kafka.Header) {
	if p.p != nil {
		p.p.Inject(ctx, schema.HeaderCarrier{Headers: headers})
	}
}

// Extract returns ctx carrying the trace context found in headers.
func (p Propagator) Extract(ctx context.Context, headers []kafka.Header) context.Context {
	if p.p == nil {
		return ctx
	}
	return p.p.Extract(ctx, schema.HeaderCarrier{Headers: &headers})
}

// Fields lists the headers the propagator reads and writes.
func (p Propagator) Fields() []string {
	if p.p == nil {
		return nil
	}
	return p.p.Fields()
}
