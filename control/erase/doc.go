// Package erase removes one context key from every segment of an
// environment, through the event path, and keeps a receipt of it.
//
// Eraser.Erase, for the destination serving the environment:
//
//  1. puts the key on the environment's erased-keys list
//     (segmentlease.Erased) first, so that every mapping run starting from
//     then on excludes it from its source with reason "erased" (shown in
//     the run's exclusions): the next scheduled sync of a synced segment
//     does not add it back, and its snapshot converges on the segment
//     without it;
//  2. publishes a remove event of the key to every segment generation of
//     the destination (those its mappings name and those its Redis holds),
//     whether or not the key is in it now — an add still in flight is then
//     undone too — each under the segment's lease (waiting, bounded, for a
//     run that holds it) and numbered from its shared sequence counter, like
//     any run or edit, so that the consumer applies it in order and a replay
//     of the topic replays it;
//  3. records a receipt in the control Redis: id, environment, key, the
//     segments it was published to and which held the key, each event's
//     sequence number, when Kafka acknowledged them, and the topic's end
//     offsets right after (the barrier: once the consumer group's committed
//     offsets reach them on every partition, the erase is applied). The run
//     history gets the erase as a run (mapping "erase:<env>", trigger
//     "erase"), which serve's run watcher marks applied like any run.
//
// What an erase does not do: pushes from partners and direct list-segment
// edits are explicit and are not filtered (a person or partner adding the
// key back is obeyed); exclusions written by another tool stay (cohortsync
// never writes exclude sets); the key stays in Kafka's history until
// compaction keeps only its remove event; the receipt and the erased list
// hold the raw key, as they must to do their job. Taking a key off the list
// (Eraser.Forget) lets syncs add it again.
package erase
