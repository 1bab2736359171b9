// Package freshness tells how current the Redis store is and says so to the
// SDKs: it keeps <prefix>:big_segments_synchronized_on moving with
// watermarks over the consumer group's committed offsets, and lets callers
// wait until everything produced before a moment is applied (the barrier a
// sync run's completion builds on).
//
// A check records its start time and the end offset of every partition
// listed after it; once the group's committed offsets reach those ends,
// everything produced before that time is in Redis, and that time is
// written. A steady flow of new events therefore never starves the refresh,
// while a stopped or lagging consumer (one that does not reach its
// watermarks) lets the SDKs report STALE.
//
// It is its own type, with its own lock, so the apply path only reports how
// many messages it committed (Tracker.Committed) and never shares state with
// the checks.
package freshness
