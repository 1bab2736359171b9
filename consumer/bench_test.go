package consumer

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// benchBatch is the default BatchSize: both Redis benchmarks send pipelines
// of this many events (BenchmarkApply: two commands each plus one script
// per segment; the raw reference: one SADD each).
const benchBatch = DefaultBatchSize

// benchTopic returns a new 3-partition topic holding n of benchEvents.
func benchTopic(b *testing.B, n int, salt string) *kafkaEnv {
	b.Helper()
	brokers, onBroker := testenv.Kafka(b)
	ke := newKafka(b, brokers, onBroker, 3)
	evs := benchEvents(n, salt)
	ms := make([]schema.Event, len(evs))
	for i, e := range evs {
		ms[i] = *e
	}
	ke.produce(b, messages(ms...)...)
	return ke
}

// benchEvents returns n events over 10 segments with distinct context keys
// (adds, the common case of a first sync).
func benchEvents(n int, salt string) []*schema.Event {
	evs := make([]*schema.Event, n)
	for i := range evs {
		e := ev("staging", "amplitude-seg"+strconv.Itoa(i%10), 1, salt+"-user-"+strconv.Itoa(i), schema.OpAdd, uint64(i+1))
		evs[i] = &e
	}
	return evs
}

// BenchmarkApply measures the Redis apply path alone: one pipeline per
// batch of benchBatch events, converted to segmentstore changes and written
// by segmentstore.Writer. Batches alternate between the members joining
// and the same members leaving, so every change changes Redis (as in a
// first sync or a re-sync's churn); re-applying adds of members already in
// would measure the cheaper redelivery path.
func BenchmarkApply(b *testing.B) {
	for _, be := range testenv.RedisBackends(b) {
		for _, lanes := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/pipelines=%d", be.Name, lanes), func(b *testing.B) {
				prefix := testenv.Name(b)
				dropPrefix(b, be.Client, prefix)
				a := newApplier(time.Now, lanes)
				routes := staticRoutes(be.Client, prefix, nil).cur
				joins := benchEvents(benchBatch, prefix)
				leaves := benchEvents(benchBatch, prefix)
				for _, e := range leaves {
					e.Op, e.Seq = schema.OpRemove, e.Seq+benchBatch
				}
				ctx := context.Background()
				b.ReportAllocs()
				cpu := startCPU(ctx, b, be.Client)
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					evs := joins
					if i%2 == 1 {
						evs = leaves
					}
					if r, err := a.apply(ctx, routes, evs, 0); err != nil || len(r.failures)+len(r.unknown) != 0 {
						b.Fatal(r, err)
					}
				}
				b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
				cpu.report(ctx, b, b.N*benchBatch)
			})
		}
	}
}

// BenchmarkRawPipelinedSADD is the reference: the same number of items per
// pipeline, one plain SADD each, nothing else. BenchmarkApply's events/s
// over this one's items/s is the cost of the layout (two commands per
// event) and of our bookkeeping.
func BenchmarkRawPipelinedSADD(b *testing.B) {
	for _, be := range testenv.RedisBackends(b) {
		b.Run(be.Name, func(b *testing.B) {
			prefix := testenv.Name(b)
			dropPrefix(b, be.Client, prefix)
			keys := make([]string, benchBatch*4)
			for i := range keys {
				keys[i] = bigsegments.IncludeKey(prefix, fmt.Sprintf("user-%d", i))
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu := startCPU(ctx, b, be.Client)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				off := (i % 4) * benchBatch
				pipe := be.Client.Pipeline()
				for _, k := range keys[off : off+benchBatch] {
					pipe.SAdd(ctx, k, "amplitude-seg.g1")
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "items/s")
			cpu.report(ctx, b, b.N*benchBatch)
		})
	}
}

// BenchmarkConsume measures the whole path: events already in the topic
// (3 partitions), a new consumer group reads, decodes, applies and commits
// all of them. One iteration is one full catch-up of benchConsumeEvents.
// events/s includes joining the group; apply-events/s counts from the first
// batch committed, and cpu-ns/event is the process's CPU time per event
// (joining included), which the machine's other load moves less.
func BenchmarkConsume(b *testing.B) {
	const benchConsumeEvents = 100_000
	ke := benchTopic(b, benchConsumeEvents, "consume")
	for _, be := range testenv.RedisBackends(b) {
		b.Run(be.Name, func(b *testing.B) {
			var (
				applied  int64
				applying time.Duration
			)
			cpu0 := processCPU(b)
			for b.Loop() {
				cfg := testConfig(b, ke)
				cfg.BatchSize = DefaultBatchSize
				cfg.FlushInterval = DefaultFlushInterval
				cfg.SyncInterval = time.Second
				c := start(b, ke.kf, cfg, be.Client)
				ctx := testenv.Context(b, 5*time.Minute)
				var first time.Time
				for n := int64(0); n < benchConsumeEvents; n = c.Stats().Applied {
					if ctx.Err() != nil {
						b.Fatalf("not caught up: %+v", c.Stats())
					}
					if n > 0 && first.IsZero() {
						first = time.Now()
					}
					time.Sleep(time.Millisecond)
				}
				applying += time.Since(first)
				applied += c.Stats().Applied
				b.StopTimer()
				if err := c.stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(applied)/applying.Seconds(), "apply-events/s")
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(applied), "cpu-ns/event")
		})
	}
}

// cpuMeter measures the CPU time this process and the Redis servers spend,
// so that a benchmark reports the cost per event, which other jobs on a
// shared machine do not move as much as they move the rate.
type cpuMeter struct {
	rdb           redis.UniversalClient
	self, servers time.Duration
	ok            bool // the servers report INFO cpu (miniredis does not)
}

func startCPU(ctx context.Context, b *testing.B, rdb redis.UniversalClient) *cpuMeter {
	m := &cpuMeter{rdb: rdb}
	m.self = processCPU(b)
	var err error
	m.servers, err = redisx.ServerCPU(ctx, rdb)
	m.ok = err == nil
	return m
}

// report adds client-µs/event and redis-µs/event to b for n events.
func (m *cpuMeter) report(ctx context.Context, b *testing.B, n int) {
	b.ReportMetric(float64((processCPU(b)-m.self).Microseconds())/float64(n), "client-µs/event")
	if s, err := redisx.ServerCPU(ctx, m.rdb); err == nil && m.ok {
		b.ReportMetric(float64((s-m.servers).Microseconds())/float64(n), "redis-µs/event")
	}
}
