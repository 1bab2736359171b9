// Package kafkaconf is where the shared Kafka settings lived before
// internal/kafkax; it forwards to kafkax so that importers keep building
// while they switch, and goes away once none is left.
//
// Deprecated: use internal/kafkax.
package kafkaconf
