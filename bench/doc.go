// Package bench holds what cohortsync's benchmarks share: the table they
// print (one row per figure, beside its reference measured in the same
// run, with the target and whether it was met), the references themselves
// (redis-cli --pipe of the bare include sets, sort + comm, raw pipelined
// SADD), synthetic cohorts, a consumer run in the background, and the
// cleanup of what a run created in Kafka. Package bench/suite is make
// bench (issue 12's targets on services it starts); Sizing, in this
// package, is cohortsync bench, run by a user against their own Kafka and
// Redis to size a deployment. Figures are reported as ratios to references
// because absolute numbers move with the machine and ratios move only with
// the code.
package bench
