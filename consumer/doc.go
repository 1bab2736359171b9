// Package consumer applies membership events from Kafka to Redis in the
// LaunchDarkly Big Segments layout, so that unmodified SDKs evaluate flags
// against the segments cohortsync syncs.
//
// One Consumer is one member of a Kafka consumer group. A fetch goroutine
// reads messages into a bounded queue; a batch goroutine cuts batches
// (BatchSize messages, or whatever arrived within FlushInterval of the
// first) and decodes each on every core while the previous batch is being
// applied; the apply loop writes a batch to Redis in one pipeline, sends
// undecodable or unappliable messages to the dead-letter topic, and only
// then commits the batch's offsets. A crash anywhere before the commit redelivers the batch;
// every Redis write is idempotent (SADD, SREM, a max-only metadata update),
// so redelivery and whole-topic replays converge on the same Redis content.
//
// A syncer goroutine keeps <prefix>:big_segments_synchronized_on fresh while,
// and only while, the group's committed offsets have reached the end of
// every partition: a stopped or lagging consumer lets the SDKs report STALE.
package consumer
