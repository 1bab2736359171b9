// Package status reports, per destination, what LaunchDarkly's SDKs would
// report of its Big Segment store and why, and per segment how fresh it
// is and how far behind the published events its Redis is:
//
//   - available: the destination's Redis answers (PING); the SDKs report
//     STORE_ERROR otherwise;
//   - potentially stale: big_segments_synchronized_on is missing or older
//     than StaleAfter (the SDKs' staleAfter, 2 minutes by default; make it
//     the one your SDKs are configured with);
//   - last sync: big_segments_synchronized_on itself;
//   - last errors: what is recorded of them, newest first: failed runs and
//     runs whose events were set aside (run history), the store-lost mark
//     the consumer writes when the Redis lost its data, and the count of
//     set-asides of the destination (the consumer's errors themselves are
//     in its logs and metrics, not recorded in Redis).
//
// Per segment: last applied (when the consumer last wrote it, its highest
// applied sequence number and run) and lag: the highest sequence number
// the run history says was published minus the highest applied, and the
// runs published and not yet applied. Both come from records that exist
// anyway (segment metadata, run history), so a status costs a few
// pipelined reads per destination, never a scan of members or of Kafka.
package status
