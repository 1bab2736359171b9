package schema

import (
	"slices"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier must stay an OpenTelemetry carrier, though trace.go does not
// import propagation.
var _ propagation.TextMapCarrier = HeaderCarrier{}

func TestHeaderCarrier(t *testing.T) {
	hs := []kafka.Header{{Key: "v", Value: []byte("1")}}
	c := HeaderCarrier{Headers: &hs}
	c.Set("traceparent", "a")
	c.Set("traceparent", "b") // replaces, never duplicates
	if got := c.Get("traceparent"); got != "b" {
		t.Errorf("Get = %q, want b", got)
	}
	if got := c.Get("missing"); got != "" {
		t.Errorf("Get of a missing key = %q", got)
	}
	if got := c.Keys(); !slices.Equal(got, []string{"v", "traceparent"}) {
		t.Errorf("Keys = %q", got)
	}
}
