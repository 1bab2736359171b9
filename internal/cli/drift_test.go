package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/drift"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

// TestCheckAndRebuildCommands: check (with no group: against the whole
// log) exits 0 on a destination holding what the log says and 3 with the
// drift as JSON once a member is deleted, and refuses a group that never
// committed; rebuild repairs the drift (refusing without --env), and check
// agrees again. The comparison itself is tested in consumer/drift.
func TestCheckAndRebuildCommands(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	ctx := testenv.Context(t, 2*time.Minute)
	rb := testenv.Redis(t)
	name := testenv.Name(t)
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions = name, 2
	if err := publish.EnsureTopics(ctx, pcfg.Config, kafkaxtest.Factory(t, brokers...)); err != nil {
		t.Fatal(err)
	}
	var evs []kafka.Message
	var changes []segmentstore.Change
	for i, key := range []string{"alice", "bob", "carol"} {
		ev := schema.Event{Env: "production", Segment: "seg", Generation: 1, ContextKind: "user", ContextKey: key, Op: schema.OpAdd,
			Run: "run-1", Seq: uint64(i + 1), Source: "test", Time: time.Now().UTC()}
		evs = append(evs, ev.Message())
		changes = append(changes, segmentstore.Change{Prefix: name, Segment: "seg", Generation: 1, ContextKind: "user", ContextKey: key, Seq: ev.Seq, Run: ev.Run})
	}
	// A real broker may not know the new topic everywhere yet; a retried
	// write that landed twice changes no membership.
	testenv.Eventually(t, 30*time.Second, "events written", func() bool {
		w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: name, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
		return errors.Join(w.WriteMessages(ctx, evs...), w.Close()) == nil
	})
	if _, err := segmentstore.NewWriter(rb.Client, nil).Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KAFKA_BROKERS": strings.Join(brokers, ","), "REDIS_URL": rb.URL, "TOPIC": name,
		"CONSUMER_ENV_PREFIX": "production=" + name, "CONSUMER_GROUP_ID": name}

	code, stdout, stderr := run(t, ctx, []string{"check", "--env", "production", "--group-id="}, env)
	if code != ExitOK || !strings.Contains(stdout, "production (prefix "+name+") seg generation 1: log 3 members, redis 3: in sync") ||
		!strings.Contains(stdout, "no drift in 1 segments") {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
	}

	if err := rb.Client.HDel(ctx, bigsegments.MembersKey(name, "seg.g1"), "bob").Err(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = run(t, ctx, []string{"check", "--env", "production", "--json", "--group-id="}, env)
	var rep drift.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != ExitDrift || rep.Drifted != 1 ||
		rep.Segments[0].Missing != 1 || rep.Segments[0].MissingExamples[0] != "bob" || !strings.Contains(stderr, "disagree in 1 of 1 segments") {
		t.Fatalf("check --json after a member was deleted: exit %d (%v)\n%s%s", code, err, stdout, stderr)
	}

	code, _, stderr = run(t, ctx, []string{"check", "--env", "production"}, env)
	if code != ExitError || !strings.Contains(stderr, "consumer group \""+name+"\" has committed no offset") {
		t.Fatalf("check with a group that never committed: exit %d\n%s", code, stderr)
	}
	// (The comparison up to the group's offsets is tested with a running
	// consumer in consumer/drift.)
	if code, _, stderr := run(t, ctx, []string{"rebuild"}, env); code != ExitUsage || !strings.Contains(stderr, "--env") {
		t.Fatalf("rebuild without --env: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = run(t, ctx, []string{"rebuild", "--env", "production"}, env)
	if code != ExitOK || !strings.Contains(stdout, "freshness held back") || !strings.Contains(stdout, "1 memberships added, 0 removed") {
		t.Fatalf("rebuild: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run(t, ctx, []string{"check", "--group-id="}, env); code != ExitOK {
		t.Fatalf("check after the rebuild: exit %d\n%s%s", code, stdout, stderr)
	}
}
