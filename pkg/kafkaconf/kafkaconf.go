package kafkaconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// DefaultTopic is the membership topic of both binaries.
const DefaultTopic = "cohortsync.membership.v1"

// DeadLetterSuffix makes the default dead-letter topic of a membership topic.
const DeadLetterSuffix = ".dlq"

// DeadLetterTopic is the default dead-letter topic of topic: the one the
// producer creates beside it and the consumer writes to.
func DeadLetterTopic(topic string) string { return topic + DeadLetterSuffix }

// CheckHostPort accepts "host:port" with a non-empty host and a port in
// 1..65535: the form of Kafka brokers, Redis Cluster masters and listen
// addresses.
func CheckHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1..65535", a, port)
	}
	return nil
}

// CheckBrokers requires at least one broker and every one to be host:port.
// It returns one error per problem, so a caller can prefix each with its flag.
func CheckBrokers(brokers []string) []error {
	if len(brokers) == 0 {
		return []error{errors.New("required")}
	}
	var errs []error
	for _, b := range brokers {
		if err := CheckHostPort(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// CheckTopic applies Kafka's topic name rules, so a typo fails at start
// rather than as a broker error later.
func CheckTopic(t string) error {
	switch {
	case t == "":
		return errors.New("required")
	case len(t) > 249:
		return fmt.Errorf("%q is longer than 249 characters", t)
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q has %q; topic names use only [a-zA-Z0-9._-]", t, r)
		}
	}
	return nil
}
