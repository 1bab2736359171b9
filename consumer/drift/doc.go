// Package drift compares what a destination's Redis holds with what the
// membership topic says it should hold, and repairs the difference.
//
// What the log says is, per membership (destination, segment, generation,
// context key), its latest event, read from the first offset every
// partition still holds to the end offset listed at the start: a member if
// that event adds, not one if it removes. That is what a replay of the
// whole topic leaves in Redis, since events are applied in partition order
// and a membership's events share a partition (its message key). What
// Redis holds is each segment's member index (the segments index lists the
// segments of a prefix), and for every member the log expects, its include
// set: what an SDK reads.
//
// Neither side is loaded into memory: the log's events and Redis's members
// are written to external sorts (pkg/snapshot), one record per event or
// member, and the two sorted files are merged. Memory is the sort's chunk
// budget, whatever the number of members.
//
// Check reports the drift per segment (members missing, members extra,
// counts). Rebuild refills a destination from the log: with the consumer
// group stopped, it holds the destination's freshness back (the store-lost
// mark, which consumers honour, and no big_segments_synchronized_on, so
// SDKs report STALE), writes what is missing and removes what is extra
// through segmentstore.Writer, checks again that nothing drifts, and
// releases the mark. The consumers started next mark the store current
// once they have caught up.
//
// Compaction keeps one event per message key, which has no generation: a
// member of generations N and N+1 (a bump built, not finished) may keep
// only its N+1 event. A member of the index whose key has events in the
// log, none of its own generation, is therefore counted apart
// (Segment.OtherGeneration), not as drift, and kept.
//
// A log that no longer starts at offset 0 lost events to retention
// (cleanup.policy delete): members only those events added look extra.
// Check says so; Rebuild then keeps such members rather than remove them.
package drift
