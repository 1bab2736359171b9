// Package producer turns cohort snapshots into membership events on Kafka.
//
// A sync reads a cohort CSV (pkg/cohortcsv), sorts its members into a
// snapshot (pkg/snapshot), publishes the difference from the segment's last
// committed snapshot as add and remove events (schema.Event) to the
// membership topic, and commits the new snapshot once Kafka acknowledged
// every event. The commit protocol, described in pkg/snapshot, makes a crash
// at any point harmless: the next sync republishes what was pending first.
//
// Events carry the id of the run whose snapshot they publish: the events a
// recovery republishes keep the interrupted run's id, with fresh sequence
// numbers.
//
// Sync runs a sync in-process; the command line ("cohortsync sync", in
// internal/cli) binds its flags to Config and SyncRequest and calls it.
package producer
