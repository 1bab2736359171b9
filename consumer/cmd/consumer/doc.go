// Command consumer applies cohortsync membership events from Kafka to Redis
// in the LaunchDarkly Big Segments layout, where LaunchDarkly server-side
// SDKs read them. Each process is one member of a Kafka consumer group; up
// to as many as the topic has partitions share the work.
//
// Usage:
//
//	consumer --kafka-brokers host:port,... --redis-url redis://host:6379/0 [flags]
//
// Every flag has an environment twin (KAFKA_BROKERS for --kafka-brokers,
// ...); --help lists them. The command exits 0 on SIGINT or SIGTERM after
// finishing the batch in flight, 2 for invalid settings, and 1 for a
// failure it could not retry away.
//
// The command reads the W3C trace context (traceparent headers) that the
// producer writes into messages; each applied batch gets an "apply batch"
// span linked to the sync runs it applies. The command installs no span
// exporter: the spans are recorded only by a program that embeds package
// github.com/cohortsync/cohortsync/consumer and installs a tracer provider.
package main
