package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// testTime is the producer time stamped on test events, fixed so that
// message values (and the dead-letter golden file) are reproducible.
var testTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// ev builds a valid event.
func ev(env, segment string, gen int, contextKey string, op schema.Op, seq uint64) schema.Event {
	return schema.Event{
		Env: env, Segment: segment, Generation: gen, ContextKind: "user", ContextKey: contextKey,
		Op: op, Run: "run-" + strconv.FormatUint(seq/100, 10), Seq: seq, Source: "test", Time: testTime,
	}
}

func messages(evs ...schema.Event) []kafka.Message {
	ms := make([]kafka.Message, len(evs))
	for i := range evs {
		ms[i] = evs[i].Message()
	}
	return ms
}

// kafkaEnv is one Kafka backend with a membership topic and its dead-letter
// topic created for the test.
type kafkaEnv struct {
	brokers    []string
	real       bool
	topic, dlq string
	client     *kafka.Client
	kf         *kafkax.Factory // the consumers' clients, as internal/app builds them
}

// newKafka creates a topic with the given partitions and a one-partition
// dead-letter topic (one partition keeps dead letters in test order).
func newKafka(t testing.TB, brokers []string, onBroker bool, nparts int) *kafkaEnv {
	t.Helper()
	ke := &kafkaEnv{brokers: brokers, real: onBroker, client: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}}
	ke.kf = kafkaxtest.Factory(t, brokers...)
	ke.topic = testenv.Name(t)
	ke.dlq = ke.topic + ".dlq"
	ctx := testenv.Context(t, 30*time.Second)
	res, err := ke.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: ke.topic, NumPartitions: nparts, ReplicationFactor: 1},
		{Topic: ke.dlq, NumPartitions: 1, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	for name, err := range res.Errors {
		if err != nil {
			t.Fatalf("create topic %s: %v", name, err)
		}
	}
	// A real broker answers CreateTopics before every broker's metadata
	// knows the topic; wait until it does (bounded).
	for _, name := range []string{ke.topic, ke.dlq} {
		for i := 0; ; i++ {
			ids, err := freshness.Partitions(ctx, ke.client, name)
			if err == nil && len(ids) > 0 {
				break
			}
			if i == 300 || ctx.Err() != nil {
				t.Fatalf("topic %s not visible: %v", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return ke
}

// produce writes msgs acknowledged by all replicas, keyed by membership.
func (ke *kafkaEnv) produce(t testing.TB, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(ke.brokers...), Topic: ke.topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchSize: 5000, BatchTimeout: 5 * time.Millisecond,
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	}()
	ctx := testenv.Context(t, 60*time.Second)
	for len(msgs) > 0 {
		n := min(len(msgs), 20000)
		if err := w.WriteMessages(ctx, msgs[:n]...); err != nil {
			var werrs kafka.WriteErrors
			if errors.As(err, &werrs) {
				for _, e := range werrs {
					if e != nil {
						t.Fatalf("produce: %d of %d messages failed, the first with: %v", werrs.Count(), n, e)
					}
				}
			}
			t.Fatalf("produce: %v", err)
		}
		msgs = msgs[n:]
	}
}

// committed returns the group's committed offset per partition (-1 none).
func (ke *kafkaEnv) committed(t testing.TB, group string) map[int]int64 {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	ids, err := freshness.Partitions(ctx, ke.client, ke.topic)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ke.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{ke.topic: ids}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[ke.topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// ends returns the end offset per partition.
func (ke *kafkaEnv) ends(t testing.TB) map[int]int64 {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	ids, err := freshness.Partitions(ctx, ke.client, ke.topic)
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]kafka.OffsetRequest, len(ids))
	for i, p := range ids {
		reqs[i] = kafka.LastOffsetOf(p)
	}
	res, err := ke.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{ke.topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[ke.topic] {
		out[p.Partition] = p.LastOffset
	}
	return out
}

// readDLQ reads exactly n dead letters (bounded in time), then checks that
// no more arrive within a short grace.
func (ke *kafkaEnv) readDLQ(t testing.TB, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: ke.brokers, Topic: ke.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	ctx := testenv.Context(t, 20*time.Second)
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letter %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, m)
	}
	extra, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if m, err := r.ReadMessage(extra); err == nil {
		t.Fatalf("unexpected extra dead letter at offset %d: %q", m.Offset, m.Value)
	}
	return out
}

// testConfig is a consumer config for ke with names unique to the test.
func testConfig(t testing.TB, ke *kafkaEnv) Config {
	return Config{
		Topic:           ke.topic,
		DeadLetterTopic: ke.dlq,
		GroupID:         testenv.Name(t),
		RedisPrefix:     testenv.Name(t),
		BatchSize:       500,
		FlushInterval:   5 * time.Millisecond,
		SyncInterval:    100 * time.Millisecond,
		RetryTimeout:    30 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		Logger:          testLogger(t),
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// running is a Consumer whose Run goroutine the test owns.
type running struct {
	*Consumer
	cancel context.CancelFunc
	errc   chan error
	once   sync.Once
	err    error
}

// start runs a new consumer on a clean prefix until stop or the end of the
// test.
func start(t testing.TB, kf *kafkax.Factory, cfg Config, rdb redis.UniversalClient) *running {
	t.Helper()
	c, err := New(cfg, rdb, kf)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, tg := range c.routes.cur.targets {
		for _, p := range tg.prefixes {
			dropPrefix(t, rdb, p)
		}
	}
	return launch(t, c)
}

// launch runs c until stop or the end of the test, leaving Redis as it is
// (members joining a running group share its keys).
func launch(t testing.TB, c *Consumer) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Consumer: c, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop cancels Run and returns its error, failing if it takes over 20s.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.errc:
		case <-time.After(20 * time.Second):
			r.err = errors.New("Run did not return within 20s of cancellation")
		}
	})
	return r.err
}

func (r *running) waitCaughtUp(t testing.TB) {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	if err := r.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("WaitCaughtUp: %v (stats %+v)", err, r.Stats())
	}
}

// dummyClient is a client for tests that never reach Redis.
func dummyClient(t testing.TB) redis.UniversalClient {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:9"})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dropPrefix, snapshot and diffSnapshots: see testenv.DropPrefix,
// testenv.Snapshot and testenv.DiffSnapshots.
func dropPrefix(t testing.TB, rdb redis.UniversalClient, prefix string) {
	testenv.DropPrefix(t, rdb, prefix)
}

func snapshot(t testing.TB, rdb redis.UniversalClient, prefix string, skip ...string) map[string]string {
	t.Helper()
	return testenv.Snapshot(t, rdb, prefix, skip...)
}

func diffSnapshots(a, b map[string]string) string { return testenv.DiffSnapshots(a, b) }
