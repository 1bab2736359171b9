package schema

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts Kafka message headers to OpenTelemetry propagation, so
// the trace of a sync run continues in the consumer that applies its events.
type HeaderCarrier struct{ Headers *[]kafka.Header }

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	v, _ := header(*c.Headers, key)
	return string(v)
}

// Set replaces key's value.
func (c HeaderCarrier) Set(key, value string) {
	for i, h := range *c.Headers {
		if h.Key == key {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.Headers))
	for _, h := range *c.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}

// InjectTrace writes ctx's trace context into m's headers with the global
// propagator. With no propagator configured (the default) it writes nothing.
func InjectTrace(ctx context.Context, m *kafka.Message) {
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier{Headers: &m.Headers})
}

// ExtractTrace returns ctx carrying the trace context found in m's headers.
func ExtractTrace(ctx context.Context, m *kafka.Message) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier{Headers: &m.Headers})
}
