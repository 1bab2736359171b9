package consumer

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/redisconn"
)

func validConfig() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, Redis: redisconn.Config{URL: "redis://127.0.0.1:6379/0"}}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"minimal config takes defaults", func(*Config) {}, ""},
		{"cluster instead of url", func(c *Config) {
			c.Redis = redisconn.Config{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}}
		}, ""},
		{"everything set", func(c *Config) {
			c.Topic, c.GroupID, c.DeadLetterTopic = "t", "g", "t-dead"
			c.RedisPrefix, c.EnvPrefixes = "ld", map[string]string{"production": "ld-prod", "staging": "ld-staging"}
			c.BatchSize, c.FlushInterval, c.SyncInterval = 100, time.Millisecond, time.Second
			c.RetryTimeout, c.ShutdownTimeout, c.MetricsAddr = time.Minute, time.Second, "127.0.0.1:0"
		}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "--kafka-brokers: required"},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka"} }, `--kafka-brokers: "kafka" is not host:port`},
		{"broker with bad port", func(c *Config) { c.Brokers = []string{"kafka:http"} }, `--kafka-brokers: "kafka:http": port "http" is not a number in 1..65535`},
		{"topic with a space", func(c *Config) { c.Topic = "my topic" }, `--topic: "my topic" has ' '; topic names use only [a-zA-Z0-9._-]`},
		{"topic too long", func(c *Config) { c.Topic = strings.Repeat("t", 250) }, `--topic: "` + strings.Repeat("t", 250) + `" is longer than 249 characters`},
		{"topic dot", func(c *Config) { c.Topic = ".." }, `--topic: ".." is not a valid topic name`},
		{"dead-letter topic invalid", func(c *Config) { c.DeadLetterTopic = "a/b" }, `--dead-letter-topic: "a/b" has '/'; topic names use only [a-zA-Z0-9._-]`},
		{"invalid topic and dead-letter topic both reported", func(c *Config) { c.Topic, c.DeadLetterTopic = "a b", "c/d" },
			`--topic: "a b" has ' '; topic names use only [a-zA-Z0-9._-]` + "\n" + `--dead-letter-topic: "c/d" has '/'; topic names use only [a-zA-Z0-9._-]`},
		{"dead-letter topic is the topic", func(c *Config) { c.Topic, c.DeadLetterTopic = "t", "t" }, `--dead-letter-topic: must differ from --topic "t"`},
		{"group with blanks", func(c *Config) { c.GroupID = " g" }, `--group-id: " g" has leading or trailing blanks`},
		{"prefix ending in a newline is a control character, not a blank", func(c *Config) { c.RedisPrefix = "ld\n" }, `--redis-prefix: "ld\n" contains a control character`},
		{"prefix with tab inside", func(c *Config) { c.RedisPrefix = "l\td" }, `--redis-prefix: "l\td" contains a control character`},
		{"prefix with trailing space", func(c *Config) { c.RedisPrefix = "ld " }, `--redis-prefix: "ld " has leading or trailing blanks`},
		{"environment name with a control character", func(c *Config) { c.EnvPrefixes = map[string]string{"prod\x00": "p"} }, `--env-prefix: environment "prod\x00": "prod\x00" contains a control character`},
		{"prefix not utf-8", func(c *Config) { c.RedisPrefix = "\xff" }, `--redis-prefix: "\xff" is not valid UTF-8`},
		{"env prefix empty", func(c *Config) { c.EnvPrefixes = map[string]string{"production": ""} }, `--env-prefix: prefix of environment "production": required`},
		{"env name empty", func(c *Config) { c.EnvPrefixes = map[string]string{"": "p"} }, `--env-prefix: environment "": required`},
		{"batch size negative", func(c *Config) { c.BatchSize = -1 }, "--batch-size: -1 is not between 1 and 100000"},
		{"batch size too large", func(c *Config) { c.BatchSize = 100_001 }, "--batch-size: 100001 is not between 1 and 100000"},
		{"flush interval negative", func(c *Config) { c.FlushInterval = -time.Millisecond }, "--flush-interval: -1ms is not between 0 and 10s"},
		{"flush interval too long", func(c *Config) { c.FlushInterval = time.Minute }, "--flush-interval: 1m0s is not between 0 and 10s"},
		{"sync interval too long for the SDKs", func(c *Config) { c.SyncInterval = 61 * time.Second }, "--sync-interval: 1m1s is not between 1ms and 1m0s (SDKs report STALE after 120s)"},
		{"sync interval too short", func(c *Config) { c.SyncInterval = time.Microsecond }, "--sync-interval: 1µs is not between 1ms and 1m0s (SDKs report STALE after 120s)"},
		{"retry timeout negative", func(c *Config) { c.RetryTimeout = -time.Second }, "--retry-timeout: -1s is negative"},
		{"shutdown timeout negative", func(c *Config) { c.ShutdownTimeout = -time.Second }, "--shutdown-timeout: -1s is negative"},
		{"metrics address without port", func(c *Config) { c.MetricsAddr = "localhost" }, `--metrics: "localhost" is not host:port`},
		{"no redis", func(c *Config) { c.Redis = redisconn.Config{} }, "--redis-url, --redis-cluster-addrs: exactly one is required, got neither"},
		{"both redis", func(c *Config) { c.Redis.ClusterAddrs = []string{"127.0.0.1:7000"} }, "--redis-url, --redis-cluster-addrs: exactly one is required, got both"},
		{"every bad broker is reported", func(c *Config) { c.Brokers = []string{"kafka", "127.0.0.1:9092", "k:0"} },
			`--kafka-brokers: "kafka" is not host:port` + "\n" + `--kafka-brokers: "k:0": port "0" is not a number in 1..65535`},
		{"every invalid setting is reported, in flag order, with redis last", func(c *Config) {
			c.Brokers, c.Topic, c.GroupID = nil, "my topic", " g"
			c.EnvPrefixes = map[string]string{"staging": "", "production": "ld\t"}
			c.BatchSize, c.SyncInterval, c.ShutdownTimeout = -1, time.Hour, -time.Second
			c.MetricsAddr, c.Redis = "localhost", redisconn.Config{}
		}, strings.Join([]string{
			"--kafka-brokers: required",
			`--topic: "my topic" has ' '; topic names use only [a-zA-Z0-9._-]`,
			`--group-id: " g" has leading or trailing blanks`,
			`--env-prefix: prefix of environment "production": "ld\t" contains a control character`,
			`--env-prefix: prefix of environment "staging": required`,
			"--batch-size: -1 is not between 1 and 100000",
			"--sync-interval: 1h0m0s is not between 1ms and 1m0s (SDKs report STALE after 120s)",
			"--shutdown-timeout: -1s is negative",
			`--metrics: "localhost" is not host:port`,
			"--redis-url, --redis-cluster-addrs: exactly one is required, got neither",
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

func TestNewIgnoresRedisSettingsButValidatesTheRest(t *testing.T) {
	if _, err := New(Config{Brokers: []string{"127.0.0.1:9092"}}, nil); err == nil {
		t.Error("New with a nil client succeeded")
	}
	c := validConfig()
	c.Redis = redisconn.Config{}
	c.BatchSize = -1
	if _, err := New(c, dummyClient(t)); err == nil || err.Error() != "--batch-size: -1 is not between 1 and 100000" {
		t.Errorf("New = %v, want the batch size error", err)
	}
	c.BatchSize = 0
	if _, err := New(c, dummyClient(t)); err != nil {
		t.Errorf("New without Redis settings = %v, want nil (it takes a client)", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--kafka-brokers", "k:9092", "--redis-url", "redis://r:6379"},
			check: func(t *testing.T, c Config) {
				c = c.withDefaults()
				if c.Topic != DefaultTopic || c.GroupID != DefaultGroupID || c.DeadLetterTopic != DefaultTopic+".dlq" ||
					c.RedisPrefix != "launchdarkly" || c.BatchSize != 20000 || c.FlushInterval != 20*time.Millisecond ||
					c.SyncInterval != 5*time.Second || c.RetryTimeout != 5*time.Minute || c.ShutdownTimeout != 10*time.Second {
					t.Errorf("defaults: %+v", c)
				}
			},
		},
		{
			name: "environment twins",
			env: map[string]string{
				"KAFKA_BROKERS": "a:1,b:2", "REDIS_CLUSTER_ADDRS": "r1:7000, r2:7001", "TOPIC": "events",
				"ENV_PREFIX": "production=ld-prod,staging=ld-stg", "BATCH_SIZE": "100", "SYNC_INTERVAL": "2s",
			},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.Brokers, ",") != "a:1,b:2" || strings.Join(c.Redis.ClusterAddrs, ",") != "r1:7000,r2:7001" ||
					c.Topic != "events" || c.EnvPrefixes["production"] != "ld-prod" || c.EnvPrefixes["staging"] != "ld-stg" ||
					c.BatchSize != 100 || c.SyncInterval != 2*time.Second {
					t.Errorf("from environment: %+v", c)
				}
				if c.withDefaults().DeadLetterTopic != "events.dlq" {
					t.Errorf("dead-letter topic %q does not follow --topic", c.withDefaults().DeadLetterTopic)
				}
			},
		},
		{
			name: "flag wins over environment",
			args: []string{"--topic", "from-flag"},
			env:  map[string]string{"TOPIC": "from-env"},
			check: func(t *testing.T, c Config) {
				if c.Topic != "from-flag" {
					t.Errorf("topic = %q", c.Topic)
				}
			},
		},
		{name: "explicit zero batch size", args: []string{"--batch-size", "0"}, wantErr: "--batch-size: 0 is not > 0"},
		{name: "explicit zero interval from environment", env: map[string]string{"FLUSH_INTERVAL": "0s"}, wantErr: "--flush-interval: 0s is not > 0"},
		{name: "explicit empty topic", args: []string{"--topic="}, wantErr: "--topic: empty"},
		{name: "an explicit zero does not hide the other problems", args: []string{"--batch-size", "-1", "--kafka-brokers", "bad", "--redis-url", "redis://r:1/0"},
			wantErr: "--batch-size: -1 is not > 0\n--kafka-brokers: \"bad\" is not host:port"},
		{name: "malformed env prefix", args: []string{"--env-prefix", "production"}, wantErr: `invalid value "production" for flag -env-prefix: "production" is not key=value`},
		{name: "bad environment value", env: map[string]string{"BATCH_SIZE": "many"}, wantErr: `environment variable BATCH_SIZE="many": parse error`},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			var out bytes.Buffer
			c, err := ParseFlags("consumer", tc.args, lookup, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestHelpListsEverySettingWithItsEnvironmentVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := ParseFlags("consumer", []string{"--help"}, func(string) (string, bool) { return "", false }, &out)
	if err != flag.ErrHelp {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{
		"-kafka-brokers", "(env KAFKA_BROKERS)", "-topic", "-group-id", "-dead-letter-topic", "-redis-url", "(env REDIS_URL)",
		"-redis-cluster-addrs", "-redis-prefix", "-env-prefix", "-batch-size", "-flush-interval", "-sync-interval",
		"-retry-timeout", "-shutdown-timeout", "-metrics", `(default "cohortsync.membership.v1")`, "(default 20000)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}
