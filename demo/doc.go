// Package demo runs cohortsync end to end on one machine with nothing but Go:
// an in-process Kafka (kfake), redis-server when it is installed or else an
// embedded Redis (miniredis), the real producer and consumer, and
// LaunchDarkly's Go SDK evaluating a flag against the synced segment.
//
// It syncs a first cohort snapshot (every member an add), then a second one
// (only who entered or left), and after each shows the run summary and what a
// flag evaluator sees for a few context keys. It is what `make demo` runs.
package demo
