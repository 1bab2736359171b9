package mappingruntest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// Partitions is the partition count of a test's topic: more than one, so
// that keys of one segment spread over partitions as in production.
const Partitions = 2

// Quiet is a logger that discards: kfake's leader elections cause
// expected retries that would only clutter a test's output.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Producer returns the default producer config of topic (the test's own,
// from testenv.Name), created on kf with Partitions partitions; with a state
// directory of the test's, a retry budget that ends a stuck test in time,
// and a logger that discards. A test running several replicas gives each
// its own StateDir.
func Producer(t testing.TB, ctx context.Context, kf *kafkax.Factory, topic string) producer.Config {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.Topic, cfg.StateDir, cfg.TopicPartitions, cfg.Logger = topic, t.TempDir(), Partitions, Quiet()
	cfg.RetryMaxElapsed = 20 * time.Second
	if err := publish.EnsureTopics(ctx, cfg.Config, kf); err != nil {
		t.Fatalf("creating topic %q: %v", cfg.Topic, err)
	}
	return cfg
}

// Writers is what a list-segment edit or an erasure writes with, as
// internal/app builds it for `cohortsync serve`: the leases and shared
// sequence counters that mapping runs take too, the erased set, and a
// publisher on the producer's topic.
type Writers struct {
	Lease   segmentlease.Config
	Locker  *segmentlease.Locker
	Seq     *segmentlease.SeqAllocator
	Erased  *segmentlease.Erased
	Streams *publish.Publisher
}

// NewWriters returns the Writers of the control keys under prefix on rdb,
// publishing with pcfg on kf; the publisher is closed when the test ends.
func NewWriters(t testing.TB, rdb redis.UniversalClient, kf *kafkax.Factory, pcfg producer.Config, prefix string) Writers {
	t.Helper()
	w := Writers{Lease: segmentlease.Config{Prefix: prefix}}
	var err error
	if w.Locker, err = segmentlease.NewLocker(rdb, w.Lease); err != nil {
		t.Fatal(err)
	}
	if w.Seq, err = segmentlease.NewSeqAllocator(rdb, w.Lease); err != nil {
		t.Fatal(err)
	}
	if w.Erased, err = segmentlease.NewErased(rdb, w.Lease); err != nil {
		t.Fatal(err)
	}
	if w.Streams, err = publish.New(pcfg.Config, kf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Streams.Close() })
	return w
}

// Consume starts a consumer of topic (its group named after the topic) on
// kf, applying each environment's events under its prefix on rdb and
// recording sync state every 100ms; it runs until the test ends, and an
// error it returns fails the test. The consumer is returned for
// WaitCaughtUp.
func Consume(t testing.TB, ctx context.Context, kf *kafkax.Factory, rdb redis.UniversalClient, topic string, prefixes map[string]string) *consumer.Consumer {
	t.Helper()
	cons, err := consumer.New(consumer.Config{Topic: topic, GroupID: topic, EnvPrefixes: prefixes,
		SyncInterval: 100 * time.Millisecond, Logger: Quiet()}, rdb, kf)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := cons.Run(cctx); err != nil {
			t.Errorf("consumer of %q: %v", topic, err)
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	return cons
}
