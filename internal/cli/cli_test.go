package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

func run(t *testing.T, ctx context.Context, args []string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = Main(ctx, args, &out, &errOut, lookup)
	return code, out.String(), errOut.String()
}

func TestCommandLine(t *testing.T) {
	const hp = "want comma-separated host:port with a port in 1..65535"
	// The Kafka connection settings (internal/kafkax) of both commands.
	kafkaFlags := []string{"[env KAFKA_CLIENT_ID]", "[env KAFKA_DIAL_TIMEOUT] (default 10s)", "--kafka-tls[=true|false]", "[env KAFKA_TLS]",
		"--kafka-tls-ca-file string", "[env KAFKA_TLS_CA_FILE]", "[env KAFKA_TLS_CERT_FILE]", "[env KAFKA_TLS_KEY_FILE]",
		"[env KAFKA_TLS_SERVER_NAME]", "[env KAFKA_TLS_INSECURE_SKIP_VERIFY]", "--kafka-sasl-mechanism string", "[env KAFKA_SASL_MECHANISM]",
		"[env KAFKA_SASL_USERNAME]", "[env KAFKA_SASL_PASSWORD]"}
	runCases(t, []commandCase{
		{name: "no command prints the commands", args: nil, code: ExitOK, wantStdout: []string{"Available Commands:", "sync", "consume", "completion"}},
		{name: "help", args: []string{"--help"}, code: ExitOK, wantStdout: []string{"Usage:", "cohortsync [command]"}},
		{name: "sync help lists flags with env twins and defaults", args: []string{"sync", "--help"}, code: ExitOK,
			wantStdout: []string{"--kafka-brokers list", "[env KAFKA_BROKERS]", "[env SYNC_ENV]", "[env PRODUCER_BATCH_SIZE] (default 4000)",
				`[env TOPIC] (default "cohortsync.membership.v1")`, "[env PRODUCER_STATE_DIR]", "[env LOG_LEVEL]"}},
		{name: "consume help lists flags with env twins and defaults", args: []string{"consume", "-h"}, code: ExitOK,
			wantStdout: []string{"[env KAFKA_BROKERS]", "[env REDIS_URL]", "[env REDIS_CLUSTER_ADDRS]", "[env CONSUMER_BATCH_SIZE] (default 10000)",
				"[env CONSUMER_GROUP_ID] (default \"cohortsync-consumer\")", "[env CONSUMER_ENV_PREFIX]", "--sync-interval duration",
				"[env CONSUMER_SHUTDOWN_TIMEOUT] (default 10s)", "--http-addr string", "[env HTTP_ADDR]"}},
		{name: "sync help lists the Kafka connection settings", args: []string{"sync", "--help"}, code: ExitOK,
			wantStdout: kafkaFlags},
		{name: "consume help lists the Kafka connection settings", args: []string{"consume", "--help"}, code: ExitOK,
			wantStdout: kafkaFlags},
		{name: "a bad SASL mechanism names its variable and keeps the password out", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env:  map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "s3cret"},
			code: ExitUsage, wantStderr: []string{`KAFKA_SASL_MECHANISM="GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)`}, notStderr: "s3cret"},
		{name: "SASL credentials without a mechanism", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--kafka-brokers", "127.0.0.1:9",
			"--kafka-sasl-username", "u"}, code: ExitUsage,
			wantStderr: []string{"--kafka-sasl-mechanism or KAFKA_SASL_MECHANISM: required, want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL) when a SASL user name or password is set"}},
		{name: "a client certificate without its key", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--kafka-brokers", "127.0.0.1:9",
			"--kafka-tls", "--kafka-tls-cert-file", "client.pem"}, code: ExitUsage,
			wantStderr: []string{"--kafka-tls-key-file or KAFKA_TLS_KEY_FILE: required, want the PEM private key of --kafka-tls-cert-file client.pem"}},
		{name: "a TLS file without --kafka-tls is refused, not ignored", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env: map[string]string{"KAFKA_TLS_CA_FILE": "ca.pem"}, code: ExitUsage,
			wantStderr: []string{`KAFKA_TLS_CA_FILE="ca.pem": want nothing unless --kafka-tls is set`}},
		{name: "an unreadable CA file names the flag", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1",
			"--kafka-tls", "--kafka-tls-ca-file", "/nonexistent.pem"}, code: ExitUsage,
			wantStderr: []string{`--kafka-tls-ca-file="/nonexistent.pem": want a readable PEM file of CA certificates`}},
		{name: "a bad dial timeout names its variable", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env: map[string]string{"KAFKA_DIAL_TIMEOUT": "-1s"}, code: ExitUsage,
			wantStderr: []string{`KAFKA_DIAL_TIMEOUT="-1s": want a positive duration (0: the default 10s)`}},
		{name: "a progress mode that is none of the four", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--kafka-brokers", "127.0.0.1:9",
			"--progress", "fancy"}, code: ExitUsage, wantStderr: []string{`--progress="fancy": want auto, bar, log or none`}},
		{name: "the progress mode's variable", args: []string{"sync", "--mapping", "beta", "--kafka-brokers", "127.0.0.1:9", "--redis-url", "redis://127.0.0.1:9"},
			env: map[string]string{"SYNC_PROGRESS": "loud"}, code: ExitUsage, wantStderr: []string{`SYNC_PROGRESS="loud": want auto, bar, log or none`}},
		{name: "shell completion is generated", args: []string{"completion", "bash"}, code: ExitOK, wantStdout: []string{"bash completion V2 for cohortsync"}},
		{name: "unknown command", args: []string{"push"}, code: ExitUsage, wantStderr: []string{`unknown command "push" for "cohortsync"`}},
		{name: "unknown flag", args: []string{"sync", "--nope"}, code: ExitUsage, wantStderr: []string{"cohortsync sync: unknown flag: --nope"}},
		{name: "positional arguments rejected", args: []string{"sync", "extra"}, code: ExitUsage, wantStderr: []string{`unknown command "extra" for "cohortsync sync"`}},
		{name: "a bad flag value names the flag, the value and the form", args: []string{"sync", "--generation", "abc"}, code: ExitUsage,
			wantStderr: []string{`cohortsync sync: --generation="abc": want an integer`}},
		{name: "explicit generation 0 is an error", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv",
			"--kafka-brokers", "127.0.0.1:9", "--generation", "0"}, code: ExitUsage,
			wantStderr: []string{`--generation="0": want a value other than zero (leave it unset for the default 1)`}},
		{name: "missing settings are all named, with their variables", args: []string{"sync"}, code: ExitUsage,
			wantStderr: []string{"cohortsync sync: invalid configuration:\n" +
				"  --env or SYNC_ENV: required, want non-empty UTF-8 of at most 1024 bytes\n" +
				"  --segment or SYNC_SEGMENT: required, want non-empty UTF-8 of at most 1024 bytes\n" +
				"  --csv or SYNC_CSV: required, want a cohort CSV file, plain or gzip\n" +
				"  --kafka-brokers or KAFKA_BROKERS: required, " + hp + "\n"}},
		{name: "a bad variable names the variable (regression: SYNC_GENERATION=abc blamed GENERATION, BATCH_TIMEOUT=5 said parse error)",
			args: []string{"sync"}, env: map[string]string{"SYNC_GENERATION": "abc", "PRODUCER_BATCH_TIMEOUT": "5"}, code: ExitUsage,
			wantStderr: []string{`SYNC_GENERATION="abc": want an integer`, `PRODUCER_BATCH_TIMEOUT="5": want a duration with a unit, such as 500ms, 5s or 2m`,
				"--env or SYNC_ENV: required"}},
		{name: "environment twins fill settings; a missing CSV names the variable", args: []string{"sync"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "SYNC_ENV": "e", "SYNC_SEGMENT": "s", "SYNC_CSV": "/nonexistent.csv"},
			code: ExitUsage, wantStderr: []string{`SYNC_CSV="/nonexistent.csv": want a readable cohort CSV file (no such file or directory)`}},
		{name: "plain ENV is not the env twin", args: []string{"sync", "--csv", "x"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "ENV": "e", "SYNC_SEGMENT": "s"},
			code: ExitUsage, wantStderr: []string{"--env or SYNC_ENV: required"}},
		{name: "flags win over the environment", args: []string{"sync", "--csv", "x", "--env", "e", "--segment", "s", "--topic-partitions", "0"},
			env:  map[string]string{"KAFKA_BROKERS": "127.0.0.1:1", "PRODUCER_TOPIC_PARTITIONS": "3"},
			code: ExitUsage, wantStderr: []string{`--topic-partitions="0": want an integer >= 1`}},
		{name: "one variable name never serves two parts (regression: BATCH_SIZE meant two things)", args: []string{"sync"},
			env:  map[string]string{"CONSUMER_BATCH_SIZE": "abc", "BATCH_SIZE": "abc"},
			code: ExitUsage, wantStderr: []string{"--env or SYNC_ENV: required"}, notStderr: "abc"},
		{name: "consume: environment and flags are both named", args: []string{"consume", "--batch-size", "-1", "--kafka-brokers", "bad"},
			env:  map[string]string{"CONSUMER_FLUSH_INTERVAL": "0s", "REDIS_URL": "redis://r:1/0", "CONSUMER_ENV_PREFIX": "production"},
			code: ExitUsage, wantStderr: []string{
				`CONSUMER_ENV_PREFIX="production": want comma-separated key=value pairs with distinct keys`,
				`CONSUMER_FLUSH_INTERVAL="0s": want a value other than zero (leave it unset for the default 20ms)`,
				`--kafka-brokers="bad": want host:port with a port in 1..65535`,
				`--batch-size="-1": want an integer between 1 and 100000`}},
		{name: "consume: no redis", args: []string{"consume", "--kafka-brokers", "k:9092", "--topic="}, code: ExitUsage,
			wantStderr: []string{`--topic="": want a value other than zero`, "--redis-url or REDIS_URL: required"}},
		{name: "consume: a bad HTTP address names its variable", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env: map[string]string{"HTTP_ADDR": "localhost"}, code: ExitUsage,
			wantStderr: []string{`HTTP_ADDR="localhost": want host:port to listen on (host may be empty, port 0 picks one)`}},
		{name: "consume: the old --metrics flag is gone", args: []string{"consume", "--metrics", ":9090"}, code: ExitUsage,
			wantStderr: []string{"unknown flag: --metrics"}},
		{name: "a bad OTEL variable stops either command at start, named", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger", "OTEL_PROPAGATORS": "b3"}, code: ExitUsage,
			wantStderr: []string{`OTEL_TRACES_EXPORTER="jaeger": want none, otlp or console`,
				`OTEL_PROPAGATORS="b3": want a comma-separated list of tracecontext, baggage or none`}},
		{name: "sync: a bad OTEL variable is a usage error", args: []string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--kafka-brokers", "127.0.0.1:9"},
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318", "OTEL_TRACES_EXPORTER": "otlp"}, code: ExitUsage,
			wantStderr: []string{`OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": want an http:// or https:// URL of an OTLP/HTTP collector`}},
		{name: "consume: bad log level", args: []string{"consume", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1"},
			env: map[string]string{"LOG_LEVEL": "loud"}, code: ExitUsage, wantStderr: []string{`LOG_LEVEL="loud": want one of debug, info, warn, error`}},
	})
}

// commandCase is one command line and what it must do.
type commandCase struct {
	name       string
	args       []string
	env        map[string]string
	code       int
	wantStdout []string
	wantStderr []string
	notStderr  string
}

func runCases(t *testing.T, cases []commandCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, t.Context(), tc.args, tc.env)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tc.notStderr != "" && strings.Contains(stderr, tc.notStderr) {
				t.Errorf("stderr has %q:\n%s", tc.notStderr, stderr)
			}
		})
	}
}

// TestSyncCommand runs "cohortsync sync" end to end against the test's
// Kafka, settings from both flags and variables.
func TestSyncCommand(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	topic := testenv.Name(t)
	env := map[string]string{
		"KAFKA_BROKERS":             strings.Join(brokers, ","),
		"TOPIC":                     topic,
		"PRODUCER_TOPIC_PARTITIONS": "3",
		"PRODUCER_STATE_DIR":        t.TempDir(),
		"SYNC_ENV":                  "production",
		"LOG_LEVEL":                 "error", // kfake's leader elections cause expected retries
	}
	ctx := testenv.Context(t, 60*time.Second)
	code, stdout, stderr := run(t, ctx, []string{"sync", "--segment", "amplitude-7khm89cz",
		"--csv", filepath.Join("..", "..", "producer", "testdata", "cohort1.csv")}, env)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"sync run 20", "segment     amplitude-7khm89cz.g1 (env production, context kind user)",
		"added       5\n", "events      5, seq 1..5\n", "exclusions  none\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	var keys []string
	for _, m := range testenv.ReadTopic(t, brokers, topic, 3) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Op != schema.OpAdd || ev.Env != "production" {
			t.Errorf("event %+v", ev)
		}
		keys = append(keys, ev.ContextKey)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"alice", "bob", "carol", "dave", "x"}) {
		t.Fatalf("members %v", keys)
	}
}
