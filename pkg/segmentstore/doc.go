// Package segmentstore is the one place that reads and writes cohortsync's
// Redis content in LaunchDarkly's Big Segments layout
// (docs/bigsegments-redis.md): include sets, big_segments_synchronized_on,
// and cohortsync's member index and per-segment metadata under
// "<prefix>:cohortsync:{ref}:".
//
// Writer applies membership changes and sets the sync time; the consumer
// hands it decoded events as Changes. Every write is idempotent (SADD and
// SREM of set members, metadata that moves forward only by sequence number),
// so that a batch redelivered after a crash, a retried pipeline or a replay
// of the whole topic converges on the same content; each change's effect is
// all or nothing (a change Redis refuses writes nothing). Classify says what a
// Redis error means for a batch: the event's fault (dead-letter it),
// transient (retry the batch) or fatal (stop).
//
// The readers (Membership, Info, Infos, Members, Segments, SyncTime, and JoinedSince and Runs:
// since which event and run a context key is in a segment) serve the demo, tests
// and status tools (cohortsync segments); Rebuilder reads a segment back for the producer when
// its local snapshot state is missing or stale (snapshot.WithSharedState); WriteFixture writes raw layout content for tests and SDK
// compatibility checks. Key names stay in pkg/bigsegments, so that the
// writer, the readers and the SDK compatibility tests agree on one layout;
// keeping every write here means a change to the layout or its semantics
// has one place to be made and reviewed.
package segmentstore
