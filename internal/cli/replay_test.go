package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// TestReplayCommand: replay commits the start of every partition for a
// group with no members and prints it; without brokers it is a usage
// error, and a topic that does not exist is named. (The rebuild it is a
// step of is tested in consumer's TestRedisDataLossIsNotReportedCurrent,
// where a group with a running consumer is refused.)
func TestReplayCommand(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, time.Minute)
	name := testenv.Name(t)
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions = name, 2
	if err := publish.EnsureTopics(ctx, pcfg.Config, kafkaxtest.Factory(t, brokers...)); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ",")}
	code, stdout, stderr := run(t, ctx, []string{"replay", "--topic", name, "--group-id", name}, env)
	if code != ExitOK || !strings.Contains(stdout, "consumer group "+name+" rewound on topic "+name+" to the start;") ||
		!strings.Contains(stdout, "  partition 0 from offset 0\n  partition 1 from offset 0\n") {
		t.Fatalf("replay: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, ctx, []string{"replay", "--topic", name, "--group-id", name, "--from-offset", "1:0"}, env)
	if code != ExitOK || !strings.Contains(stdout, "to the given offsets;") || !strings.Contains(stdout, "  partition 1 from offset 0\n") || strings.Contains(stdout, "partition 0") {
		t.Fatalf("replay --from-offset: exit %d\n%s%s", code, stdout, stderr)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, bad := range [][]string{{"--from-time", future}, {"--from-offset", "0:x"}, {"--from-offset", "3", "--from-time", "2026-01-02T00:00:00Z"}} {
		code, _, stderr := run(t, ctx, append([]string{"replay", "--topic", name, "--group-id", name}, bad...), env)
		if code != ExitUsage || !strings.Contains(stderr, bad[len(bad)-2]) {
			t.Fatalf("replay %v: exit %d\n%s", bad, code, stderr)
		}
	}
	code, _, stderr = run(t, ctx, []string{"replay", "--topic", name, "--group-id", name, "--from-offset", "7:0"}, env)
	if code != ExitError || !strings.Contains(stderr, "partition 7: topic \""+name+"\" has partitions 0 to 1") {
		t.Fatalf("replay of a partition the topic does not have: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, ctx, []string{"replay", "--topic", name}, nil); code != ExitUsage || !strings.Contains(stderr, "--kafka-brokers") {
		t.Fatalf("replay without brokers: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, ctx, []string{"replay", "--topic", name + "-missing"}, env); code != ExitError || !strings.Contains(stderr, name+"-missing") {
		t.Fatalf("replay of a missing topic: exit %d\n%s", code, stderr)
	}
}
