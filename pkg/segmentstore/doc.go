// Package segmentstore reads what the consumer writes into Redis: a context's
// Big Segments membership as the LaunchDarkly SDKs see it, a segment's member
// count and metadata, the raw member keys of a segment, and the store's
// synchronized-on time.
//
// Readers for the demo, tests and status tools live here, apart from the key
// names in pkg/bigsegments, so that the writer and every reader agree on one
// layout while the readers can grow without touching the writer.
package segmentstore
