// Package retry is the one backoff policy of the project: Kafka and Redis
// calls of every component retry transient failures the same way
// (exponential waits, bounded by a timeout and by ctx, a permanent error
// stopping at once), so that a stalled dependency looks the same in the
// logs of the producer and of the consumer, and tuning it is done once.
//
// Deciding what is transient stays with the caller, where the error
// happens: op wraps the errors retrying cannot fix in backoff.Permanent
// (see kafkax.Classify and segmentstore.Classify).
package retry
