package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

var testOrigin = Origin{
	Segment: snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"},
	Run:     "r1", Source: "csv",
}

// TestEncodeMatchesSchema pins the wire format: the publisher's arena
// encoding must equal schema.Event.Message and decode back to the event.
func TestEncodeMatchesSchema(t *testing.T) {
	cfg := DefaultConfig()
	id := snapshot.SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 3, ContextKind: "user"}
	p, err := newStream(context.Background(), nil, &writes{}, cfg, Origin{Segment: id, Run: "20261125T201500Z-1a2b3c4d", Source: "csv"})
	if err != nil {
		t.Fatal(err)
	}
	batch := []snapshot.Change{
		{Op: schema.OpAdd, Key: []byte("alice@example.com"), Seq: 7},
		{Op: schema.OpRemove, Key: []byte("quote\" <tag> \u2028 é"), Seq: 8},
	}
	enc, err := p.encode(batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range enc.msgs {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if ev.ContextKey != string(batch[i].Key) || ev.Op != batch[i].Op || ev.Seq != batch[i].Seq || ev.Generation != 3 {
			t.Fatalf("decoded %+v from change %+v", ev, batch[i])
		}
		want := ev.Message()
		if !bytes.Equal(m.Key, want.Key) || !bytes.Equal(m.Value, want.Value) {
			t.Fatalf("message %d differs from schema's encoding:\n%s\n%s", i, m.Value, want.Value)
		}
	}
	if _, err := p.encode([]snapshot.Change{{Op: schema.OpAdd, Key: []byte("\xff"), Seq: 9}}); err == nil {
		t.Fatal("invalid key encoded")
	}
}

// scriptedWriter answers WriteMessages calls from a script; each answer
// gets the messages of the call and returns the error for it.
type scriptedWriter struct {
	mu      sync.Mutex
	calls   [][]string // keys of each call
	answers []func(msgs []kafka.Message) error
}

func (w *scriptedWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for _, m := range msgs {
		ev, err := schema.Decode(&m)
		if err != nil {
			return err
		}
		keys = append(keys, ev.ContextKey)
	}
	w.calls = append(w.calls, keys)
	if len(w.answers) == 0 {
		return nil
	}
	a := w.answers[0]
	w.answers = w.answers[1:]
	return a(msgs)
}

func failIndexes(err error, idx ...int) func([]kafka.Message) error {
	return func(msgs []kafka.Message) error {
		werrs := make(kafka.WriteErrors, len(msgs))
		for _, i := range idx {
			werrs[i] = err
		}
		return werrs
	}
}

func TestPublisherRetries(t *testing.T) {
	changes := []snapshot.Change{
		{Op: schema.OpAdd, Key: []byte("a"), Seq: 1},
		{Op: schema.OpAdd, Key: []byte("b"), Seq: 2},
		{Op: schema.OpRemove, Key: []byte("c"), Seq: 3},
	}
	tests := []struct {
		name      string
		answers   []func([]kafka.Message) error
		wantCalls [][]string
		wantErr   error
		wantAcked int64
	}{
		{name: "all acknowledged at once", wantCalls: [][]string{{"a", "b", "c"}}, wantAcked: 3},
		{name: "only the failed messages are retried",
			answers:   []func([]kafka.Message) error{failIndexes(kafka.NotLeaderForPartition, 1, 2), failIndexes(kafka.LeaderNotAvailable, 0)},
			wantCalls: [][]string{{"a", "b", "c"}, {"b", "c"}, {"b"}}, wantAcked: 3},
		{name: "a permanent error in a batch stops without retry",
			answers:   []func([]kafka.Message) error{failIndexes(kafka.TopicAuthorizationFailed, 2)},
			wantCalls: [][]string{{"a", "b", "c"}}, wantErr: kafka.TopicAuthorizationFailed, wantAcked: 2},
		{name: "a whole-call transient error retries everything",
			answers:   []func([]kafka.Message) error{func([]kafka.Message) error { return io.ErrUnexpectedEOF }},
			wantCalls: [][]string{{"a", "b", "c"}, {"a", "b", "c"}}, wantAcked: 3},
		{name: "a whole-call permanent error is reported",
			answers:   []func([]kafka.Message) error{func([]kafka.Message) error { return kafka.InvalidTopic }},
			wantCalls: [][]string{{"a", "b", "c"}}, wantErr: kafka.InvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RetryMaxElapsed = 10 * time.Second
			w := &scriptedWriter{answers: tt.answers}
			p, err := newStream(context.Background(), w, &writes{}, cfg, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := p.Send(ctx, changes); err != nil {
				t.Fatal(err)
			}
			err = p.Wait(ctx)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Wait = %v, want %v", err, tt.wantErr)
			}
			if fmt.Sprint(w.calls) != fmt.Sprint(tt.wantCalls) {
				t.Fatalf("calls %v, want %v", w.calls, tt.wantCalls)
			}
			if p.Acked() != tt.wantAcked {
				t.Fatalf("acked %d, want %d", p.Acked(), tt.wantAcked)
			}
			if tt.wantErr != nil {
				if err := p.Send(ctx, changes); !errors.Is(err, tt.wantErr) {
					t.Fatalf("Send after a failure = %v, want the failure", err)
				}
			}
		})
	}
}

func TestPublisherRetriesAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RetryMaxElapsed = time.Second
	w := &scriptedWriter{}
	for range 1000 {
		w.answers = append(w.answers, func([]kafka.Message) error { return kafka.LeaderNotAvailable })
	}
	p, err := newStream(context.Background(), w, &writes{}, cfg, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Send(context.Background(), []snapshot.Change{{Op: schema.OpAdd, Key: []byte("a"), Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	err = p.Wait(context.Background())
	if !errors.Is(err, kafka.LeaderNotAvailable) {
		t.Fatalf("Wait = %v, want the last transient error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("gave up after %v, want about RetryMaxElapsed (1s)", d)
	}
}

func TestPublisherStopsOnCancel(t *testing.T) {
	cfg := DefaultConfig()
	w := &scriptedWriter{}
	for range 1000 {
		w.answers = append(w.answers, func([]kafka.Message) error { return kafka.LeaderNotAvailable })
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := newStream(ctx, w, &writes{}, cfg, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, []snapshot.Change{{Op: schema.OpAdd, Key: []byte("a"), Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	if err := p.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Wait took %v after cancel", d)
	}
}

// lingeringWriter blocks every write until its ctx ends, then takes a
// while to return, as a produce request does that is already on the wire.
type lingeringWriter struct {
	started chan struct{} // receives once per write
	linger  time.Duration
	running atomic.Int32
	ended   atomic.Int32
}

func (w *lingeringWriter) WriteMessages(ctx context.Context, _ ...kafka.Message) error {
	w.running.Add(1)
	defer w.running.Add(-1)
	w.started <- struct{}{}
	<-ctx.Done()
	time.Sleep(w.linger)
	w.ended.Add(1)
	return ctx.Err()
}

// TestCloseEndsStreamsNotWaitedFor: a Stream sent to and never waited for
// (as a push receiver shutting down leaves one) has its writes cancelled by
// Close, which returns only once they ended; afterwards nothing starts.
func TestCloseEndsStreamsNotWaitedFor(t *testing.T) {
	kf, err := kafkax.New(kafkax.Config{Brokers: []string{testenv.DroppingListener(t)}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.InFlight = 2
	pub, err := New(cfg, kf)
	if err != nil {
		t.Fatal(err)
	}
	w := &lingeringWriter{started: make(chan struct{}, 2), linger: 200 * time.Millisecond}
	ctx := testenv.Context(t, 30*time.Second)
	st, err := newStream(ctx, w, &pub.writes, cfg, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := st.Send(ctx, []snapshot.Change{{Op: schema.OpAdd, Key: []byte("a"), Seq: uint64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-w.started:
		case <-ctx.Done():
			t.Fatal("writes did not start")
		}
	}

	start := time.Now()
	if err := pub.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if n, r := w.ended.Load(), w.running.Load(); n != 2 || r != 0 {
		t.Fatalf("Close returned with %d of 2 writes ended, %d running", n, r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v, want it to cancel the writes", d)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}

	err = st.Send(ctx, []snapshot.Change{{Op: schema.OpAdd, Key: []byte("b"), Seq: 3}})
	if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "publisher closed") {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := st.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want the writes' ErrClosed", err)
	}
	if _, err := pub.Stream(ctx, testOrigin); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stream after Close = %v, want ErrClosed", err)
	}
}

// TestBatchMemoryIsReusedOnlyAfterAcknowledgement: the memory of an
// acknowledged batch encodes the next batches right, whether they are
// larger or have longer keys than it, and a batch whose write failed is
// not reused (kafka-go may still hold its messages).
func TestBatchMemoryIsReusedOnlyAfterAcknowledgement(t *testing.T) {
	batch := func(n, keyLen int, seq uint64) []snapshot.Change {
		cs := make([]snapshot.Change, n)
		for i := range cs {
			cs[i] = snapshot.Change{Op: schema.OpAdd, Key: []byte(fmt.Sprintf("%0*d", keyLen, i)), Seq: seq + uint64(i)}
		}
		return cs
	}
	keys := func(cs []snapshot.Change) []string {
		var ks []string
		for _, c := range cs {
			ks = append(ks, string(c.Key))
		}
		return ks
	}
	for _, tc := range []struct {
		name     string
		batches  [][]snapshot.Change
		answer   func([]kafka.Message) error // of every write
		wantFree int                         // batches kept for reuse at the end
	}{
		{name: "a batch on the memory of a smaller one", batches: [][]snapshot.Change{batch(2, 3, 1), batch(50, 3, 3)}, wantFree: 1},
		{name: "a batch of longer keys than its memory's", batches: [][]snapshot.Change{batch(20, 1, 1), batch(20, 900, 21), batch(5, 2, 41)}, wantFree: 1},
		{name: "a failed batch is not reused", batches: [][]snapshot.Change{batch(3, 3, 1)}, wantFree: 0,
			answer: func([]kafka.Message) error { return kafka.InvalidTopic }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &scriptedWriter{}
			for range tc.batches {
				if tc.answer != nil {
					w.answers = append(w.answers, tc.answer)
				}
			}
			p, err := newStream(context.Background(), w, &writes{}, DefaultConfig(), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]string
			for _, b := range tc.batches {
				// One batch at a time: each is acknowledged before the next
				// is encoded, so it is the one reused.
				if err := p.Send(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				err := p.Wait(context.Background())
				if (err != nil) != (tc.answer != nil) {
					t.Fatalf("Wait = %v", err)
				}
				want = append(want, keys(b))
			}
			// scriptedWriter decoded each write's messages as it got them.
			if fmt.Sprint(w.calls) != fmt.Sprint(want) {
				t.Fatalf("writes of keys %v, want %v", w.calls, want)
			}
			if len(p.free) != tc.wantFree {
				t.Fatalf("%d batches kept for reuse, want %d", len(p.free), tc.wantFree)
			}
		})
	}
}
