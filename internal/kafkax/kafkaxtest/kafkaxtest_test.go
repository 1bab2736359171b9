package kafkaxtest

import (
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestKafkaReachesTheTestBroker: the factory's client answers metadata
// requests of the test's Kafka, so tests that use it talk to the broker
// testenv chose.
func TestKafkaReachesTheTestBroker(t *testing.T) {
	f := Kafka(t)
	if len(f.Brokers()) == 0 {
		t.Fatal("no brokers")
	}
	ctx := testenv.Context(t, 30*time.Second)
	meta, err := f.Client(10*time.Second).Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(meta.Brokers) == 0 {
		t.Fatal("metadata lists no broker")
	}
}

func TestFactoryKeepsTheBrokers(t *testing.T) {
	f := Factory(t, "127.0.0.1:9", "[::1]:9092")
	if got := f.Brokers(); !slices.Equal(got, []string{"127.0.0.1:9", "[::1]:9092"}) {
		t.Fatalf("Brokers() = %q", got)
	}
}
