// Package kafkax is the one place kafka-go clients are built and Kafka
// errors are judged. The producer, the consumer and the tools connect to
// the same brokers with the same security settings (TLS, SASL) and must
// agree on what a broker's answer means for a retry; with one Factory and
// one Classify, a new setting or a new retriable error is added once, not
// per component.
//
// It also holds the Kafka settings every command shares: the default
// topic, the dead-letter topic's name and the validation of broker
// addresses and topic names, so every command accepts and rejects the same
// settings with the same messages.
package kafkax
