package consumer

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// BenchmarkFetch measures the Kafka side of the consumer alone: one fetcher
// per partition of a 3-partition topic holding benchFetchEvents events, the
// fetchers, the batcher and decoding, down to the decoded batches the apply
// loop would receive (discarded here). One iteration reads the whole topic.
// allocs/event counts every allocation of the process meanwhile, kafka-go's
// included.
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
	var (
		mallocs  uint64
		cpu      time.Duration
		ms0, ms1 runtime.MemStats
	)
	for b.Loop() {
		runtime.ReadMemStats(&ms0)
		cpu0 := processCPU(b)
		fetchAll(b, c, 3, benchFetchEvents)
		cpu += processCPU(b) - cpu0
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
	}
	events := float64(b.N * benchFetchEvents)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(mallocs)/events, "allocs/event")
	// The machine's other load moves events/s; the CPU the process spent
	// per event moves much less.
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fetchAll reads want valid events from c's topic's partitions, each from
// its first offset, through fetchBatches.
func fetchAll(b *testing.B, c *Consumer, partitions, want int) {
	b.Helper()
	ctx, cancel := context.WithCancel(testenv.Context(b, 5*time.Minute))
	defer cancel()
	srcs := make([]source, partitions)
	for p := range srcs {
		src, closeSrc := c.partitionSource(p, kafka.FirstOffset)
		defer closeSrc()
		srcs[p] = src
	}
	out := make(chan []item, 1)
	spare := make(chan []item, 2) // handed back as the apply loop does
	var (
		wg       sync.WaitGroup
		fetchErr error
	)
	wg.Go(func() { fetchErr = c.fetchBatches(ctx, cancel, srcs, out, spare) })
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
		select {
		case spare <- batch[:0]:
		default:
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

// BenchmarkBatchLoneMessage measures what the batcher allocates for a batch
// of one message, as a trickle of events makes: B/op is the batch's
// capacity times an item's size.
func BenchmarkBatchLoneMessage(b *testing.B) {
	cfg := Config{RedisPrefix: testenv.Name(b), Logger: testLogger(b)}
	c, err := New(cfg, testenv.Redis(b).Client, kafkaxtest.Factory(b, "127.0.0.1:9"))
	if err != nil {
		b.Fatal(err)
	}
	msg := partitionMsgs(0, 1)[0].msg
	ctx := testenv.Context(b, time.Minute)
	free := make(chan []item, 1)
	free <- make([]item, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		in := make(chan chunk, 1)
		in <- chunk{items: append(<-free, item{msg: msg}), first: time.Now()}
		close(in)
		out := make(chan []item, 1)
		c.batchLoop(ctx, in, out, free, nil)
		if batch := <-out; len(batch) != 1 {
			b.Fatalf("batch of %d", len(batch))
		}
	}
}
