package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestBenchCommandLine(t *testing.T) {
	runCases(t, []commandCase{
		{name: "help lists its own settings with their variables", args: []string{"bench", "--help"}, code: ExitOK,
			wantStdout: []string{"[env KAFKA_BROKERS]", "[env BENCH_TOPIC]", "[env REDIS_URL]", "[env BENCH_EVENTS] (default 1000000)",
				"[env BENCH_REDIS_PREFIX]", "--force[=true|false]", "[env BENCH_LAG_INTERVAL] (default 1s)", "refuses a\ntopic that holds messages"}},
		{name: "bad sizes name their flag and variable", args: []string{"bench", "--kafka-brokers", "k:9092", "--redis-url", "redis://r:1", "--events", "0"},
			env: map[string]string{"BENCH_REDIS_PREFIX": "launchdarkly"}, code: ExitUsage,
			wantStderr: []string{`--events="0": want a positive number of events`,
				`BENCH_REDIS_PREFIX="launchdarkly": want a prefix of the benchmark's own, not the one the SDKs read by default`}},
		{name: "the membership topic's variable is not read", args: []string{"bench", "--redis-url", "redis://r:1"},
			env: map[string]string{"TOPIC": "a topic"}, code: ExitUsage,
			wantStderr: []string{"--kafka-brokers or KAFKA_BROKERS: required"}, notStderr: "a topic"},
	})
}

// TestBenchRuns runs cohortsync bench end to end at a tiny size: the
// table and the lag on stdout, progress on stderr.
func TestBenchRuns(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	rb := testenv.Redis(t)
	code, stdout, stderr := run(t, testenv.Context(t, time.Minute), []string{"bench", "--kafka-brokers", strings.Join(brokers, ","),
		"--redis-url", rb.URL, "--events", "1000", "--reference-events", "500", "--topic-partitions", "2", "--lag-interval", "50ms",
		"--redis-prefix", testenv.Name(t), "--topic", testenv.Name(t)}, nil)
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"cohortsync bench: 1000 events", "raw pipelined SADD of bare include sets", "| time since the consumer started | consumer lag (messages) | applied |"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "bench: producing 1000 events") {
		t.Errorf("stderr lacks the progress:\n%s", stderr)
	}
}
