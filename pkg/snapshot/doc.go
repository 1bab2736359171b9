// Package snapshot keeps, per segment, the last committed cohort snapshot and
// turns a new snapshot into the membership changes since then, with a commit
// protocol that survives a crash at any moment.
//
// A snapshot is a file of distinct keys in byte order (see KeyWriter for the
// format). A new snapshot of any size is built with an external sort bounded
// in memory (Sorter), then compared with the committed one by a streaming
// merge (Diff): keys only in the new one are adds, keys only in the old one
// are removes. Both files are read once, sequentially.
//
// The Store of a segment (environment, segment key, generation, context kind)
// is a directory holding the snapshot files and a small JSON state file. A
// sync run goes through these steps; the state file is replaced atomically
// between them, so a crash leaves it at one step or the next:
//
//  1. Stage: the new snapshot becomes "pending", and the state records a range
//     of sequence numbers reserved for its events (next_seq up to
//     next_seq + len(committed) + len(pending), more than the diff can use),
//     before anything is published.
//  2. Publish the diff committed → pending and wait until every event is
//     acknowledged; then Commit: pending becomes committed and next_seq moves
//     past the reserved range.
//  3. A run that finds a pending snapshot (the previous run died in step 2)
//     first Recovers: it reserves a fresh range after the old one, publishes
//     the whole diff committed → pending again and commits it, and only then
//     stages its own snapshot.
//
// Republishing is harmless because applying an event is idempotent (set add,
// set remove) and each membership appears once per phase, with an
// acknowledgement barrier between phases, so the last event of every
// membership is the right one. Sequence numbers only grow, even across crashes.
//
// Store.Sync is the one driver of these steps; the steps themselves are not
// exported, so no caller can skip a barrier or commit early.
//
// A lock on the segment makes a second concurrent sync of the same segment
// fail at once instead of interleaving with the first. A lock shared by
// replicas can be lost (it expires when its holder stalls), so the Store
// checks its Lease before each commit and leaves the phase pending, for the
// next holder to recover, when it is no longer held. The lock and the
// reservation of sequence numbers sit behind small interfaces, Locker and
// SeqAllocator, so that replicas sharing segments can bring their own; the
// defaults are local to one machine (flock on the segment directory, and
// the state file as the sequence counter).
//
// Replicas that take turns syncing a segment, or a replica whose directory
// was lost, must not diff against a stale or missing committed snapshot:
// that would resurrect members another run removed, or never remove members
// that left. WithSharedState makes the directory a cache. Before each run the
// store compares the last sequence number its state records as reserved
// with the shared counter (SharedSeq) and with what the destination applied
// (Rebuilder.LastSeq); unless all three agree, the committed snapshot is
// rebuilt from the destination's members, read once the consumer has
// applied everything published before, and a pending snapshot is dropped
// (what of it was published is in the destination already).
package snapshot
