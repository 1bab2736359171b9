package schema

import "github.com/segmentio/kafka-go"

// HeaderCarrier adapts Kafka message headers to OpenTelemetry propagation
// (it is a propagation.TextMapCarrier, asserted in trace_test.go, without
// importing the package: propagation imports net/http), so the trace of a
// sync run continues in the consumer that applies its events.
type HeaderCarrier struct{ Headers *[]kafka.Header }

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
