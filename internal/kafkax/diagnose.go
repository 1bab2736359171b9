package kafkax

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// probeTimeout bounds one broker probe (connect, handshake, one request and
// its answer) when DialTimeout is longer: a diagnosis delays the error it
// explains, and a broker that cannot answer an ApiVersions request within
// it is not serving anyway.
const probeTimeout = 3 * time.Second

// BrokerError is a Kafka error that hid its cause (kafka-go reports a
// refused connection to every broker as "[8] Broker Not Available: not a
// client facing error", a server that never answers as a bare "context
// deadline exceeded"), explained by probing the bootstrap brokers. Its
// message is the brokers' causes; errors.Is and errors.As still see the
// original error, so it is classified as before.
type BrokerError struct {
	Err    error    // what kafka-go returned
	Causes []string // "broker <host:port>: <cause>", one per broker that failed the probe
	// LoginRefused is true when every broker that failed the probe
	// refused the SASL login (see LoginRefused).
	LoginRefused bool
}

// LoginRefused reports whether err says the brokers refused this client's
// SASL login: wrong credentials or mechanism, which retrying with the same
// ones does not mend. (Retryable may still be true: kafka-go reports a
// refused login through its transport as Broker Not Available, which is
// retried as any broker outage; a caller that knows the credentials cannot
// change meanwhile, such as a start-up check, can give up at once.)
func LoginRefused(err error) bool {
	var be *BrokerError
	return errors.Is(err, kafka.SASLAuthenticationFailed) || errors.As(err, &be) && be.LoginRefused
}

func (e *BrokerError) Error() string { return strings.Join(e.Causes, "; ") }
func (e *BrokerError) Unwrap() error { return e.Err }

// Explain returns err with the cause kafka-go left out, found by probing
// every bootstrap broker: a *BrokerError when err hides its cause and a
// broker fails the probe, else err itself. It probes only for errors that
// hide their cause or broker (Broker Not Available, a refused SASL login,
// a timeout, a connection closed or reset) and never after ctx was
// cancelled (the caller gave up: there is nothing to explain). A probe
// takes at most DialTimeout (3s at most), even past ctx's deadline, whose
// expiry is often what it explains.
func (f *Factory) Explain(ctx context.Context, err error) error {
	if err == nil || !opaque(err) || errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	var be *BrokerError
	if errors.As(err, &be) {
		return err // explained already, further down
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(f.cfg.DialTimeout, probeTimeout))
	defer cancel()
	causes := make([]probeResult, len(f.cfg.Brokers))
	done := make(chan struct{}, len(f.cfg.Brokers))
	for i, addr := range f.cfg.Brokers {
		go func() {
			defer func() { done <- struct{}{} }()
			causes[i] = f.probe(pctx, addr)
			if causes[i].cause != "" {
				causes[i].cause = "kafka broker " + addr + ": " + causes[i].cause
			}
		}()
	}
	for range f.cfg.Brokers {
		<-done
	}
	be = &BrokerError{Err: err, LoginRefused: true}
	for _, c := range causes {
		if c.cause != "" {
			be.Causes = append(be.Causes, c.cause)
			be.LoginRefused = be.LoginRefused && c.loginRefused
		}
	}
	if len(be.Causes) == 0 {
		return err // every broker answers: the cause is elsewhere
	}
	return be
}

// probeResult is what a probe found wrong with a broker: cause, "" if
// nothing; loginRefused if it is that the broker refused the SASL login.
type probeResult struct {
	cause        string
	loginRefused bool
}

// opaque reports whether err is one of kafka-go's errors that do not say
// what went wrong with the connection.
func opaque(err error) bool {
	var (
		ne  net.Error
		op  *net.OpError
		dns *net.DNSError
	)
	return errors.Is(err, kafka.BrokerNotAvailable) || errors.Is(err, context.DeadlineExceeded) ||
		// Says the login failed but not at which broker.
		errors.Is(err, kafka.SASLAuthenticationFailed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.As(err, &ne) && ne.Timeout() ||
		// Already explicit, but without the port, or in the words of the
		// system call: probed for one message of one form.
		errors.As(err, &op) || errors.As(err, &dns)
}

// probe finds what is wrong with the broker at addr: probeConn, then, if a
// Kafka broker answered, probeSASL.
func (f *Factory) probe(ctx context.Context, addr string) probeResult {
	if cause := f.probeConn(ctx, addr); cause != "" {
		return probeResult{cause: cause}
	}
	return f.probeSASL(ctx, addr)
}

// probeConn connects to addr as the clients do (TLS included; SASL comes
// after the first request), sends an ApiVersions request, and returns what
// is wrong, or "" when a Kafka broker answered.
func (f *Factory) probeConn(ctx context.Context, addr string) string {
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline).Round(100 * time.Millisecond)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return dialCause(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(deadline)
	if tc := f.tlsConfig(); tc != nil {
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(addr)
		}
		c := tls.Client(conn, tc)
		if err := c.HandshakeContext(ctx); err != nil {
			return "TLS handshake: " + err.Error()
		}
		conn = c
	}
	const correlationID = 0x636f6873 // any value the answer must echo
	if _, err := conn.Write(apiVersionsRequest(correlationID)); err != nil {
		return "the connection failed on the first request: " + err.Error()
	}
	var head [8]byte // the answer's size and correlation id
	n, err := io.ReadFull(conn, head[:])
	switch {
	case n > 0 && (binary.BigEndian.Uint32(head[:4]) > 1<<20 || n == 8 && binary.BigEndian.Uint32(head[4:]) != correlationID):
		return "not a Kafka broker: it answered " + strconv.Quote(string(head[:n])) + "... in another protocol"
	case err == nil:
		return ""
	case n > 0:
		return "not a Kafka broker: it answered " + strconv.Quote(string(head[:n])) + " and closed the connection"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		hint := ""
		if f.tls == nil {
			hint = " (a listener expecting TLS? see --kafka-tls)"
		}
		return "not a Kafka broker: it closed the connection without answering" + hint
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("accepted the connection but answered nothing within %v: a hung broker, or a server of another protocol", budget)
	}
	return "reading the answer: " + err.Error()
}

// probeSASL logs in to the broker at addr with the configured mechanism
// and credentials, as kafka-go's clients do on each new connection, and
// returns what went wrong (nothing without SASL). A transport whose login
// fails reports only "Broker Not Available" (kafka-go drops the broker's
// answer), the error this explains. The broker's answer names the
// mechanism, not the password (SCRAM never sends it), and the user name is
// no secret.
func (f *Factory) probeSASL(ctx context.Context, addr string) probeResult {
	if f.mech == nil {
		return probeResult{}
	}
	conn, err := f.Dialer().DialContext(ctx, "tcp", addr)
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return probeResult{loginRefused: true, cause: fmt.Sprintf(
			"SASL %s login as %q refused: %v (check --kafka-sasl-username, --kafka-sasl-password and the mechanism the listener enables)",
			f.mech.Name(), f.cfg.SASL.Username, err)}
	case err != nil:
		return probeResult{cause: fmt.Sprintf("SASL %s login as %q: %v", f.mech.Name(), f.cfg.SASL.Username, err)}
	}
	_ = conn.Close() // only the login was wanted
	return probeResult{}
}

// dialCause says why a connection could not be opened.
func dialCause(err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		return "unknown host " + strconv.Quote(dns.Name)
	case errors.As(err, &dns):
		return "resolving " + strconv.Quote(dns.Name) + ": " + dns.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens on that port)"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT):
		return "no answer to the connection request (a firewall dropping packets, or no such host on the network)"
	}
	return "connect: " + err.Error()
}

// apiVersionsRequest is an ApiVersions request, version 0: the request
// every Kafka client sends first, answered by every broker (with an error
// code if it no longer supports version 0, still a Kafka answer).
func apiVersionsRequest(correlationID int32) []byte {
	const clientID = "cohortsync-probe"
	b := make([]byte, 4, 4+10+len(clientID))
	b = binary.BigEndian.AppendUint16(b, 18) // ApiVersions
	b = binary.BigEndian.AppendUint16(b, 0)  // version 0
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// explainingTransport is the Factory's transport as its clients and
// writers see it: errors that hide their cause are explained (Explain).
type explainingTransport struct {
	f *Factory
}

func (t explainingTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	res, err := t.f.transport.RoundTrip(ctx, addr, req)
	if err != nil {
		err = t.f.Explain(ctx, err)
	}
	return res, err
}
