// Package kafkaconf holds the Kafka settings the producer and the consumer
// must agree on — the default topic, the dead-letter topic's name — and the
// validation of broker addresses and topic names, so both binaries accept and
// reject the same settings with the same messages.
package kafkaconf
