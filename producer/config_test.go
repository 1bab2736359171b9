package producer

import (
	"bytes"
	"context"
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
		{"brokers missing", func(c *Config) { c.KafkaBrokers = nil }, "--kafka-brokers: required"},
		{"broker without port", func(c *Config) { c.KafkaBrokers = []string{"kafka-1"} }, `--kafka-brokers: "kafka-1" is not host:port`},
		{"broker with bad port", func(c *Config) { c.KafkaBrokers = []string{"kafka-1:99999"} }, `--kafka-brokers: "kafka-1:99999": port "99999" is not a number in 1..65535`},
		{"topic empty", func(c *Config) { c.Topic = "" }, "--topic: required"},
		{"topic with a space", func(c *Config) { c.Topic = "a b" },
			`--topic: "a b" has ' '; topic names use only [a-zA-Z0-9._-]`},
		{"topic ..", func(c *Config) { c.Topic = ".." }, `--topic: ".." is not a valid topic name`},
		{"topic too long for its dead-letter topic", func(c *Config) { c.Topic = strings.Repeat("t", 246) },
			`--topic: its dead-letter topic: "` + strings.Repeat("t", 246) + `.dlq" is longer than 249 characters`},
		{"no partitions", func(c *Config) { c.TopicPartitions = 0 }, "--topic-partitions: must be >= 1, got 0"},
		{"no replicas", func(c *Config) { c.TopicReplicationFactor = 0 }, "--topic-replication-factor: must be between 1 and 32767, got 0"},
		{"state dir empty", func(c *Config) { c.StateDir = "" }, "--state-dir: required"},
		{"batch size 0", func(c *Config) { c.BatchSize = 0 }, "--batch-size: must be >= 1, got 0"},
		{"batch bytes too small", func(c *Config) { c.BatchBytes = 1000 }, "--batch-bytes: must be between 65536 and 67108864, got 1000"},
		{"batch timeout 0 (kafka-go would use 1s)", func(c *Config) { c.BatchTimeout = 0 }, "--batch-timeout: must be between 1ms and 1s, got 0s"},
		{"batch timeout too long", func(c *Config) { c.BatchTimeout = 2 * time.Second }, "--batch-timeout: must be between 1ms and 1s, got 2s"},
		{"unknown compression", func(c *Config) { c.Compression = "brotli" }, `--compression: "brotli" is not one of none, gzip, snappy, lz4, zstd`},
		{"send batch 0", func(c *Config) { c.SendBatch = 0 }, "--send-batch: must be >= 1, got 0"},
		{"in flight 0", func(c *Config) { c.InFlight = 0 }, "--in-flight: must be between 1 and 64, got 0"},
		{"write timeout too short", func(c *Config) { c.WriteTimeout = time.Millisecond }, "--write-timeout: must be >= 1s, got 1ms"},
		{"retry budget too short", func(c *Config) { c.RetryMaxElapsed = 0 }, "--retry-max-elapsed: must be >= 1s, got 0s"},
		{"max shrink of 1 would never refuse", func(c *Config) { c.MaxShrink = 1 }, "--max-shrink: must be in [0, 1), got 1"},
		{"negative max shrink", func(c *Config) { c.MaxShrink = -0.1 }, "--max-shrink: must be in [0, 1), got -0.1"},
		{"no exclusion report kept", func(c *Config) { c.ExclusionsKeep = 0 }, "--exclusions-keep: must be >= 1, got 0"},
		{"sort chunk too small", func(c *Config) { c.SortChunkBytes = 1 }, "--sort-chunk-bytes: must be between 65536 and 2147483648, got 1"},
		{"every problem is reported", func(c *Config) { c.KafkaBrokers = nil; c.Topic = "" }, "--kafka-brokers: required\n--topic: required"},
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
		{"env missing", func(r *SyncRequest) { r.Env = "" }, "--env: empty"},
		{"segment with unit separator", func(r *SyncRequest) { r.Segment = "a\x1fb" }, "--segment: contains the unit separator 0x1f"},
		{"segment too long", func(r *SyncRequest) { r.Segment = strings.Repeat("s", 1025) }, "--segment: longer than 1024 bytes"},
		{"kind not UTF-8", func(r *SyncRequest) { r.ContextKind = "\xff" }, "--context-kind: not valid UTF-8"},
		{"generation 0 takes the default", func(r *SyncRequest) { r.Generation = 0 }, ""},
		{"negative generation", func(r *SyncRequest) { r.Generation = -2 }, "--generation: must be >= 1, got -2"},
		{"no input", func(r *SyncRequest) { r.Input = nil }, "--csv: required"},
		{"several problems", func(r *SyncRequest) { r.Env = ""; r.Generation = -1 }, "--env: empty\n--generation: must be >= 1, got -1"},
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

func TestMainCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, code: ExitUsage, wantStderr: "usage: producer sync"},
		{name: "help", args: []string{"--help"}, code: ExitOK, wantStdout: "usage: producer sync"},
		{name: "sync help lists flags with env twins", args: []string{"sync", "--help"}, code: ExitOK,
			wantStderr: "(env KAFKA_BROKERS)"},
		{name: "sync help names request twins", args: []string{"sync", "-h"}, code: ExitOK, wantStderr: "(env SYNC_ENV)"},
		{name: "unknown command", args: []string{"push"}, code: ExitUsage, wantStderr: `unknown command "push"`},
		{name: "unknown flag", args: []string{"sync", "--nope"}, code: ExitUsage, wantStderr: "flag provided but not defined: -nope"},
		{name: "explicit generation 0 is an error", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv",
			"--kafka-brokers", "127.0.0.1:9", "--generation", "0"}, code: ExitUsage, wantStderr: "--generation: must be >= 1, got 0"},
		{name: "missing settings are all named", args: []string{"sync"}, code: ExitUsage,
			wantStderr: "--csv: required\n  --kafka-brokers: required\n  --env: empty\n  --segment: empty"},
		{name: "environment twins fill settings", args: []string{"sync", "--csv", "/nonexistent.csv"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "SYNC_ENV": "e", "SYNC_SEGMENT": "s"},
			code: ExitUsage, wantStderr: "--csv: open /nonexistent.csv: no such file or directory"},
		{name: "plain ENV is not the env twin", args: []string{"sync", "--csv", "x"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "ENV": "e", "SYNC_SEGMENT": "s"},
			code: ExitUsage, wantStderr: "--env: empty"},
		{name: "flags win over the environment", args: []string{"sync", "--csv", "x", "--env", "e", "--segment", "s", "--topic-partitions", "0"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "TOPIC_PARTITIONS": "3"},
			code: ExitUsage, wantStderr: "--topic-partitions: must be >= 1, got 0"},
		{name: "bad environment value", args: []string{"sync"}, env: map[string]string{"TOPIC_PARTITIONS": "many"},
			code: ExitUsage, wantStderr: `environment variable TOPIC_PARTITIONS="many"`},
		{name: "positional arguments rejected", args: []string{"sync", "extra"}, code: ExitUsage, wantStderr: "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			code := Main(context.Background(), tt.args, &stdout, &stderr, lookup)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
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
