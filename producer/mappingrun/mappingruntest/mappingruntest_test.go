package mappingruntest

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestProducerIsValidWithItsTopicCreated: the config is valid, of the
// topic asked for, created with Partitions partitions.
func TestProducerIsValidWithItsTopicCreated(t *testing.T) {
	ctx := testenv.Context(t, time.Minute)
	kf := kafkaxtest.Kafka(t)
	topic := testenv.Name(t)
	cfg := Producer(t, ctx, kf, topic)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Producer is invalid: %v", err)
	}
	if cfg.Topic != topic {
		t.Fatalf("Producer(%q).Topic = %q", topic, cfg.Topic)
	}
	ends, err := freshness.Ends(ctx, kf.Client(10*time.Second), cfg.Topic)
	if err != nil || len(ends) != Partitions {
		t.Fatalf("topic %q: partition ends %v, %v; want %d partitions", cfg.Topic, ends, err, Partitions)
	}
}
