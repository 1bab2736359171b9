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
	// A real broker elects the new partitions' leaders a moment after the
	// topic is created; clients retry meanwhile.
	var ends map[int]int64
	testenv.Eventually(t, 30*time.Second, "the topic's partition ends", func() bool {
		var err error
		ends, err = freshness.Ends(ctx, kf.Client(10*time.Second), cfg.Topic)
		return err == nil
	})
	if len(ends) != Partitions {
		t.Fatalf("topic %q: partition ends %v; want %d partitions", cfg.Topic, ends, Partitions)
	}
}
