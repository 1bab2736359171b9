package bench

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish"
)

func tinySizing(topic, prefix string) SizingConfig {
	cfg := DefaultSizing()
	cfg.Events, cfg.ReferenceEvents, cfg.Partitions = 2000, 500, 3
	cfg.Topic, cfg.Prefix = topic, prefix
	cfg.LagInterval, cfg.Timeout = 50*time.Millisecond, time.Minute
	return cfg
}

// testKafka is a client factory of the Kafka under test.
func testKafka(t *testing.T) *kafkax.Factory {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	kf, err := kafkax.New(kafkax.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kf.Close() })
	return kf
}

// TestSize runs cohortsync bench at a tiny size on every Redis backend,
// under a prefix that already holds another segment's data (--force):
// it measures, samples the lag, deletes the topic it created, and leaves
// the prefix exactly as it found it.
func TestSize(t *testing.T) {
	kf := testKafka(t)
	testenv.ForEachRedis(t, 2*time.Minute, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		// Another segment's member, and the SDKs' sync time: data to keep.
		other := bigsegments.IncludeKey(prefix, Key(0))
		if err := b.Client.SAdd(ctx, other, "someone-else.g1").Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Set(ctx, bigsegments.SyncTimeKey(prefix), "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		// The consumer moves synchronized_on, as any consumer of the
		// prefix would: the rest must be as it was.
		before := testenv.Snapshot(t, b.Client, prefix, bigsegments.SyncTimeKey(prefix))
		topic := testenv.Name(t)
		var progress bytes.Buffer
		cfg := tinySizing(topic, prefix)
		_, err := Size(ctx, cfg, b.Client, kf, &progress)
		if err == nil || !strings.Contains(err.Error(), "already holds data ("+bigsegments.SyncTimeKey(prefix)+" exists): refusing to run (--force to run anyway)") {
			t.Fatalf("Size on a prefix holding data: %v, want a refusal", err)
		}
		cfg.Force = true
		res, err := Size(ctx, cfg, b.Client, kf, &progress)
		if err != nil {
			t.Fatalf("%v\n%s", err, progress.String())
		}
		if res.Events != cfg.Events || res.Produce <= 0 || res.RawSADD <= 0 || res.Apply <= 0 {
			t.Errorf("result %+v: want %d events and positive rates", res, cfg.Events)
		}
		if len(res.Lag) == 0 || res.Lag[len(res.Lag)-1].Lag != 0 || res.Lag[len(res.Lag)-1].Applied != int64(cfg.Events) {
			t.Errorf("lag samples %+v: want the last one caught up with every event applied", res.Lag)
		}
		if after := testenv.Snapshot(t, b.Client, prefix, bigsegments.SyncTimeKey(prefix)); !maps.Equal(before, after) {
			t.Errorf("the prefix changed:\n%s", testenv.DiffSnapshots(before, after))
		}
		// A real broker deletes a topic a moment after it answers the
		// request: wait for it, bounded.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, exists, err := TopicMessages(ctx, kf, topic)
			if err == nil && !exists {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("topic %s 30s after the run: exists %v (%v), want deleted", topic, exists, err)
				break
			}
		}
		var table bytes.Buffer
		if err := WriteTable(&table, "", res.Rows()); err != nil {
			t.Fatal(err)
		}
		if err := res.WriteLag(&table); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), "raw pipelined SADD of bare include sets") {
			t.Errorf("table lacks the reference:\n%s", table.String())
		}
	})
}

// TestSizeRefusesTopicWithMessages: a topic holding messages is not used
// without --force, and nothing is written.
func TestSizeRefusesTopicWithMessages(t *testing.T) {
	kf := testKafka(t)
	rb := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	topic := testenv.Name(t)
	var err error
	pcfg := publish.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions = topic, 1
	if err := publish.EnsureTopics(ctx, pcfg, kf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DeleteTopics(context.WithoutCancel(ctx), kf, topic, kafkax.DeadLetterTopic(topic)) })
	w := publish.NewWriter(pcfg, kf)
	t.Cleanup(func() { _ = w.Close() })
	if err := writeAll(ctx, w, []kafka.Message{{Key: []byte("k"), Value: []byte("someone's event")}}); err != nil {
		t.Fatal(err)
	}
	prefix := testenv.Name(t)
	var progress bytes.Buffer
	_, err = Size(ctx, tinySizing(topic, prefix), rb.Client, kf, &progress)
	want := "topic " + topic + " already holds 1 messages: refusing to run (--force to run anyway: they are applied under the prefix too and counted)"
	if err == nil || err.Error() != want {
		t.Fatalf("Size = %v, want %q", err, want)
	}
	if keys := testenv.Snapshot(t, rb.Client, prefix); len(keys) != 0 {
		t.Errorf("a refused run wrote %d keys", len(keys))
	}
}
