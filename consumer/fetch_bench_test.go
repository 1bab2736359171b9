package consumer

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// BenchmarkFetch measures the Kafka side of the consumer alone: one reader
// per partition of a 3-partition topic holding benchFetchEvents events, the
// fetchers, the batcher and decoding, down to the decoded batches the apply
// loop would receive (discarded here). One iteration reads the whole topic.
// allocs/event counts every allocation of the process meanwhile, kafka-go's
// readers included.
func BenchmarkFetch(b *testing.B) {
	const benchFetchEvents = 100_000
	ke := benchTopic(b, benchFetchEvents, "fetch")
	cfg := testConfig(b, ke)
	cfg.BatchSize = DefaultBatchSize
	cfg.FlushInterval = DefaultFlushInterval
	c, err := New(cfg, testenv.Redis(b).Client, ke.kf)
	if err != nil {
		b.Fatal(err)
	}
	var mallocs uint64
	var ms0, ms1 runtime.MemStats
	for b.Loop() {
		runtime.ReadMemStats(&ms0)
		fetchAll(b, c, 3, benchFetchEvents)
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
	}
	b.ReportMetric(float64(b.N*benchFetchEvents)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mallocs)/float64(b.N*benchFetchEvents), "allocs/event")
}

// fetchAll reads want valid events from c's topic's partitions, each from
// its first offset, through fetchBatches.
func fetchAll(b *testing.B, c *Consumer, partitions, want int) {
	b.Helper()
	ctx, cancel := context.WithCancel(testenv.Context(b, 5*time.Minute))
	defer cancel()
	srcs := make([]source, partitions)
	for p := range srcs {
		r := kafka.NewReader(c.partitionReaderConfig(p, partitions))
		defer r.Close()
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			b.Fatal(err)
		}
		srcs[p] = source{r: r, partition: p}
	}
	out := make(chan []item, 1)
	var (
		wg       sync.WaitGroup
		fetchErr error
	)
	wg.Go(func() { fetchErr = c.fetchBatches(ctx, cancel, srcs, out) })
	n := 0
	for batch := range out {
		for i := range batch {
			if batch[i].err != nil {
				b.Fatalf("offset %d: %v", batch[i].msg.Offset, batch[i].err)
			}
		}
		if n += len(batch); n >= want {
			break
		}
	}
	cancel()
	for range out { // drain, so the batcher can return
	}
	wg.Wait()
	if fetchErr != nil {
		b.Fatal(fetchErr)
	}
	if n != want {
		b.Fatalf("fetched %d events, want %d (ctx: %v)", n, want, ctx.Err())
	}
}
