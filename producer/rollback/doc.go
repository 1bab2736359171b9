// Package rollback gives the membership a segment had right after an
// earlier run (Target), as a source.Source that a mapping run publishes
// like any cohort: the rollback is a diff against what the destination
// holds, sent through the normal event path under the segment's lease and
// recorded as a run.
//
// The earlier membership is read back, not kept: it is what the destination
// holds now with every change published after the run undone. Those changes
// are the membership topic's events of the segment (same environment,
// generation and context kind) numbered above the run's boundary, its
// reserved sequence range's end (producer.Summary.SeqReserved), read in
// every partition from its first record produced since the run started
// (less Source.ClockSkew) up to the end offsets listed when the rollback
// starts: a bounded read of the history since the run. Every event of a mapping run, purge or rollback is a
// change relative to the snapshot its run diffed against (an add only for a
// key that was not a member, a remove only for one that was), so a key's
// earliest event after the boundary says what it was at the boundary: a
// member if that event removes it. A key with no later event is as the
// destination holds it, read once the consumer has applied everything
// published before the rollback started.
//
// Nothing in the state directory or in one replica's memory is involved,
// so a lost state directory or a run made by another replica changes
// nothing. What it needs is the topic's events after the run: compaction
// (the topic is compacted) or retention removing any of them would leave a
// key's state unknown. Such a removal leaves a hole in the partition's
// offsets. A hole is harmless when it lies before the partition's last
// surviving event of the segment at or below the boundary, or when the
// record after it was produced before the run started (less
// Source.ClockSkew: Kafka's timestamps are the producers' clocks), since
// the run's later events were all produced after; any other hole (a log
// that no longer starts at offset 0 included) refuses the rollback with an
// error wrapping ErrHistoryIncomplete, as does a topic holding fewer of the
// segment's events than the destination applied.
//
// The memory it takes grows with the number of keys changed since the run,
// not with the segment's size: the current members stream through.
package rollback
