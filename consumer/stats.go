package consumer

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Consumer's counters.
type Stats struct {
	Applied      int64 // events written to Redis (and committed)
	DeadLettered int64 // messages written to the dead-letter topic
	Unrouted     int64 // of those, events whose environment had no route (ReasonUnknownEnvironment; NewWithRoutes only)
	SetAside     int64 // of those, events of an unavailable destination (ReasonDestinationUnavailable; NewWithRoutes only)
	Batches      int64 // batches committed
	Dropped      int64 // fetched but left unapplied and uncommitted when a generation ended (rebalance or stop): the partition's next owner reads them again
	Stale        int64 // redelivered messages dropped: at or below an offset already taken in the same group generation (a guard; none expected)
	Retries      int64 // retried attempts after transient Redis or Kafka errors
	Generations  int64 // consumer group generations joined (the first assignment, then one per rebalance)
	SyncErrors   int64 // failed lag checks or synchronized_on writes

	LastApplied time.Time // when the last batch was committed; zero if none
	LastSync    time.Time // the last synchronized_on value written; zero if none
	// Lag is the group's uncommitted messages on the topic at the last check
	// (end offset minus committed offset, over all partitions); -1 before the
	// first successful check.
	Lag int64
	// CaughtUp is whether the last check found no lag.
	CaughtUp bool
	// StoresLost is the number of destination prefixes found without the
	// store id written there earlier: Redis lost their data, and they are
	// no longer marked current (see README, "Redis lost its data").
	StoresLost int
}

// counters is the live, concurrently updated form of the apply path's
// Stats; the freshness tracker keeps Lag, LastSync and SyncErrors.
type counters struct {
	applied, deadLettered, unrouted, setAside, batches, dropped, stale, retries, generations atomic.Int64
	lastApplied                                                                              atomic.Int64 // unix ns; 0 = never
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Applied:      c.applied.Load(),
		DeadLettered: c.deadLettered.Load(),
		Unrouted:     c.unrouted.Load(),
		SetAside:     c.setAside.Load(),
		Batches:      c.batches.Load(),
		Dropped:      c.dropped.Load(),
		Stale:        c.stale.Load(),
		Retries:      c.retries.Load(),
		Generations:  c.generations.Load(),
	}
	if ns := c.lastApplied.Load(); ns != 0 {
		s.LastApplied = time.Unix(0, ns)
	}
	return s
}
