// Package publish writes membership events to the Kafka topic: the one place
// that knows how the producer side talks to Kafka (acks from every in-sync
// replica, the key hash that keeps each membership on one partition, batch
// and compression settings, bounded retries of transient errors, topic
// creation).
//
// A Publisher owns one kafka-go Writer; each Stream of it publishes the
// changes of one origin (a segment, the run and the source the events name),
// with sends in flight concurrently and an acknowledgement barrier (Wait).
// producer.Sync publishes snapshot diffs through it; the push receiver and
// replay publish their deltas the same way, numbered by the segment's
// sequence allocator.
package publish
