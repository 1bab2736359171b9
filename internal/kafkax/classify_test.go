package kafkax

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// realErrors produces the errors kafka-go and the network return, rather
// than values made up to look like them.
func realErrors(t *testing.T) (tooLarge, closed, refused, timeout, cancelled error) {
	t.Helper()
	f, err := New(Config{Brokers: []string{testenv.DroppingListener(t)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, 10*time.Second)

	// The writer refuses a message over BatchBytes before any I/O.
	w := f.Writer(WriterOptions{Topic: "t", BatchBytes: 16})
	tooLarge = w.WriteMessages(ctx, kafka.Message{Value: make([]byte, 64)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	closed = w.WriteMessages(ctx, kafka.Message{Value: []byte("v")})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	_, refused = f.Dialer().DialContext(ctx, "tcp", addr)

	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	_, timeout = c.Read(make([]byte, 1))

	// A broker that accepts and never answers: against the dropping
	// listener the call sometimes reached the reset before noticing the
	// cancelled context (a flaky "connection reset by peer"), so the
	// cancelled call's error must not depend on that race.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	fs, err := New(Config{Brokers: []string{silent.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, cancelled = fs.Client(time.Second).Metadata(cctx, &kafka.MetadataRequest{})
	return tooLarge, closed, refused, timeout, cancelled
}

func TestClassify(t *testing.T) {
	tooLarge, closed, refused, timeout, cancelled := realErrors(t)
	for _, tc := range []struct {
		name      string
		err       error
		retryable bool
	}{
		{"a message over the writer's batch bytes", tooLarge, false},
		{"a write to a closed writer", closed, false},
		{"a cancelled context", cancelled, false},
		{"a deadline passed", fmt.Errorf("write: %w", context.DeadlineExceeded), false},
		{"broker: message size too large", kafka.MessageSizeTooLarge, false},
		{"broker: topic authorization failed, wrapped", fmt.Errorf("topic t: %w", kafka.TopicAuthorizationFailed), false},
		{"broker: invalid topic", kafka.InvalidTopic, false},
		{"broker: SASL authentication failed", kafka.SASLAuthenticationFailed, false},
		{"already permanent", retry.Permanent(io.EOF), false},
		{"broker: leader not available", kafka.LeaderNotAvailable, true},
		{"broker: not leader for partition, wrapped", fmt.Errorf("partition 3: %w", kafka.NotLeaderForPartition), true},
		{"broker: request timed out", kafka.RequestTimedOut, true},
		{"broker: not enough replicas", kafka.NotEnoughReplicas, true},
		{"broker: unknown topic or partition (just created)", kafka.UnknownTopicOrPartition, true},
		{"connection refused", refused, true},
		{"network timeout", timeout, true},
		{"connection closed by the broker", io.EOF, true},
		{"connection cut mid-response", io.ErrUnexpectedEOF, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the error under test did not happen")
			}
			if got := Retryable(tc.err); got != tc.retryable {
				t.Fatalf("Retryable(%v) = %v, want %v", tc.err, got, tc.retryable)
			}
			// MessageTooLargeError is not comparable, so errors.Is cannot
			// find it: the message says Classify kept the error.
			c := Classify(tc.err)
			if c == nil || c.Error() != tc.err.Error() {
				t.Fatalf("Classify(%v) = %v, want the error itself", tc.err, c)
			}
			if retry.IsPermanent(c) == tc.retryable {
				t.Fatalf("Classify(%v) permanent = %v, want %v", tc.err, retry.IsPermanent(c), !tc.retryable)
			}
		})
	}
	if Retryable(nil) || Classify(nil) != nil {
		t.Fatal("nil is not an error to retry")
	}
}

func TestClassifyStopsRetries(t *testing.T) {
	calls := 0
	err := retry.Do(testenv.Context(t, 10*time.Second), retry.Policy{Initial: time.Millisecond, Timeout: 5 * time.Second}, "create topics",
		func() error {
			calls++
			if calls < 3 {
				return Classify(kafka.LeaderNotAvailable)
			}
			return Classify(fmt.Errorf("topic t: %w", kafka.TopicAuthorizationFailed))
		}, nil)
	if calls != 3 || !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Fatalf("after %d calls err = %v, want 3 calls ending in TopicAuthorizationFailed", calls, err)
	}
}

func TestGenerationEnded(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{kafka.RebalanceInProgress, true},
		{fmt.Errorf("commit: %w", kafka.IllegalGeneration), true},
		{kafka.UnknownMemberId, true},
		{kafka.FencedInstanceID, true},
		{kafka.RequestTimedOut, false},
		{kafka.NotCoordinatorForGroup, false},
		{io.EOF, false},
		{nil, false},
	} {
		if got := GenerationEnded(tc.err); got != tc.want {
			t.Errorf("GenerationEnded(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
