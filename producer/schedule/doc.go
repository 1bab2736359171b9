// Package schedule runs mappings on their schedules: every Tick it lists the
// catalog, decides for each mapping whether a run is due, and starts the due
// ones through a Runner (the sync of one mapping). Several replicas of
// `cohortsync serve` run a Scheduler each against one Redis, and each slot
// of a schedule runs once across all of them.
//
// A slot is a time a schedule names (every hour, every day at midnight, each
// time of a cron expression, in Config.Location). A slot is due a jitter
// after its time, the same on every replica (a hash of the mapping's name and
// the slot, below Config.MaxJitter and half the interval), so that the
// mappings of one deployment do not all start on the hour. Only the latest
// due slot is ever run: after downtime a missed schedule runs once, not once
// per missed slot. A one-time schedule runs once per mapping content (its
// Hash), so changing the mapping runs it again. Paused mappings and push
// sources never run from here.
//
// Which replica runs a slot is settled in Redis, per mapping, under
// Config.Prefix and one Cluster hash tag:
//
//	<prefix>{mapping:<name>}:schedule  hash: done (last slot finished), result, by, at,
//	                                   attempt_slot, attempts, retry_at (a failing slot)
//	<prefix>{mapping:<name>}:claim     "<owner> <nonce> <slot>" of the run in progress, with ClaimTTL
//
// where <name> is query-escaped. A replica claims a slot with a script that
// sets the claim only if there is none, the slot is not done and not waiting
// out a retry; the holder renews the claim while its run lasts and, when it
// ends, records the outcome and deletes the claim in one script. A holder
// that dies stops renewing, the claim expires and another replica claims
// the slot again; the run's own segment lease (internal/segmentlease) keeps
// two runs off one segment meanwhile. A run that fails is retried with a
// doubling wait, at most MaxAttempts times per slot, then the slot is given
// up (recorded as failed) until the next one. A run refused because another
// run holds its segment (snapshot.ErrLocked) is not an attempt: the slot
// stays due and is claimed again at a later tick.
//
// What the Scheduler decides and how runs end are reported to
// Config.OnDecision and Config.OnRunDone, where metrics and logs attach.
package schedule
