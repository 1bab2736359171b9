// Package segments is the segment as evaluators see it and people manage
// it: for each destination, the segments the catalog's mappings name and
// those the destination's Redis holds, with their source, owning mapping,
// generation, context kind, member count, last applied run and the
// destination's freshness (View); the definition flag data needs for one
// (LDSegment); an export of its members (Export); and direct edits of list
// segments (Editor).
//
// A segment a mapping names in a destination is synced: its mapping owns
// it and every direct write is refused with a *SyncedError
// (ErrSyncedSegment), since the next run would undo it. A segment no
// mapping names is a list segment: people add, remove and import its
// members. Edits never write Redis: they publish membership events through
// Kafka like any run, under the segment's lease with the shared sequence
// numbers, so that the consumer applies them in order with the runs and
// pushes of the segment, a replay of the topic rebuilds them, and the next
// run of anything else diffs against them. Each edit is recorded in the run
// history with trigger "manual".
//
// Everything read from Redis is bounded: a segment's count is SCARD of its
// member index and its run and time the metadata hash (both O(1)); the
// segments of a destination are the refs of the index the consumer keeps
// (bigsegments.SegmentsKey), read with SSCAN, never a scan of the keyspace
// (Reindex, once after an upgrade, is the one SCAN: it indexes segments an
// older release wrote); members are read with SSCAN in pages and sorted on
// disk for an export.
package segments
