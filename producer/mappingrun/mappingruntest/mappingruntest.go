package mappingruntest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalog/catalogtest"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/testenv"
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

// CSVWorld is a test's one destination ("production", under Prefix on the
// test's Redis) with one enabled CSV mapping into it (reading Cohort,
// ids in column user_id), the test's topic, and the shared state writers
// over the control prefix Control: what a test of something built on
// mapping runs needs before it makes its mappingrun.Runner (this package
// cannot: mappingrun's own tests import it).
type CSVWorld struct {
	Ctx      context.Context
	Prefix   string // the destination's
	Control  string // the control prefix, ending in ":"
	Cohort   string // the mapping's CSV file, not written yet
	Catalog  *catalogtest.Catalog
	Connect  func(context.Context, catalog.Destination) (redis.UniversalClient, error)
	Kafka    *kafkax.Factory
	Producer producer.Config
	Writers  Writers
	Log      *slog.Logger
}

// NewCSVWorld sets up a CSVWorld whose mapping is named mapping and writes
// segment, generation 1, on rb; the test's keys are dropped first.
func NewCSVWorld(t testing.TB, rb testenv.RedisBackend, mapping, segment string) *CSVWorld {
	ctx := testenv.Context(t, 3*time.Minute)
	name := testenv.Name(t)
	w := &CSVWorld{Ctx: ctx, Prefix: name + "-prod", Control: name + ":control:", Cohort: filepath.Join(t.TempDir(), "cohort.csv"),
		Connect: catalogtest.Connector(rb.Client), Kafka: kafkaxtest.Kafka(t), Log: Quiet()}
	testenv.DropPrefix(t, rb.Client, w.Prefix)
	testenv.DropPrefix(t, rb.Client, name+":control")
	w.Catalog = &catalogtest.Catalog{Dests: []catalog.Destination{catalogtest.Destination("production", w.Prefix)},
		Mappings: []catalog.Mapping{{Name: mapping, Source: catalog.Source{Kind: catalog.SourceCSV, Location: w.Cohort},
			Segment: segment, Destinations: []string{"production"}, IDProperty: "user_id", ContextKind: "user", Generation: 1, Enabled: true}}}
	w.Producer = Producer(t, ctx, w.Kafka, name)
	w.Writers = NewWriters(t, rb.Client, w.Kafka, w.Producer, w.Control)
	return w
}

// Consume starts a consumer applying the world's topic to its destination
// until the test ends.
func (w *CSVWorld) Consume(t testing.TB, rdb redis.UniversalClient) {
	Consume(t, w.Ctx, w.Kafka, rdb, w.Producer.Topic, map[string]string{"production": w.Prefix})
}
