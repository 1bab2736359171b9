package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/schema"
)

// item is a fetched message and its decoding. The partition's fetcher
// decodes it, so decoding is spread over the partitions' goroutines and
// overlaps the apply loop's writes to Redis.
type item struct {
	msg kafka.Message
	ev  schema.Event
	err error // a *schema.DecodeError
}

// fetcher is what a fetch goroutine needs: its partition's messages, a
// fetch response at a time (partitionFetcher).
type fetcher interface {
	// Fetch waits for the partition's next messages (a long poll, bounded)
	// and calls each with every one of them, in offset order. each may copy
	// the message, byte slices included, but not keep the pointer; an error
	// from it stops Fetch and is returned. A Fetch that returns an error
	// after some messages leaves the next one after the last that each
	// took, so a retry neither skips nor repeats one. A fetch of no
	// messages (the long poll ran out) returns nil.
	Fetch(ctx context.Context, each func(*kafka.Message) error) error
}

// source is one assigned partition and its fetcher.
type source struct {
	f         fetcher
	partition int
}

// maxChunk is the most messages a fetcher hands the batcher in one channel
// send: a send and a receive per message cost more than fetching it.
const maxChunk = 512

// lingerDivisor bounds how much of a batch's FlushInterval its first
// chunk's wait in the channel may use up: FlushInterval/lingerDivisor. A
// chunk that waited longer (the apply loop was busy) still leaves the
// batch three quarters of it to fill, so batches stay full at full speed
// instead of being cut by a clock that started while they could not be
// taken.
const lingerDivisor = 4

// chunk is consecutive messages of one partition, decoded, that its fetcher
// hands to the batcher in one channel send.
type chunk struct {
	items []item
	first time.Time // when the fetcher got the first of them
}

// fetchBatches runs a fetcher per source and the batcher, handing decoded
// batches to out, until ctx ends or a fetcher fails; a failing fetcher
// calls fail (which must end ctx). Batches are built in the buffers of
// spare (applied batches handed back) when there are any. It closes out
// and returns once every goroutine it started has, with the fetchers'
// errors.
func (c *Consumer) fetchBatches(ctx context.Context, fail context.CancelFunc, srcs []source, out chan<- []item, spare <-chan []item) error {
	size := min(maxChunk, c.cfg.BatchSize)
	// About a batch's worth of chunks, as a full batch is what the batcher
	// takes at once while the apply loop is busy.
	fetched := make(chan chunk, c.cfg.BatchSize/size+len(srcs))
	// Chunk buffers the batcher has copied, for the fetchers to fill again.
	free := make(chan []item, cap(fetched)+len(srcs))
	var (
		wg, fetchers sync.WaitGroup
		errMu        sync.Mutex
		fetchErr     error
	)
	for _, s := range srcs {
		fetchers.Go(func() {
			if err := c.fetchLoop(ctx, s.f, s.partition, size, fetched, free); err != nil {
				errMu.Lock()
				fetchErr = errors.Join(fetchErr, err)
				errMu.Unlock()
				fail()
			}
		})
	}
	wg.Go(func() {
		fetchers.Wait()
		close(fetched)
	})
	c.batchLoop(ctx, fetched, out, free, spare)
	wg.Wait()
	return fetchErr
}

// fetchLoop fetches and decodes the messages of one partition and hands
// them to out in chunks of up to size: a fetch response's messages, cut
// every size. It takes chunk buffers from free when there are any. It
// returns when ctx ends (nil) or fetching fails permanently or for longer
// than RetryTimeout.
func (c *Consumer) fetchLoop(ctx context.Context, f fetcher, partition, size int, out chan<- chunk, free <-chan []item) error {
	var ch chunk
	send := func() error {
		select {
		case out <- ch:
			c.genFetched.Add(int64(len(ch.items)))
			ch = chunk{}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	each := func(m *kafka.Message) error {
		if ch.items == nil {
			select {
			case ch.items = <-free:
			default:
				ch.items = make([]item, 0, size)
			}
			ch.first = time.Now()
		}
		ch.items = appendDecoded(ch.items, m)
		if len(ch.items) == size {
			return send()
		}
		return nil
	}
	for {
		err := c.fetch(ctx, f, each)
		if err == nil && len(ch.items) > 0 {
			err = send() // the end of a response: what came is handed on now
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("topic %q partition %d: %w", c.cfg.Topic, partition, c.kf.Explain(ctx, err))
		}
	}
}

// appendDecoded appends a copy of m and its decoding to items.
func appendDecoded(items []item, m *kafka.Message) []item {
	items = append(items, item{msg: *m})
	it := &items[len(items)-1]
	it.ev, it.err = schema.Decode(&it.msg)
	return items
}

// fetch runs one f.Fetch; its errors are retried (f resumes where it
// stopped) until they are permanent or RetryTimeout passes, and logged.
// The first attempt is a plain call: a retry's setup costs more than a
// fetch.
func (c *Consumer) fetch(ctx context.Context, f fetcher, each func(*kafka.Message) error) error {
	failed := f.Fetch(ctx, each)
	if failed == nil || ctx.Err() != nil {
		return failed
	}
	return c.retry(ctx, "fetch", func() error {
		if failed != nil {
			err := failed
			failed = nil
			return err
		}
		return f.Fetch(ctx, each)
	})
}

// batchLoop collects batches from the chunks of in (BatchSize messages, or
// what arrived within FlushInterval of the first one's fetch and, after
// that, until out takes the batch), hands them to out and the chunks'
// buffers back to free, until ctx ends or in is closed. A batch is built
// in a buffer from spare when there is one: a batch of 20,000 items is
// 7 MB that would otherwise be allocated, zeroed and collected anew.
// It closes out. A batch cut short by ctx is dropped: it is uncommitted and
// will be delivered again. A chunk that does not fit in a batch is split:
// its rest starts the next batch.
func (c *Consumer) batchLoop(ctx context.Context, in <-chan chunk, out chan<- []item, free chan<- []item, spare <-chan []item) {
	defer close(out)
	linger := c.cfg.FlushInterval / lingerDivisor
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var (
		batch []item
		rest  chunk  // what of the last chunk did not fit in the batch
		buf   []item // the last chunk's whole buffer
		hint  int    // the last batch's length: the next one's capacity
	)
	add := func(ch chunk) {
		n := min(len(ch.items), c.cfg.BatchSize-len(batch))
		batch = append(batch, ch.items[:n]...)
		rest = chunk{items: ch.items[n:], first: ch.first}
		if len(rest.items) == 0 {
			clear(buf) // the batch holds the messages; the buffer need not
			select {
			case free <- buf[:0]:
			default:
			}
		}
	}
	closed := false // in is closed: what is left is rest
	for {
		first := rest
		if len(first.items) == 0 {
			if closed {
				return
			}
			select {
			case <-ctx.Done():
				return
			case ch, ok := <-in:
				if !ok {
					return
				}
				first, buf = ch, ch.items
			}
		}
		select {
		case batch = <-spare:
		default:
			batch = make([]item, 0, min(c.cfg.BatchSize, max(hint, len(first.items))))
		}
		add(first)
		// The batch's FlushInterval counts from its first message's fetch:
		// its fetcher may have waited up to the linger before sending it.
		timer.Reset(c.cfg.FlushInterval - min(time.Since(first.first), linger))
		// Once the FlushInterval is over (due) or the batch full, it goes to
		// out; while the apply loop is still busy with the previous batch,
		// it goes on filling: waiting for it to be taken delays no message,
		// and a fuller batch costs fewer round trips and commits per event.
		for due, sent := false, false; !sent; {
			more := in
			if len(batch) == c.cfg.BatchSize || closed {
				more = nil // a nil channel is never ready
			}
			var send chan<- []item
			if due || more == nil {
				send = out
			}
			select {
			case send <- batch:
				sent = true
				// A spare buffer's items past this batch are an older
				// batch's: not to be kept alive by this one.
				clear(batch[len(batch):cap(batch)])
			case ch, ok := <-more:
				if !ok {
					closed = true
					continue
				}
				buf = ch.items
				add(ch)
			case <-timer.C:
				due = true
			case <-ctx.Done():
				timer.Stop()
				return
			}
		}
		timer.Stop()
		hint = len(batch)
	}
}
