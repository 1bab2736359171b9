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
// Each run's exclusion report is kept with it (exclusions.go): a list of
// blocks of CSV rows per run and destination, written in pipelined chunks
// while the run finds them (ExclusionWriter, bounded memory, capped by
// Config.MaxExclusions with the rest counted), expiring with the run, read
// back in order by WriteExclusions. Mapping runs stream theirs through
// mappingrun; the push receiver records each accepted batch, with its
// exclusions, through AddWithExclusions.
//
// Not yet: "applied" (the completion barrier).
package runstore
