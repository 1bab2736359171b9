package kafkaconf

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckBrokers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []string
		want    string
	}{
		{"one broker", []string{"127.0.0.1:9092"}, ""},
		{"hostname and IPv6", []string{"kafka-0.kafka:9092", "[::1]:9093"}, ""},
		{"none", nil, "required"},
		{"no port", []string{"kafka"}, `"kafka" is not host:port`},
		{"empty host", []string{":9092"}, `":9092" is not host:port`},
		{"port zero", []string{"k:0"}, `"k:0": port "0" is not a number in 1..65535`},
		{"port too large", []string{"k:70000"}, `"k:70000": port "70000" is not a number in 1..65535`},
		{"every bad one is named", []string{"a", "b:1", "c:x"}, `"a" is not host:port` + "\n" + `"c:x": port "x" is not a number in 1..65535`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := errors.Join(CheckBrokers(tc.brokers)...); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("CheckBrokers(%q) = %q, want %q", tc.brokers, got, tc.want)
			}
		})
	}
}

func TestCheckTopic(t *testing.T) {
	for _, tc := range []struct{ name, topic, want string }{
		{"default", DefaultTopic, ""},
		{"dead-letter default", DeadLetterTopic(DefaultTopic), ""},
		{"empty", "", "required"},
		{"space", "my topic", `"my topic" has ' '; topic names use only [a-zA-Z0-9._-]`},
		{"slash", "a/b", `"a/b" has '/'; topic names use only [a-zA-Z0-9._-]`},
		{"dot", ".", `"." is not a valid topic name`},
		{"too long", strings.Repeat("t", 250), `"` + strings.Repeat("t", 250) + `" is longer than 249 characters`},
		{"longest allowed", strings.Repeat("t", 249), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTopic(tc.topic)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("CheckTopic(%q) = %q, want %q", tc.topic, got, tc.want)
			}
		})
	}
}
