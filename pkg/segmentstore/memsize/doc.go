// Package memsize measures the Redis memory of one Big Segments membership
// in three layouts (issue 12 target 3): the bare layout (include sets alone,
// what LaunchDarkly's own writer stores), cohortsync's before
// since-tracking (include sets and a set of the members) and the one
// segmentstore.Writer writes. It needs a real redis-server: the figure is
// INFO memory's used_memory delta, which miniredis does not report. The Go
// benchmark BenchmarkMemoryPerMembership and the bench command (make bench)
// both take their figures from Measure.
package memsize
