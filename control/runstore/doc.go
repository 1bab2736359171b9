// Package runstore is the run history every replica shares: one record
// per run of a mapping into a destination (its producer.Summary and why it
// ran), kept in the control Redis for a retention period (14 days by
// default) and listed newest first.
//
// Records expire with a TTL, and the time index is trimmed of what is past
// the retention at every write (ZREMRANGEBYSCORE): pruning costs what
// expired, never a scan of everything. All keys share the {runs} hash tag,
// so a Cluster serves them from one slot.
//
// This is the first part of issue 9's run history: mapping runs are
// recorded; push batches, "applied" (the completion barrier) and
// exclusions kept with the run come next.
package runstore
