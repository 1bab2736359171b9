package producer

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.KafkaBrokers = []string{"127.0.0.1:9092"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // exact error text, "" for valid
	}{
		{"defaults with brokers are valid", func(c *Config) {}, ""},
		{"several brokers and names", func(c *Config) { c.KafkaBrokers = []string{"kafka-1:9092", "[::1]:9093"} }, ""},
		{"brokers missing", func(c *Config) { c.KafkaBrokers = nil }, "--kafka-brokers: required, want comma-separated host:port with a port in 1..65535"},
		{"broker without port", func(c *Config) { c.KafkaBrokers = []string{"kafka-1"} }, `--kafka-brokers="kafka-1": want host:port with a port in 1..65535`},
		{"broker with bad port", func(c *Config) { c.KafkaBrokers = []string{"kafka-1:99999"} }, `--kafka-brokers="kafka-1:99999": want host:port with a port in 1..65535`},
		{"topic empty", func(c *Config) { c.Topic = "" }, `--topic="": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"topic with a space", func(c *Config) { c.Topic = "a b" },
			`--topic="a b": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"topic ..", func(c *Config) { c.Topic = ".." }, `--topic="..": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"topic too long for its dead-letter topic", func(c *Config) { c.Topic = strings.Repeat("t", 246) },
			`--topic="` + strings.Repeat("t", 128) + `...": want at most 245 characters, so that its dead-letter topic <topic>.dlq fits Kafka's 249`},
		{"no partitions", func(c *Config) { c.TopicPartitions = 0 }, `--topic-partitions="0": want an integer >= 1`},
		{"no replicas", func(c *Config) { c.TopicReplicationFactor = 0 }, `--topic-replication-factor="0": want an integer between 1 and 32767`},
		{"state dir empty", func(c *Config) { c.StateDir = "" }, "--state-dir: required, want a directory path"},
		{"batch size 0", func(c *Config) { c.BatchSize = 0 }, `--batch-size="0": want an integer >= 1`},
		{"batch bytes too small", func(c *Config) { c.BatchBytes = 1000 }, `--batch-bytes="1000": want an integer between 65536 and 67108864`},
		{"batch timeout 0 (kafka-go would use 1s)", func(c *Config) { c.BatchTimeout = 0 }, `--batch-timeout="0s": want a duration between 1ms and 1s`},
		{"batch timeout too long", func(c *Config) { c.BatchTimeout = 2 * time.Second }, `--batch-timeout="2s": want a duration between 1ms and 1s`},
		{"unknown compression", func(c *Config) { c.Compression = "brotli" }, `--compression="brotli": want one of none, gzip, snappy, lz4, zstd`},
		{"send batch 0", func(c *Config) { c.SendBatch = 0 }, `--send-batch="0": want an integer >= 1`},
		{"in flight 0", func(c *Config) { c.InFlight = 0 }, `--in-flight="0": want an integer between 1 and 64`},
		{"write timeout too short", func(c *Config) { c.WriteTimeout = time.Millisecond }, `--write-timeout="1ms": want a duration >= 1s`},
		{"retry budget too short", func(c *Config) { c.RetryMaxElapsed = 0 }, `--retry-max-elapsed="0s": want a duration >= 1s`},
		{"max shrink of 1 would never refuse", func(c *Config) { c.MaxShrink = 1 }, `--max-shrink="1": want a fraction in [0, 1), 0 for off`},
		{"negative max shrink", func(c *Config) { c.MaxShrink = -0.1 }, `--max-shrink="-0.1": want a fraction in [0, 1), 0 for off`},
		{"no exclusion report kept", func(c *Config) { c.ExclusionsKeep = 0 }, `--exclusions-keep="0": want an integer >= 1`},
		{"sort chunk too small", func(c *Config) { c.SortChunkBytes = 1 }, `--sort-chunk-bytes="1": want an integer between 65536 and 2147483648`},
		{"every problem is reported", func(c *Config) { c.KafkaBrokers = nil; c.Topic = "" }, "--kafka-brokers: required, want comma-separated host:port with a port in 1..65535\n--topic=\"\": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or .."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			c.KafkaBrokers = append([]string(nil), valid.KafkaBrokers...)
			tt.change(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSyncRequestValidate(t *testing.T) {
	valid := SyncRequest{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, Input: strings.NewReader("")}
	tests := []struct {
		name   string
		change func(*SyncRequest)
		want   string
	}{
		{"valid with defaults", func(r *SyncRequest) {}, ""},
		{"env missing", func(r *SyncRequest) { r.Env = "" }, "--env: required, want non-empty UTF-8 of at most 1024 bytes"},
		{"segment with unit separator", func(r *SyncRequest) { r.Segment = "a\x1fb" }, `--segment="a\x1fb": want no unit separator 0x1f (it separates the message key's parts)`},
		{"segment too long", func(r *SyncRequest) { r.Segment = strings.Repeat("s", 1025) }, `--segment="` + strings.Repeat("s", 128) + `...": want non-empty UTF-8 of at most 1024 bytes (longer than 1024 bytes)`},
		{"kind not UTF-8", func(r *SyncRequest) { r.ContextKind = "\xff" }, `--context-kind="\xff": want non-empty UTF-8 of at most 1024 bytes (not valid UTF-8)`},
		{"generation 0 takes the default", func(r *SyncRequest) { r.Generation = 0 }, ""},
		{"negative generation", func(r *SyncRequest) { r.Generation = -2 }, `--generation="-2": want an integer >= 1`},
		{"no input", func(r *SyncRequest) { r.Input = nil }, "--csv: required, want a cohort CSV file, plain or gzip"},
		{"several problems", func(r *SyncRequest) { r.Env = ""; r.Generation = -1 }, "--env: required, want non-empty UTF-8 of at most 1024 bytes\n--generation=\"-1\": want an integer >= 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid
			tt.change(&r)
			err := r.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewRunID(t *testing.T) {
	at := time.Date(2026, 11, 25, 20, 15, 0, 0, time.UTC)
	a, b := NewRunID(at), NewRunID(at)
	if a == b {
		t.Fatalf("two run ids are equal: %s", a)
	}
	if !strings.HasPrefix(a, "20261125T201500Z-") || len(a) != len("20261125T201500Z-1a2b3c4d") {
		t.Fatalf("run id %q not of the form 20261125T201500Z-1a2b3c4d", a)
	}
	if later := NewRunID(at.Add(time.Second)); later <= a || later <= b {
		t.Fatalf("run id %q of a later start does not sort after %q", later, a)
	}
}
