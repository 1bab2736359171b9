package consumer

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// Observer is told about each batch as it is committed, for what a snapshot
// of Stats cannot give (latency distributions). internal/metrics implements
// it; the consumer declares it so that it needs no metrics library. It is
// called on the apply loops, concurrently: it must be safe for that, quick,
// and must not block.
type Observer interface {
	BatchCommitted(BatchReport)
}

// BatchReport describes one committed batch.
type BatchReport struct {
	// Messages is how many messages the batch committed (applied or
	// dead-lettered; redelivered ones dropped as stale are not counted).
	Messages int
	// Took is the time from the start of applying the batch to Redis to the
	// end of its offset commit.
	Took time.Duration
	// OldestProduced is the produce timestamp (kafka.Message.Time) of the
	// batch's oldest message: Committed minus it is the batch's worst
	// end-to-end lag. Zero when no message carried a timestamp.
	OldestProduced time.Time
	// Committed is when the commit returned.
	Committed time.Time
	// DeadLettered counts the batch's dead-lettered messages by reason
	// (schema.HeaderDeadLetterReason); nil when there were none.
	DeadLettered map[string]int
}

// TraceExtractor reads the trace context a producer wrote into message
// headers; internal/telemetry adapts an OpenTelemetry propagator. The
// consumer declares it so that it does not import the propagation package
// (and net/http with it).
type TraceExtractor interface {
	// Extract returns ctx carrying the span context found in headers.
	Extract(ctx context.Context, headers []kafka.Header) context.Context
	// Fields lists the header names Extract reads; none means it reads
	// nothing, and no links are made.
	Fields() []string
}
