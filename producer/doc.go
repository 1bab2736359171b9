// Package producer turns cohort snapshots into membership events on Kafka.
//
// A sync reads a snapshot's members from a source.Source (a cohort CSV
// today: package source/csvfile), sorts them into a snapshot (pkg/snapshot),
// publishes the difference from the segment's last committed snapshot as add
// and remove events (schema.Event) through package publish, and commits the
// new snapshot once Kafka acknowledged every event. The commit protocol,
// described in pkg/snapshot and driven by snapshot.Store.Sync, makes a crash
// at any point harmless: the next sync republishes what was pending first.
//
// Events carry the id of the run whose snapshot they publish: the events a
// recovery republishes keep the interrupted run's id, with fresh sequence
// numbers.
//
// Sync runs a sync in-process and returns its Summary as data, on error as
// far as the run got; the command line ("cohortsync sync", in internal/cli
// and internal/app) builds the Config, the SyncRequest and its CSV source
// and prints the Summary.
package producer
