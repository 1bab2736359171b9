// Package metrics exports the consumer's counters and latencies in the
// Prometheus format through client_golang, so the consumer itself needs no
// metrics library: it offers Stats and an Observer, and this package turns
// them into /metrics.
package metrics
