package consumer

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
)

// validConfig is the zero Config: every field takes its default. The
// brokers are kafkax.Config's, validated (and tested) there.
func validConfig() Config {
	return Config{}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"minimal config takes defaults", func(*Config) {}, ""},
		{"everything set", func(c *Config) {
			c.Topic, c.GroupID, c.DeadLetterTopic = "t", "g", "t-dead"
			c.RedisPrefix, c.EnvPrefixes = "ld", map[string]string{"production": "ld-prod", "staging": "ld-staging"}
			c.BatchSize, c.FlushInterval, c.SyncInterval = 100, time.Millisecond, time.Second
			c.RetryTimeout, c.ShutdownTimeout = time.Minute, time.Second
		}, ""},
		{"topic with a space", func(c *Config) { c.Topic = "my topic" }, `--topic="my topic": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"topic too long", func(c *Config) { c.Topic = strings.Repeat("t", 250) }, `--topic="` + strings.Repeat("t", 128) + `...": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"topic dot", func(c *Config) { c.Topic = ".." }, `--topic="..": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"dead-letter topic invalid", func(c *Config) { c.DeadLetterTopic = "a/b" }, `--dead-letter-topic="a/b": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"invalid topic and dead-letter topic both reported", func(c *Config) { c.Topic, c.DeadLetterTopic = "a b", "c/d" },
			`--topic="a b": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..` + "\n" + `--dead-letter-topic="c/d": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{"dead-letter topic is the topic", func(c *Config) { c.Topic, c.DeadLetterTopic = "t", "t" }, `--dead-letter-topic="t": want a topic other than --topic`},
		{"group with blanks", func(c *Config) { c.GroupID = " g" }, `--group-id=" g": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"prefix ending in a newline is a control character, not a blank", func(c *Config) { c.RedisPrefix = "ld\n" }, `--redis-prefix="ld\n": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"prefix with tab inside", func(c *Config) { c.RedisPrefix = "l\td" }, `--redis-prefix="l\td": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"prefix with trailing space", func(c *Config) { c.RedisPrefix = "ld " }, `--redis-prefix="ld ": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"environment name with a control character", func(c *Config) { c.EnvPrefixes = map[string]string{"prod\x00": "p"} }, `--env-prefix="prod\x00=p": want an environment name that is non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"prefix not utf-8", func(c *Config) { c.RedisPrefix = "\xff" }, `--redis-prefix="\xff": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"env prefix empty", func(c *Config) { c.EnvPrefixes = map[string]string{"production": ""} }, `--env-prefix="production=": want a prefix that is non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"env name empty", func(c *Config) { c.EnvPrefixes = map[string]string{"": "p"} }, `--env-prefix="=p": want an environment name that is non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`},
		{"batch size negative", func(c *Config) { c.BatchSize = -1 }, `--batch-size="-1": want an integer between 1 and 100000`},
		{"batch size too large", func(c *Config) { c.BatchSize = 100_001 }, `--batch-size="100001": want an integer between 1 and 100000`},
		{"pipelines negative", func(c *Config) { c.Pipelines = -1 }, `--pipelines="-1": want an integer between 1 and 16`},
		{"pipelines too many", func(c *Config) { c.Pipelines = 17 }, `--pipelines="17": want an integer between 1 and 16`},
		{"appliers negative", func(c *Config) { c.Appliers = -1 }, `--appliers="-1": want an integer between 1 and 16`},
		{"appliers too many", func(c *Config) { c.Appliers = 17 }, `--appliers="17": want an integer between 1 and 16`},
		{"flush interval negative", func(c *Config) { c.FlushInterval = -time.Millisecond }, `--flush-interval="-1ms": want a duration between 0 and 10s`},
		{"flush interval too long", func(c *Config) { c.FlushInterval = time.Minute }, `--flush-interval="1m0s": want a duration between 0 and 10s`},
		{"sync interval too long for the SDKs", func(c *Config) { c.SyncInterval = 61 * time.Second }, `--sync-interval="1m1s": want a duration between 1ms and 1m0s (SDKs report STALE after 120s)`},
		{"sync interval too short", func(c *Config) { c.SyncInterval = time.Microsecond }, `--sync-interval="1µs": want a duration between 1ms and 1m0s (SDKs report STALE after 120s)`},
		{"retry timeout negative", func(c *Config) { c.RetryTimeout = -time.Second }, `--retry-timeout="-1s": want a positive duration`},
		{"shutdown timeout negative", func(c *Config) { c.ShutdownTimeout = -time.Second }, `--shutdown-timeout="-1s": want a positive duration`},
		{"every invalid setting is reported, in flag order", func(c *Config) {
			c.Topic, c.GroupID = "my topic", " g"
			c.EnvPrefixes = map[string]string{"staging": "", "production": "ld\t"}
			c.BatchSize, c.SyncInterval, c.ShutdownTimeout = -1, time.Hour, -time.Second
		}, strings.Join([]string{
			`--topic="my topic": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`,
			`--group-id=" g": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`,
			`--env-prefix="production=ld\t": want a prefix that is non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`,
			`--env-prefix="staging=": want a prefix that is non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end`,
			`--batch-size="-1": want an integer between 1 and 100000`,
			`--sync-interval="1h0m0s": want a duration between 1ms and 1m0s (SDKs report STALE after 120s)`,
			`--shutdown-timeout="-1s": want a positive duration`,
		}, "\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("Validate() = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	kf := kafkaxtest.Factory(t, "127.0.0.1:9092")
	if _, err := New(validConfig(), nil, kf); err == nil {
		t.Error("New with a nil client succeeded")
	}
	if _, err := New(validConfig(), dummyClient(t), nil); err == nil {
		t.Error("New with a nil client factory succeeded")
	}
	c := validConfig()
	c.BatchSize = -1
	if _, err := New(c, dummyClient(t), kf); err == nil || err.Error() != `--batch-size="-1": want an integer between 1 and 100000` {
		t.Errorf("New = %v, want the batch size error", err)
	}
	c.BatchSize = 0
	if _, err := New(c, dummyClient(t), kf); err != nil {
		t.Errorf("New = %v, want nil", err)
	}
}
