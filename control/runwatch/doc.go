// Package runwatch tells when a run is truly done: it marks a published run
// "applied" once the consumer group has committed past the run's barrier
// (freshness.Barrier: the end offsets listed after the run's last event was
// acknowledged, on every partition the run may have written to), and "set
// aside" instead when the consumer set events of the run's destination aside
// meanwhile (segmentlease.Gaps moved), since those events are not in Redis
// until the next run of the segment repairs it.
//
// A run whose consumer is down stays "published, not applied": nothing here
// assumes that an acknowledged event will be applied. serve runs a Watcher
// beside its scheduler; sync --mapping --wait waits for its own run with
// Wait. Several replicas may check the same runs: marking is idempotent.
package runwatch
