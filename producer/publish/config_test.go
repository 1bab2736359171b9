package publish

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig
	testenv.RunValidate(t, valid, []testenv.ValidateCase[Config]{
		{Name: "defaults are valid", Change: func(c *Config) {}, Want: ""},
		{Name: "topic empty", Change: func(c *Config) { c.Topic = "" }, Want: `--topic="": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{Name: "topic with a space", Change: func(c *Config) { c.Topic = "a b" }, Want: `--topic="a b": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{Name: "topic ..", Change: func(c *Config) { c.Topic = ".." }, Want: `--topic="..": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{Name: "topic too long for its dead-letter topic", Change: func(c *Config) { c.Topic = strings.Repeat("t", 246) }, Want: `--topic="` + strings.Repeat("t", 128) + `...": want at most 245 characters, so that its dead-letter topic <topic>.dlq fits Kafka's 249`},
		{Name: "no partitions", Change: func(c *Config) { c.TopicPartitions = 0 }, Want: `--topic-partitions="0": want an integer >= 1`},
		{Name: "no replicas", Change: func(c *Config) { c.TopicReplicationFactor = 0 }, Want: `--topic-replication-factor="0": want an integer between 1 and 32767`},
		{Name: "batch size 0", Change: func(c *Config) { c.BatchSize = 0 }, Want: `--batch-size="0": want an integer >= 1`},
		{Name: "batch bytes too small", Change: func(c *Config) { c.BatchBytes = 1000 }, Want: `--batch-bytes="1000": want an integer between 65536 and 67108864`},
		{Name: "batch timeout 0 (kafka-go would use 1s)", Change: func(c *Config) { c.BatchTimeout = 0 }, Want: `--batch-timeout="0s": want a duration between 1ms and 1s`},
		{Name: "batch timeout too long", Change: func(c *Config) { c.BatchTimeout = 2 * time.Second }, Want: `--batch-timeout="2s": want a duration between 1ms and 1s`},
		{Name: "unknown compression", Change: func(c *Config) { c.Compression = "brotli" }, Want: `--compression="brotli": want one of none, gzip, snappy, lz4, zstd`},
		{Name: "send batch 0", Change: func(c *Config) { c.SendBatch = 0 }, Want: `--send-batch="0": want an integer >= 1`},
		{Name: "in flight 0", Change: func(c *Config) { c.InFlight = 0 }, Want: `--in-flight="0": want an integer between 1 and 64`},
		{Name: "write timeout too short", Change: func(c *Config) { c.WriteTimeout = time.Millisecond }, Want: `--write-timeout="1ms": want a duration >= 1s`},
		{Name: "retry budget too short", Change: func(c *Config) { c.RetryMaxElapsed = 0 }, Want: `--retry-max-elapsed="0s": want a duration >= 1s`},
		{Name: "every problem is reported", Change: func(c *Config) { c.Topic = ""; c.InFlight = 0 }, Want: "--topic=\"\": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..\n--in-flight=\"0\": want an integer between 1 and 64"},
	})
}
