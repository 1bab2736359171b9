package kafkax

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// handshake is what a TLS listener saw of one connection.
type handshake struct {
	err      error
	clientCN string // the client certificate's common name, if any
}

// tlsListener serves TLS on loopback with a certificate of ca for
// broker.test and reports each connection's handshake. With mutual, it
// requires a client certificate signed by ca.
func tlsListener(t *testing.T, ca *testCA, mutual bool) (addr string, handshakes <-chan handshake) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.serverTLS(t, "broker.test", mutual))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan handshake, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // the listener was closed
			}
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			h := handshake{err: tc.Handshake()}
			if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
				h.clientCN = certs[0].Subject.CommonName
			}
			_ = c.Close()
			ch <- h
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String(), ch
}

func nextHandshake(t *testing.T, ch <-chan handshake) handshake {
	t.Helper()
	select {
	case h := <-ch:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the TLS listener")
		return handshake{}
	}
}

func TestTLSHandshakes(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	clientCert, clientKey := ca.issue(t, "cohortsync-client", "client.test", true)

	for _, tc := range []struct {
		name    string
		tls     TLSConfig
		mutual  bool
		wantOK  bool
		wantCN  string
		through string // "dialer" or "transport"
		// brokerOnly: only the broker notices the failure (with TLS 1.3
		// the client's handshake ends before the broker checks its
		// certificate).
		brokerOnly bool
	}{
		{name: "dialer verifies the broker against the CA file",
			tls: TLSConfig{Enabled: true, CAFile: ca.CAFile, ServerName: "broker.test"}, wantOK: true, through: "dialer"},
		{name: "transport verifies the broker against the CA file",
			tls: TLSConfig{Enabled: true, CAFile: ca.CAFile, ServerName: "broker.test"}, wantOK: true, through: "transport"},
		{name: "dialer without a server name checks the broker's address",
			tls: TLSConfig{Enabled: true, CAFile: ca.CAFile}, wantOK: true, through: "dialer"},
		{name: "dialer presents the client certificate to a broker requiring one",
			tls:    TLSConfig{Enabled: true, CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey, ServerName: "broker.test"},
			mutual: true, wantOK: true, wantCN: "cohortsync-client", through: "dialer"},
		{name: "transport presents the client certificate to a broker requiring one",
			tls:    TLSConfig{Enabled: true, CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey, ServerName: "broker.test"},
			mutual: true, wantOK: true, wantCN: "cohortsync-client", through: "transport"},
		{name: "dialer refuses a broker signed by another CA",
			tls: TLSConfig{Enabled: true, CAFile: otherCA.CAFile, ServerName: "broker.test"}, through: "dialer"},
		{name: "transport refuses a broker signed by another CA",
			tls: TLSConfig{Enabled: true, CAFile: otherCA.CAFile, ServerName: "broker.test"}, through: "transport"},
		{name: "dialer refuses a broker whose certificate names another host",
			tls: TLSConfig{Enabled: true, CAFile: ca.CAFile, ServerName: "kafka.example"}, through: "dialer"},
		{name: "a broker requiring a client certificate refuses a client without one",
			tls: TLSConfig{Enabled: true, CAFile: ca.CAFile, ServerName: "broker.test"}, mutual: true, through: "dialer", brokerOnly: true},
		{name: "insecure skip verify accepts a broker of another CA",
			tls: TLSConfig{Enabled: true, InsecureSkipVerify: true}, wantOK: true, through: "transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, handshakes := tlsListener(t, ca, tc.mutual)
			f, err := New(Config{Brokers: []string{addr}, DialTimeout: 5 * time.Second, TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx := testenv.Context(t, 10*time.Second)
			var clientErr error
			switch tc.through {
			case "dialer":
				var c *kafka.Conn
				if c, clientErr = f.Dialer().DialContext(ctx, "tcp", addr); clientErr == nil {
					_ = c.Close()
				}
			case "transport":
				// The listener closes the connection after the handshake,
				// so the request fails either way: the handshake is what
				// is checked.
				_, clientErr = f.Client(5*time.Second).Metadata(ctx, &kafka.MetadataRequest{Addr: kafka.TCP(addr)})
			}
			h := nextHandshake(t, handshakes)
			if tc.wantOK != (h.err == nil) {
				t.Fatalf("broker's handshake error = %v (client: %v), want success %v", h.err, clientErr, tc.wantOK)
			}
			if h.clientCN != tc.wantCN {
				t.Fatalf("client certificate %q, want %q", h.clientCN, tc.wantCN)
			}
			if tc.through == "dialer" && !tc.brokerOnly && tc.wantOK != (clientErr == nil) {
				t.Fatalf("dial error = %v, want success %v", clientErr, tc.wantOK)
			}
		})
	}
}

func TestSASLMechanism(t *testing.T) {
	for _, tc := range []struct {
		mechanism string
		want      string // the mechanism's Name(); "" for none
	}{
		{"", ""},
		{MechanismPlain, "PLAIN"},
		{MechanismScramSHA256, "SCRAM-SHA-256"},
		{MechanismScramSHA512, "SCRAM-SHA-512"},
	} {
		t.Run("mechanism "+tc.mechanism, func(t *testing.T) {
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}, SASL: SASLConfig{Mechanism: tc.mechanism}}
			if tc.mechanism != "" {
				cfg.SASL.Username, cfg.SASL.Password = "user", "password"
			}
			f, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range map[string]interface{ Name() string }{
				"dialer": f.Dialer().SASLMechanism, "transport": f.Transport().SASL,
			} {
				got := ""
				if m != nil {
					got = m.Name()
				}
				if got != tc.want {
					t.Errorf("%s's mechanism = %q, want %q", name, got, tc.want)
				}
			}
		})
	}
}

func TestFactoryClients(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	f, err := New(Config{Brokers: brokers, ClientID: "kafkax-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := testenv.Context(t, 30*time.Second)

	t.Run("client answers metadata through the shared transport", func(t *testing.T) {
		c := f.Client(10 * time.Second)
		if !f.shares(c.Transport) {
			t.Fatal("client does not use the shared transport")
		}
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) == 0 {
			t.Fatal("no brokers in metadata")
		}
	})
	t.Run("writer has the settings every writer needs", func(t *testing.T) {
		w := f.Writer(WriterOptions{Topic: "t", BatchSize: 7, BatchBytes: 1 << 10, BatchTimeout: time.Millisecond,
			Compression: kafka.Zstd, WriteTimeout: 3 * time.Second, MaxAttempts: 2,
			WriteBackoffMin: time.Millisecond, WriteBackoffMax: 2 * time.Millisecond})
		defer w.Close()
		if _, ok := w.Balancer.(*keyHash); !ok {
			t.Errorf("balancer %T, want *keyHash (kafka.Hash's partitions)", w.Balancer)
		}
		if w.RequiredAcks != kafka.RequireAll || w.AllowAutoTopicCreation || !f.shares(w.Transport) {
			t.Errorf("acks %v, auto-create %v, shared transport %v", w.RequiredAcks, w.AllowAutoTopicCreation, f.shares(w.Transport))
		}
		if w.Topic != "t" || w.BatchSize != 7 || w.BatchBytes != 1<<10 || w.BatchTimeout != time.Millisecond ||
			w.Compression != kafka.Zstd || w.WriteTimeout != 3*time.Second || w.ReadTimeout != 3*time.Second ||
			w.MaxAttempts != 2 || w.WriteBackoffMin != time.Millisecond || w.WriteBackoffMax != 2*time.Millisecond {
			t.Errorf("writer options not applied: %+v", w)
		}
		if w.Addr.String() != kafka.TCP(brokers...).String() {
			t.Errorf("writer addr %v, want %v", w.Addr, brokers)
		}
	})
	t.Run("dialer connects with the client id and the dial timeout", func(t *testing.T) {
		d := f.Dialer()
		if d.ClientID != "kafkax-test" || d.Timeout != DefaultDialTimeout || !d.DualStack || d.TLS != nil || d.SASLMechanism != nil {
			t.Fatalf("dialer %+v", d)
		}
		c, err := d.DialContext(ctx, "tcp", brokers[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ApiVersions(); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	})
	t.Run("brokers are a copy", func(t *testing.T) {
		b := f.Brokers()
		b[0] = "changed:1"
		if f.Brokers()[0] != brokers[0] {
			t.Fatal("Brokers returned the factory's own slice")
		}
	})
	t.Run("each client gets its own TLS config", func(t *testing.T) {
		ca := newTestCA(t)
		tf, err := New(Config{Brokers: brokers, TLS: TLSConfig{Enabled: true, CAFile: ca.CAFile}})
		if err != nil {
			t.Fatal(err)
		}
		a, b := tf.Dialer().TLS, tf.Dialer().TLS
		if a == nil || a == b || a == tf.Transport().TLS || a.MinVersion != tls.VersionTLS12 || a.RootCAs == nil {
			t.Fatalf("dialer TLS configs %p %p (transport %p), min version %x", a, b, tf.Transport().TLS, a.MinVersion)
		}
	})
	t.Run("close is idempotent", func(t *testing.T) {
		g, err := New(Config{Brokers: brokers})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Client(5*time.Second).Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := g.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// shares tells whether rt is f's shared transport, as its clients and
// writers see it (through Explain).
func (f *Factory) shares(rt kafka.RoundTripper) bool {
	if wt, ok := rt.(*writerTransport); ok {
		rt = wt.next
	}
	et, ok := rt.(explainingTransport)
	return ok && et.f == f
}
