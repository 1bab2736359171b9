// Package suite is make bench: issue 12's five targets, each measured
// against real Kafka and Redis beside its reference in the same run, and
// printed as one table (bench.WriteTable) with the target and whether it
// was met. Sizes are settings, so that a small run checks the suite in
// about a minute while the figures in BENCHMARKS.md come from the full
// sizes (2,000,000 and 10,000,000 members) on a quiet machine.
//
// The producer runs as a separate process, the cohortsync binary's sync
// command, so that the peak RSS reported is its own; the consumer runs in
// this process, as the library the cohortsync consume command runs.
package suite
