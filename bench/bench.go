package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/schema"
)

// Config of a benchmark run.
type Config struct {
	Brokers []string      // real Kafka brokers; required
	Redis   redisx.Config // the Redis under test; required
	Members int           // members of the synthetic cohort; default 1,000,000
	// RedisPipeline is the batch of the raw Redis reference; default the
	// consumer's batch size, so both do the same number of round trips.
	RedisPipeline int
	// ConsumerBatch is the consumer's BatchSize; default its own default.
	ConsumerBatch int
}

// Validate checks cfg.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("--kafka-brokers: required")
	}
	if err := c.Redis.Validate(); err != nil {
		return err
	}
	if c.Members < 0 {
		return fmt.Errorf("--members: must be > 0, got %d", c.Members)
	}
	return nil
}

// Result holds the measured rates (per second).
type Result struct {
	Members          int
	RawRedisSADD     float64 // pipelined SADD, one command per member
	RawRedisTwoSADD  float64 // pipelined, two SADDs per member: the consumer's own command count
	RawKafkaProduce  float64 // kafka-go WriteMessages, same writer settings as the producer
	ProducerSync     float64 // producer.Sync: CSV read, sort, diff, publish, all acknowledged
	ConsumerApply    float64 // consumer: events applied to Redis and committed, from first to last batch
	EndToEnd         float64 // events applied per second from sync start to consumer caught up
	EndToEndDuration time.Duration
	PeakRSSMiB       float64
}

// Run executes the benchmark and prints progress and the result table to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	if cfg.Members == 0 {
		cfg.Members = 1_000_000
	}
	if cfg.RedisPipeline == 0 {
		cfg.RedisPipeline = consumer.DefaultBatchSize
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{Members: cfg.Members}
	rdb, err := redisx.Open(cfg.Redis)
	if err != nil {
		return res, err
	}
	defer func() { _ = rdb.Close() }() // the figures are taken: a close error changes none
	// One client factory for the references, the producer and the
	// consumer, as internal/app builds one per process.
	kf, err := kafkax.New(kafkax.Config{Brokers: cfg.Brokers})
	if err != nil {
		return res, err
	}
	defer func() { _ = kf.Close() }() // Close never fails
	dir, err := os.MkdirTemp("", "cohortsync-bench-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary directory: best effort
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix := "bench-" + runID

	csvPath := filepath.Join(dir, "cohort.csv")
	if err := writeCohort(csvPath, cfg.Members); err != nil {
		return res, err
	}
	progress(out, "cohort: %d members in %s\n", cfg.Members, csvPath)

	// Reference 1: raw pipelined Redis writes of the same keys.
	if res.RawRedisSADD, err = rawRedis(ctx, rdb, prefix+"-raw", cfg.Members, cfg.RedisPipeline, false); err != nil {
		return res, fmt.Errorf("raw redis reference: %w", err)
	}
	if res.RawRedisTwoSADD, err = rawRedis(ctx, rdb, prefix+"-raw2", cfg.Members, cfg.RedisPipeline, true); err != nil {
		return res, fmt.Errorf("raw redis reference: %w", err)
	}
	progress(out, "raw redis SADD (pipeline %d): %.0f/s; two SADDs per member: %.0f/s\n", cfg.RedisPipeline, res.RawRedisSADD, res.RawRedisTwoSADD)

	// Reference 2: raw kafka-go produce of messages shaped like ours.
	pcfg := producer.DefaultConfig()
	if res.RawKafkaProduce, err = rawKafka(ctx, kf, "bench-raw-"+runID, pcfg, cfg.Members); err != nil {
		return res, fmt.Errorf("raw kafka reference: %w", err)
	}
	progress(out, "raw kafka-go produce: %.0f/s\n", res.RawKafkaProduce)

	// cohortsync: a consumer already in its group, then a first sync of the
	// whole cohort; the clock stops when every event is in Redis.
	topic := "bench-" + runID
	pcfg.Topic, pcfg.StateDir = topic, filepath.Join(dir, "state")
	if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
		return res, err
	}
	cons, err := consumer.New(consumer.Config{
		Topic: topic, GroupID: topic, RedisPrefix: prefix, BatchSize: cfg.ConsumerBatch,
		SyncInterval: 100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, rdb, kf)
	if err != nil {
		return res, err
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var consErr error
	wg.Add(1)
	go func() { defer wg.Done(); consErr = cons.Run(cctx) }()
	stopConsumer := func() error { stop(); wg.Wait(); return consErr }
	defer func() { _ = stopConsumer() }() // early returns; the others report its error themselves
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = cons.WaitCaughtUp(wctx) // joined the group, nothing to apply yet
	cancel()
	if err != nil {
		return res, errors.Join(fmt.Errorf("consumer did not start: %w", err), stopConsumer())
	}

	var firstApplied, lastApplied time.Time
	pollDone := make(chan struct{})
	var pollWG sync.WaitGroup
	pollWG.Add(1)
	go func() { // samples when the first and last batches land, for the apply rate
		defer pollWG.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pollDone:
				return
			case now := <-t.C:
				st := cons.Stats()
				if st.Applied > 0 && firstApplied.IsZero() {
					firstApplied = now
				}
			}
		}
	}()

	start := time.Now()
	src, err := csvfile.Open(csvPath, csvfile.Options{})
	if err != nil {
		return res, err
	}
	sum, err := producer.Sync(ctx, pcfg, kf, producer.SyncRequest{Env: "bench", Segment: "bench-segment", Generation: 1, Input: src})
	_ = src.Close() // read-only
	if err != nil {
		close(pollDone)
		pollWG.Wait()
		return res, fmt.Errorf("producer sync: %w", err)
	}
	res.ProducerSync = float64(sum.Events) / sum.Duration.Seconds()
	progress(out, "producer sync: %d events in %s: %.0f/s\n", sum.Events, sum.Duration.Round(time.Millisecond), res.ProducerSync)
	wctx, cancel = context.WithTimeout(ctx, 10*time.Minute)
	err = cons.WaitCaughtUp(wctx)
	cancel()
	res.EndToEndDuration = time.Since(start)
	close(pollDone)
	pollWG.Wait()
	if err != nil {
		return res, errors.Join(fmt.Errorf("consumer did not catch up: %w", err), stopConsumer())
	}
	if err := stopConsumer(); err != nil {
		return res, fmt.Errorf("consumer: %w", err)
	}
	res.EndToEnd = float64(cfg.Members) / res.EndToEndDuration.Seconds()
	lastApplied = cons.Stats().LastApplied
	if !firstApplied.IsZero() && lastApplied.After(firstApplied) {
		res.ConsumerApply = float64(cfg.Members) / lastApplied.Sub(firstApplied).Seconds()
	}
	info, err := segmentstore.Info(ctx, rdb, prefix, schema.Ref("bench-segment", 1))
	if err != nil {
		return res, err
	}
	if info.Members != int64(cfg.Members) {
		return res, fmt.Errorf("redis holds %d members after the sync, want %d", info.Members, cfg.Members)
	}
	res.PeakRSSMiB = peakRSSMiB()
	progress(out, "consumer apply: %.0f/s; end to end: %d members in %s: %.0f/s\n",
		res.ConsumerApply, cfg.Members, res.EndToEndDuration.Round(time.Millisecond), res.EndToEnd)
	if err := cleanup(ctx, rdb, prefix); err != nil {
		progress(out, "warning: cleanup of %s:* failed: %v\n", prefix, err)
	}
	return res, nil
}

// progress prints a progress line: a terminal gone away must not fail a
// benchmark half way, so its write error is ignored.
func progress(out io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(out, format, args...)
}

// WriteTable prints res as the Markdown table BENCHMARKS.md holds.
func (r Result) WriteTable(out io.Writer) error {
	var w strings.Builder
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(&w, "| measure (%d members, %d cores) | per second | ratio |\n|---|---|---|\n", r.Members, runtime.NumCPU())
	fmt.Fprintf(&w, "| reference: raw pipelined Redis SADD | %.0f | 1.00× (Redis ref) |\n", r.RawRedisSADD)
	fmt.Fprintf(&w, "| reference: raw pipelined Redis, two SADDs per member (our command count) | %.0f | %s of Redis ref |\n", r.RawRedisTwoSADD, ratio(r.RawRedisTwoSADD, r.RawRedisSADD))
	fmt.Fprintf(&w, "| reference: raw kafka-go produce (the producer's writer settings) | %.0f | 1.00× (Kafka ref) |\n", r.RawKafkaProduce)
	fmt.Fprintf(&w, "| producer first sync (read, sort, diff, publish, acked) | %.0f | %s of Kafka ref |\n", r.ProducerSync, ratio(r.ProducerSync, r.RawKafkaProduce))
	fmt.Fprintf(&w, "| consumer apply (fetch, decode, 2 SADDs per event, commit) | %.0f | %s of Redis ref, %s of two-SADD ref |\n", r.ConsumerApply, ratio(r.ConsumerApply, r.RawRedisSADD), ratio(r.ConsumerApply, r.RawRedisTwoSADD))
	fmt.Fprintf(&w, "| **end to end: events applied per second** (%s) | **%.0f** | %s of Redis ref |\n", r.EndToEndDuration.Round(time.Millisecond), r.EndToEnd, ratio(r.EndToEnd, r.RawRedisSADD))
	fmt.Fprintf(&w, "\npeak RSS of the process (producer + consumer + references): %.0f MiB\n", r.PeakRSSMiB)
	_, err := io.WriteString(out, w.String())
	return err
}

func writeCohort(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// bufio.Writer keeps its first error, which Flush returns.
	_, _ = w.WriteString("amplitude_id,user_id,country\n")
	var line []byte
	for i := range n {
		line = strconv.AppendInt(line[:0], int64(100000000+i), 10)
		line = append(line, ",user-"...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, "@example.com,US\n"...)
		_, _ = w.Write(line)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close() // the flush error is the one to report
		return err
	}
	return f.Close()
}

// rawRedis writes n members with plain pipelined SADDs: one per member to
// a set named like an include set (the same prefix, a hashed context key,
// the same length), or (members) also one to a member index, as the
// consumer does. The keys stand outside the LaunchDarkly layout on purpose:
// segmentstore.Writer is the only code that writes that layout.
func rawRedis(ctx context.Context, rdb redis.UniversalClient, prefix string, n, batch int, members bool) (float64, error) {
	ref := schema.Ref("bench-segment", 1)
	membersKey := prefix + ":raw_reference:{" + ref + "}:members"
	start := time.Now()
	for i := 0; i < n; i += batch {
		p := rdb.Pipeline()
		for j := i; j < min(i+batch, n); j++ {
			key := "user-" + strconv.Itoa(j) + "@example.com"
			p.SAdd(ctx, prefix+":raw_reference_incl:"+bigsegments.HashContextKey(key), ref)
			if members {
				p.SAdd(ctx, membersKey, key)
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			return 0, err
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	return rate, cleanup(ctx, rdb, prefix)
}

// rawKafka writes n prepared messages with the producer's own Writer
// settings and concurrency: the cost of Kafka alone, without reading,
// sorting, diffing or encoding.
func rawKafka(ctx context.Context, kf *kafkax.Factory, topic string, pcfg producer.Config, n int) (float64, error) {
	pcfg.Topic = topic
	if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
		return 0, err
	}
	w := publish.NewWriter(pcfg.Config, kf)
	defer func() { _ = w.Close() }() // WriteMessages is synchronous: nothing is left to flush
	now := time.Now()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		ev := schema.Event{Env: "bench", Segment: "bench-segment", Generation: 1, ContextKind: "user",
			ContextKey: "user-" + strconv.Itoa(i) + "@example.com", Op: schema.OpAdd,
			Run: "20261125T000000Z-00000000", Seq: uint64(i + 1), Source: "csv", Time: now}
		msgs[i] = ev.Message()
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pcfg.InFlight)
	for i := 0; i < n; i += pcfg.SendBatch {
		part := msgs[i:min(i+pcfg.SendBatch, n)]
		g.Go(func() error { return writeAll(gctx, w, part) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// writeAll writes msgs, retrying the ones that failed transiently, as the
// producer does: right after the topic is created a broker may still answer
// NotLeaderForPartition for some partitions, and a reference that fails on
// it measures nothing.
func writeAll(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	pending := msgs
	return retry.Do(ctx, retry.Policy{Timeout: time.Minute}, "raw write", func() error {
		err := w.WriteMessages(ctx, pending...)
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			failed := pending[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			pending = failed
		}
		return kafkax.Classify(err)
	}, nil)
}

// cleanup deletes the keys under prefix so repeated runs do not fill Redis.
func cleanup(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", 10000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				p := c.Pipeline()
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				if _, err := p.Exec(ctx); err != nil {
					return err
				}
				keys = keys[:0]
			}
		}
		p := c.Pipeline()
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		if len(keys) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, del)
	}
	c, ok := rdb.(*redis.Client)
	if !ok {
		return fmt.Errorf("unsupported client %T", rdb)
	}
	return del(ctx, c)
}

// peakRSSMiB reads VmHWM, the process's peak resident set, from /proc.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
