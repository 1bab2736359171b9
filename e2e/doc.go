// Package e2e holds the end-to-end tests: cohort CSV → producer → Kafka →
// consumer group → Redis → LaunchDarkly's own SDKs evaluating a flag. They run
// on the in-process backends by default and on the real broker and Redis
// (standalone and Cluster) under scripts/test.sh.
package e2e
