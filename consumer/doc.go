// Package consumer applies membership events from Kafka to Redis in the
// LaunchDarkly Big Segments layout, so that unmodified SDKs evaluate flags
// against the segments cohortsync syncs.
//
// One Consumer is one member of a Kafka consumer group. For each generation
// of the group (one assignment of partitions, between two rebalances) it
// deals the assigned partitions to Appliers streams, and each stream runs a
// pipeline of its own over its partitions: a fetch goroutine per partition,
// reading from the group's committed offset a fetch response at a time on a
// connection of its own, decodes its messages and feeds them in chunks (a
// response's messages, at most 512 at once) to a bounded queue; a batch
// goroutine cuts batches (BatchSize
// messages, or whatever was fetched within FlushInterval of the first, and
// more while the apply loop is still busy) while the previous batch is being
// applied; the apply loop writes a batch to Redis
// through one segmentstore.Writer per Redis client (each event all or
// nothing), sends undecodable or unappliable messages to the
// dead-letter topic, and only then commits the batch's offsets (its
// partitions' only). The streams share nothing a key's order depends on: a
// context key's events are in one partition, so in one stream, in order,
// and a segment's metadata only moves forward whichever stream writes it
// first. While one stream waits for a Redis reply or a commit, the others
// write, which is what keeps a single-threaded Redis busy. A crash
// anywhere before the commit redelivers the batch; every Redis write is
// idempotent (SADD, SREM, a metadata update whose last_seq only grows), so redelivery and
// whole-topic replays converge on the same Redis content.
//
// The pipeline runs under its generation (kafka.Generation.Start): when a
// rebalance starts, the batches being applied are finished and committed
// (within ShutdownTimeout), everything else buffered is dropped, and only
// then does the member rejoin the group, so the broker cannot hand its
// partitions to another member while it may still write them. Without that
// fence, an old "add" still buffered here could be applied after the new
// owner applied a newer "remove" of the same membership.
//
// A stop is bounded (shutdown.go): Run returns within ShutdownTimeout plus
// a second of its context ending, abandoning and logging what still hangs
// (a batch on a Redis that stopped answering, a join the broker holds
// during a rebalance), and leaves the group on its way out.
//
// A freshness.Tracker, run by Run for as long as it runs, keeps
// <prefix>:big_segments_synchronized_on fresh with watermarks over the
// group's committed offsets (see package freshness); the apply loops only
// tell it how many messages each batch committed.
//
// Where an event is written depends on its environment. New writes every
// event to one Redis, under Config.RedisPrefix or the environment's
// Config.EnvPrefixes entry. NewWithRoutes takes a RouteTable instead, from
// environment to Route (a destination's Redis, standalone or Cluster, and
// key prefix), which the destinations store's poller replaces whole with
// RouteTable.Set while the consumer runs; the table knows nothing of the
// store, the caller builds it. Each write attempt of a batch resolves its
// events against the table current when it starts and splits them per
// client: routes sharing a client share its pipeline, distinct clients are
// written concurrently, and the offsets are committed only once every
// client's writes succeeded (a failure of one retries the batch, whose
// writes are idempotent, against the then current table, so a destination
// replaced while it is down stops holding the partitions up). An event
// whose environment has no route is dead-lettered as
// ReasonUnknownEnvironment, never written under a default prefix; the
// events around it are applied. synchronized_on is written under every
// prefix of the current table. A new route receives only the events
// consumed after the swap: earlier ones went to the old destination or to
// the dead-letter topic, and a full sync of its segments fills it.
//
// The table, not the consumer, decides when a client it was given is no
// longer used: each write attempt and synchronized_on write holds the table
// it resolved against, and a client that no live table names is passed to
// RouteTableOptions.Dropped, where the caller closes it. Closing a client
// while it is still in a table fails the consumer.
//
// The consumer serves nothing and imports no HTTP or metrics library: the
// process (internal/app) mounts its Stats, Health and Ready on its one
// HTTP server, and injects the tracer provider, the propagator reading the
// producers' trace context, and an Observer of committed batches.
package consumer
