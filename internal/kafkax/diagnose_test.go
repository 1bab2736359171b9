package kafkax

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestErrorsNameTheBrokerAndTheCause pins issue 11 item 4: a refused
// connection, an unknown host, a port of another protocol and a server
// that never answers all used to print "[8] Broker Not Available: not a
// client facing error" (or a bare "context deadline exceeded"). Each error
// now names the broker and what is wrong with it, for the admin client,
// the metadata client and the writer alike, and stays classified as
// before.
func TestErrorsNameTheBrokerAndTheCause(t *testing.T) {
	httpServer := testenv.Serve(t, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadByte()
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		_ = c.Close()
	})
	banner := testenv.Serve(t, func(c net.Conn) {
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")) // speaks first, then waits
		_, _ = c.Read(make([]byte, 1))
	})
	silent := testenv.Serve(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 1<<16)) // reads the request, never answers
		_, _ = c.Read(make([]byte, 1))
	})
	hangUp := testenv.DroppingListener(t)
	closed := testenv.ClosedAddr(t)
	for _, tc := range []struct {
		name, addr, cause string
	}{
		{"connection refused", closed, "connection refused"},
		{"unknown host", "broker.cohortsync.invalid:9092", `unknown host "broker.cohortsync.invalid"`},
		{"an HTTP server", httpServer, `not a Kafka broker: it answered "HTTP/1.1"`},
		{"a server of another protocol speaking first", banner, `not a Kafka broker: it answered "SSH-2.0-"`},
		{"a server that hangs up", hangUp, "not a Kafka broker: it closed the connection without answering (a listener expecting TLS?"},
		{"a server that never answers", silent, "accepted the connection but answered nothing within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := New(Config{Brokers: []string{tc.addr}, DialTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Close() })
			ctx := testenv.Context(t, 30*time.Second)
			w := f.Writer(WriterOptions{Topic: "t", MaxAttempts: 1, WriteTimeout: 2 * time.Second})
			t.Cleanup(func() { _ = w.Close() })
			for _, call := range []struct {
				what string
				do   func(ctx context.Context) error
			}{
				{"create topics", func(ctx context.Context) error {
					_, err := f.Client(2*time.Second).CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "t", NumPartitions: 1, ReplicationFactor: 1}}})
					return err
				}},
				{"metadata", func(ctx context.Context) error {
					_, err := f.Client(2*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}})
					return err
				}},
				{"write", func(ctx context.Context) error {
					return w.WriteMessages(ctx, kafka.Message{Value: []byte("v")})
				}},
			} {
				start := time.Now()
				// Bounded as every caller bounds its calls: a writer looks
				// up the topic's partitions for as long as ctx lets it.
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				err := call.do(cctx)
				cancel()
				msg := ""
				if err != nil {
					msg = err.Error()
				}
				if want := "kafka broker " + tc.addr + ": " + tc.cause; !strings.Contains(msg, want) {
					t.Errorf("%s: error %q, want it to contain %q", call.what, msg, want)
				}
				if strings.Contains(msg, "not a client facing error") {
					t.Errorf("%s: error %q still hides the cause", call.what, msg)
				}
				if took := time.Since(start); took > 6*time.Second {
					t.Errorf("%s took %v, want the call's 3s plus a probe (1s)", call.what, took)
				}
				if LoginRefused(err) {
					t.Errorf("%s: LoginRefused(%v) = true without SASL", call.what, err)
				}
				if Retryable(err) != Retryable(errors.Unwrap(asBrokerError(err))) {
					t.Errorf("%s: explaining %v changed its class", call.what, err)
				}
			}
		})
	}
}

// asBrokerError returns the *BrokerError in err's chain, or err.
func asBrokerError(err error) error {
	var be *BrokerError
	if errors.As(err, &be) {
		return be
	}
	return err
}

// TestExplainLeavesOtherErrorsAlone: an error with nothing to explain, an
// error of a caller that gave up, and an error while every broker answers
// are returned as they are.
func TestExplainLeavesOtherErrorsAlone(t *testing.T) {
	closed, err := New(Config{Brokers: []string{testenv.ClosedAddr(t)}})
	if err != nil {
		t.Fatal(err)
	}
	brokers, _ := testenv.Kafka(t)
	live, err := New(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		f    *Factory
		ctx  context.Context
		err  error
	}{
		{"a broker's refusal", closed, t.Context(), kafka.TopicAuthorizationFailed},
		{"a cancelled caller", closed, cancelled, kafka.BrokerNotAvailable},
		{"every broker answers", live, t.Context(), kafka.BrokerNotAvailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.f.Explain(tc.ctx, tc.err); got != tc.err {
				t.Errorf("Explain(%v) = %v, want it unchanged", tc.err, got)
			}
		})
	}
}
