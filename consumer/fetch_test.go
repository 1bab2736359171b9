package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// scriptedFetcher hands out its script's messages and errors in order: a
// Fetch takes messages up to the next error step or the end (a response),
// an error step is one Fetch's error. Then Fetch blocks until ctx ends, or
// returns end for ever if it is set.
type scriptedFetcher struct {
	mu      sync.Mutex
	script  []fetchStep
	end     error
	fetched []time.Time // when each message was handed out
}

type fetchStep struct {
	msg kafka.Message
	err error
}

func (f *scriptedFetcher) Fetch(ctx context.Context, each func(*kafka.Message) error) error {
	f.mu.Lock()
	if len(f.script) == 0 {
		end := f.end
		f.mu.Unlock()
		if end != nil {
			return end
		}
		<-ctx.Done()
		return ctx.Err()
	}
	if s := f.script[0]; s.err != nil {
		f.script = f.script[1:]
		f.mu.Unlock()
		return s.err
	}
	f.mu.Unlock()
	for {
		f.mu.Lock()
		if len(f.script) == 0 || f.script[0].err != nil {
			f.mu.Unlock()
			return nil
		}
		m := f.script[0].msg
		f.fetched = append(f.fetched, time.Now())
		f.mu.Unlock()
		if err := each(&m); err != nil {
			return err
		}
		f.mu.Lock()
		f.script = f.script[1:] // taken: a retry resumes after it
		f.mu.Unlock()
	}
}

// partitionMsgs returns n valid event messages of partition p at offsets
// 0..n-1.
func partitionMsgs(p, n int) []fetchStep {
	steps := make([]fetchStep, n)
	for i := range steps {
		e := ev("staging", "seg", 1, "p"+strconv.Itoa(p)+"-user-"+strconv.Itoa(i), schema.OpAdd, uint64(i+1))
		m := e.Message()
		m.Partition, m.Offset = p, int64(i)
		steps[i] = fetchStep{msg: m}
	}
	return steps
}

// fetchConsumer returns a consumer for the fetch path alone: no Kafka or
// Redis is reached.
func fetchConsumer(t *testing.T, batchSize int, flush time.Duration) *Consumer {
	t.Helper()
	cfg := Config{RedisPrefix: testenv.Name(t), BatchSize: batchSize, FlushInterval: flush, RetryTimeout: 10 * time.Second, Logger: testLogger(t)}
	c, err := New(cfg, testenv.Redis(t).Client, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runFetch runs fetchBatches over srcs until want messages have come out
// (or ctx ends), then stops it; it returns the batches and fetchBatches'
// error.
func runFetch(ctx context.Context, c *Consumer, srcs []source, want int) ([][]item, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan []item, 1)
	var (
		wg  sync.WaitGroup
		err error
	)
	wg.Go(func() { err = c.fetchBatches(ctx, cancel, srcs, out, nil) })
	var batches [][]item
	n := 0
	for b := range out {
		batches = append(batches, b)
		if n += len(b); n >= want {
			break
		}
	}
	cancel()
	for range out {
	}
	wg.Wait()
	return batches, err
}

// TestFetchBatchesFullInPartitionOrder: with every message available at
// once, batches are cut by BatchSize alone (the FlushInterval, 10s, is far away),
// chunks from several partitions fill them, and each partition's messages
// come in offset order, decoded.
func TestFetchBatchesFullInPartitionOrder(t *testing.T) {
	const parts, perPart, batchSize = 3, 1000, 100
	c := fetchConsumer(t, batchSize, 10*time.Second)
	srcs := make([]source, parts)
	for p := range srcs {
		srcs[p] = source{f: &scriptedFetcher{script: partitionMsgs(p, perPart)}, partition: p}
	}
	batches, err := runFetch(testenv.Context(t, 30*time.Second), c, srcs, parts*perPart)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int64, parts)
	for i, b := range batches {
		if len(b) != batchSize {
			t.Errorf("batch %d has %d messages, want %d", i, len(b), batchSize)
		}
		for _, it := range b {
			if it.err != nil {
				t.Fatalf("partition %d offset %d: %v", it.msg.Partition, it.msg.Offset, it.err)
			}
			if p := it.msg.Partition; it.msg.Offset != next[p] {
				t.Fatalf("batch %d: partition %d offset %d, want %d", i, p, it.msg.Offset, next[p])
			}
			next[it.msg.Partition]++
			if want := "p" + strconv.Itoa(it.msg.Partition) + "-user-" + strconv.FormatInt(it.msg.Offset, 10); it.ev.ContextKey != want {
				t.Fatalf("decoded context key %q, want %q", it.ev.ContextKey, want)
			}
		}
	}
	if got := c.genFetched.Load(); got != parts*perPart {
		t.Errorf("counted %d messages fetched, want %d", got, parts*perPart)
	}
}

// TestLoneMessageWithinFlushInterval: a message with no company reaches the
// apply loop within FlushInterval of its fetch, after its batch waited that
// long for company.
func TestLoneMessageWithinFlushInterval(t *testing.T) {
	const flush = 800 * time.Millisecond
	c := fetchConsumer(t, 100, flush)
	f := &scriptedFetcher{script: partitionMsgs(0, 1)}
	ctx := testenv.Context(t, 30*time.Second)
	batches, err := runFetch(ctx, c, []source{{f: f, partition: 0}}, 1)
	got := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("got batches %v, want one of one message", batches)
	}
	took := got.Sub(f.fetched[0])
	if took >= flush+flush/lingerDivisor-50*time.Millisecond {
		t.Errorf("a lone message reached the apply loop %s after its fetch, want within FlushInterval %s (plus scheduling)", took, flush)
	}
	if took < flush/2 {
		t.Errorf("a lone message reached the apply loop %s after its fetch: its batch did not wait the FlushInterval %s for company", took, flush)
	}
}

// TestFetchRetriesAnErrorMetFillingAChunk: an error between two messages of
// a chunk is retried like any other (counted, logged), and no message is
// lost or reordered around it.
func TestFetchRetriesAnErrorMetFillingAChunk(t *testing.T) {
	c := fetchConsumer(t, 100, 20*time.Millisecond)
	steps := partitionMsgs(0, 4)
	script := []fetchStep{steps[0], steps[1], {err: errors.New("broker blip")}, steps[2], steps[3]}
	batches, err := runFetch(testenv.Context(t, 30*time.Second), c, []source{{f: &scriptedFetcher{script: script}, partition: 0}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int64
	for _, b := range batches {
		for _, it := range b {
			offsets = append(offsets, it.msg.Offset)
		}
	}
	if len(offsets) != 4 || offsets[0] != 0 || offsets[1] != 1 || offsets[2] != 2 || offsets[3] != 3 {
		t.Errorf("got offsets %v, want 0 1 2 3", offsets)
	}
	if r := c.Stats().Retries; r != 1 {
		t.Errorf("retries %d, want 1", r)
	}
}

// TestFetchPermanentErrorIsNotRetried: a permanent fetch error (a broker
// refusing the topic) ends the pipeline with it at once, not after
// RetryTimeout, also when it comes after a response's messages.
func TestFetchPermanentErrorIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // messages before the error
	}{{"first fetch", 0}, {"after messages", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			c := fetchConsumer(t, 100, 20*time.Millisecond)
			f := &scriptedFetcher{script: partitionMsgs(0, tc.before), end: classifyFetch(kafka.TopicAuthorizationFailed)}
			began := time.Now()
			_, err := runFetch(testenv.Context(t, 30*time.Second), c, []source{{f: f, partition: 0}}, tc.before+1)
			if !errors.Is(err, kafka.TopicAuthorizationFailed) {
				t.Fatalf("got %v, want TopicAuthorizationFailed", err)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("took %s: retried a permanent error", took)
			}
			if r := c.Stats().Retries; r != 0 {
				t.Errorf("retries %d, want 0", r)
			}
		})
	}
}

// TestClassifyFetch: only broker errors Kafka does not call retriable are
// permanent; a connection closed by a restarting broker (io.EOF) and the
// fetch's own request timeout are retried.
func TestClassifyFetch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"topic authorization failed", kafka.TopicAuthorizationFailed, true},
		{"SASL authentication failed", fmt.Errorf("fetch: %w", kafka.SASLAuthenticationFailed), true},
		{"not leader for partition", kafka.NotLeaderForPartition, false},
		{"unknown topic or partition", kafka.UnknownTopicOrPartition, false},
		{"request timed out", kafka.RequestTimedOut, false},
		{"connection closed by the broker", io.EOF, false},
		{"request timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classifyFetch(tc.err)
			if got := retry.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v", got, tc.permanent)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("classified error %v does not wrap %v", err, tc.err)
			}
		})
	}
}

// chunkOf returns a chunk of steps' messages, fetched now.
func chunkOf(steps []fetchStep) chunk {
	ch := chunk{first: time.Now()}
	for _, s := range steps {
		ch.items = appendDecoded(ch.items, &s.msg)
	}
	return ch
}

// TestBatchLoopSplitsAChunk: a chunk that does not fit in a batch fills it,
// and its rest starts the next batch, in order; every chunk's buffer goes
// back to the fetchers, cleared.
func TestBatchLoopSplitsAChunk(t *testing.T) {
	c := fetchConsumer(t, 5, 10*time.Second)
	a, b := partitionMsgs(0, 3), partitionMsgs(1, 5)
	in := make(chan chunk, 2)
	in <- chunkOf(a)
	in <- chunkOf(b)
	close(in)
	out := make(chan []item, 2)
	free := make(chan []item, 2)
	c.batchLoop(testenv.Context(t, 10*time.Second), in, out, free, nil)
	var got [][]string
	for batch := range out {
		var ids []string
		for _, it := range batch {
			ids = append(ids, strconv.Itoa(it.msg.Partition)+":"+strconv.FormatInt(it.msg.Offset, 10))
		}
		got = append(got, ids)
	}
	want := [][]string{{"0:0", "0:1", "0:2", "1:0", "1:1"}, {"1:2", "1:3", "1:4"}}
	if len(got) != len(want) || len(got[0]) != 5 || len(got[1]) != 3 {
		t.Fatalf("got batches %v, want %v", got, want)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("got batches %v, want %v", got, want)
			}
		}
	}
	if len(free) != 2 {
		t.Fatalf("%d chunk buffers handed back, want 2", len(free))
	}
	for range 2 {
		buf := <-free
		if len(buf) != 0 {
			t.Errorf("a buffer came back with length %d", len(buf))
		}
		for _, it := range buf[:cap(buf)] {
			if it.msg.Value != nil {
				t.Fatalf("a buffer came back holding message %d:%d", it.msg.Partition, it.msg.Offset)
			}
		}
	}
}

// TestBatchFillsWhileApplyBusy: once FlushInterval has passed, a batch the
// apply loop is not ready to take goes on filling (up to BatchSize) rather
// than waiting half empty.
func TestBatchFillsWhileApplyBusy(t *testing.T) {
	const flush = 20 * time.Millisecond
	c := fetchConsumer(t, 10, flush)
	msgs := partitionMsgs(0, 10)
	in := make(chan chunk, 2)
	out := make(chan []item) // the apply loop is busy: nobody receives yet
	ctx := testenv.Context(t, 10*time.Second)
	var wg sync.WaitGroup
	wg.Go(func() { c.batchLoop(ctx, in, out, make(chan []item, 3), nil) })
	in <- chunkOf(msgs[:2])
	time.Sleep(5 * flush) // the batch's FlushInterval is over
	in <- chunkOf(msgs[2:5])
	in <- chunkOf(msgs[5:])
	for len(in) > 0 { // only the batcher receives from in
		if ctx.Err() != nil {
			t.Fatal("the batcher took no more chunks once its FlushInterval was over")
		}
		time.Sleep(time.Millisecond)
	}
	if batch := <-out; len(batch) != 10 {
		t.Errorf("got a batch of %d messages, want the 10 that came while it waited", len(batch))
	}
	close(in)
	for range out {
	}
	wg.Wait()
}

// TestBatchBuiltInASpareBuffer: a batch is built in a buffer the apply
// loop handed back, and the older batch's items past its length are
// cleared, so that the new batch keeps none of them alive.
func TestBatchBuiltInASpareBuffer(t *testing.T) {
	c := fetchConsumer(t, 10, time.Millisecond)
	old := chunkOf(partitionMsgs(0, 8)).items
	spare := make(chan []item, 1)
	spare <- old[:0]
	in := make(chan chunk, 1)
	in <- chunkOf(partitionMsgs(1, 3))
	close(in)
	out := make(chan []item, 1)
	c.batchLoop(testenv.Context(t, 10*time.Second), in, out, make(chan []item, 1), spare)
	batch := <-out
	if len(batch) != 3 || &batch[0] != &old[0] {
		t.Fatalf("got a batch of %d not built in the spare buffer", len(batch))
	}
	for i, it := range old[3:8] {
		if it.msg.Value != nil || it.ev.ContextKey != "" {
			t.Errorf("spare buffer item %d still holds message %d:%d", 3+i, it.msg.Partition, it.msg.Offset)
		}
	}
}
