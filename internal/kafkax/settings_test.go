package kafkax

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckBrokers(t *testing.T) {
	const form = `want host:port with a port in 1..65535`
	for _, tc := range []struct {
		name    string
		brokers []string
		want    string
	}{
		{"one broker", []string{"127.0.0.1:9092"}, ""},
		{"hostname and IPv6", []string{"kafka-0.kafka:9092", "[::1]:9093"}, ""},
		{"none", nil, "--kafka-brokers: required, want comma-separated host:port with a port in 1..65535"},
		{"no port", []string{"kafka"}, `--kafka-brokers="kafka": ` + form},
		{"empty host", []string{":9092"}, `--kafka-brokers=":9092": ` + form},
		{"port zero", []string{"k:0"}, `--kafka-brokers="k:0": ` + form},
		{"port too large", []string{"k:70000"}, `--kafka-brokers="k:70000": ` + form},
		{"every bad one is named", []string{"a", "b:1", "c:x"}, `--kafka-brokers="a": ` + form + "\n" + `--kafka-brokers="c:x": ` + form},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := errors.Join(CheckBrokers("kafka-brokers", tc.brokers)...); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("CheckBrokers(%q) = %q, want %q", tc.brokers, got, tc.want)
			}
		})
	}
}

func TestValidTopic(t *testing.T) {
	for _, tc := range []struct {
		name, topic string
		want        bool
	}{
		{"default", DefaultTopic, true},
		{"dead-letter default", DeadLetterTopic(DefaultTopic), true},
		{"empty", "", false},
		{"space", "my topic", false},
		{"slash", "a/b", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"too long", strings.Repeat("t", 250), false},
		{"longest allowed", strings.Repeat("t", 249), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidTopic(tc.topic); got != tc.want {
				t.Fatalf("ValidTopic(%q) = %v, want %v", tc.topic, got, tc.want)
			}
		})
	}
}
