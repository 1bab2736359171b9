// Package metrics exports the consumer's counters and latencies and the
// scheduler's decisions and runs in the Prometheus format through
// client_golang, so neither needs a metrics library: the consumer offers
// Stats and an Observer, the scheduler its OnDecision and OnRunDone hooks,
// and this package turns them into /metrics (Handler serves several sets on
// one endpoint).
package metrics
