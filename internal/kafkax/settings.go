package kafkax

import (
	"net"
	"strconv"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// DefaultTopic is the membership topic of every command.
const DefaultTopic = "cohortsync.membership.v1"

// DeadLetterSuffix makes the default dead-letter topic of a membership topic.
const DeadLetterSuffix = ".dlq"

// DeadLetterTopic is the default dead-letter topic of topic: the one the
// producer creates beside it and the consumer writes to.
func DeadLetterTopic(topic string) string { return topic + DeadLetterSuffix }

// Expected forms, for setting errors.
const (
	HostPortForm = "host:port with a port in 1..65535"
	TopicForm    = "a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or .."
)

// ValidHostPort accepts "host:port" with a non-empty host and a port in
// 1..65535: the form of Kafka brokers, Redis Cluster masters and Redis URLs'
// addresses.
func ValidHostPort(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// CheckBrokers requires at least one broker and every one to be host:port;
// it returns one *setting.Error per problem, for setting name.
func CheckBrokers(name string, brokers []string) []error {
	if len(brokers) == 0 {
		return []error{setting.Missing(name, "comma-separated %s", HostPortForm)}
	}
	var errs []error
	for _, b := range brokers {
		if !ValidHostPort(b) {
			errs = append(errs, setting.Invalid(name, b, "%s", HostPortForm))
		}
	}
	return errs
}

// ValidTopic applies Kafka's topic name rules, so a typo fails at start
// rather than as a broker error later.
func ValidTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}
