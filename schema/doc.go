// Package schema defines the membership event: the one message type that flows
// from the producer to the consumer over Kafka.
//
// A membership event says that one context (kind + key) was added to or removed
// from one segment (key + generation) of one environment, as part of one sync run.
// Events are JSON objects in the Kafka message value; the schema version and the
// trace context travel in Kafka headers, so a consumer can reject a version it does
// not know before it parses anything.
//
// The Kafka message key identifies the membership (environment, segment, context
// kind, context key) and nothing else: every event of one membership lands on one
// partition in order, and a log-compacted topic keeps exactly the latest event of
// each membership, which is a complete, replayable record of current membership.
//
// membership-v1.schema.json in this directory documents version 1 for consumers
// written in other languages; the golden files under testdata pin the bytes.
package schema
