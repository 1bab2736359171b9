package kafkaconf

import "github.com/cohortsync/cohortsync/internal/kafkax"

// DefaultTopic is the membership topic of every command.
//
// Deprecated: use kafkax.DefaultTopic.
const DefaultTopic = kafkax.DefaultTopic

// DeadLetterSuffix makes the default dead-letter topic of a membership topic.
//
// Deprecated: use kafkax.DeadLetterSuffix.
const DeadLetterSuffix = kafkax.DeadLetterSuffix

// HostPortForm is the expected form of an address, for setting errors.
//
// Deprecated: use kafkax.HostPortForm.
const HostPortForm = kafkax.HostPortForm

// TopicForm is the expected form of a topic name, for setting errors.
//
// Deprecated: use kafkax.TopicForm.
const TopicForm = kafkax.TopicForm

// DeadLetterTopic is the default dead-letter topic of topic.
//
// Deprecated: use kafkax.DeadLetterTopic.
func DeadLetterTopic(topic string) string { return kafkax.DeadLetterTopic(topic) }

// ValidHostPort accepts "host:port" with a non-empty host and a port in
// 1..65535.
//
// Deprecated: use kafkax.ValidHostPort.
func ValidHostPort(a string) bool { return kafkax.ValidHostPort(a) }

// CheckBrokers requires at least one broker and every one to be host:port.
//
// Deprecated: use kafkax.CheckBrokers.
func CheckBrokers(name string, brokers []string) []error { return kafkax.CheckBrokers(name, brokers) }

// ValidTopic applies Kafka's topic name rules.
//
// Deprecated: use kafkax.ValidTopic.
func ValidTopic(t string) bool { return kafkax.ValidTopic(t) }
