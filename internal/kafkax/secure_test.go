package kafkax

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// secureCluster starts an in-process cluster serving TLS with a
// certificate of ca (requiring a client certificate when mutual) and SASL
// with one user, and one topic "t".
func secureCluster(t *testing.T, ca *testCA, mutual bool, mechanism, user, pass string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.serverTLS(t, "kfake.test", mutual)), kfake.EnableSASL(),
		kfake.Superuser(mechanism, user, pass), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestSecureClusterRoundTrip writes and reads a message through every kind
// of client the Factory builds, over TLS and each SASL mechanism.
func TestSecureClusterRoundTrip(t *testing.T) {
	ca := newTestCA(t)
	clientCert, clientKey := ca.issue(t, "client", "client.test", true)
	for _, tc := range []struct {
		name      string
		mechanism string
		mutual    bool
	}{
		{"PLAIN over TLS", MechanismPlain, false},
		{"SCRAM-SHA-256 over TLS", MechanismScramSHA256, false},
		{"SCRAM-SHA-512 over mutual TLS", MechanismScramSHA512, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := secureCluster(t, ca, tc.mutual, tc.mechanism, "alice", "pw")
			cfg := Config{Brokers: brokers, DialTimeout: 5 * time.Second,
				TLS:  TLSConfig{Enabled: true, CAFile: ca.CAFile},
				SASL: SASLConfig{Mechanism: tc.mechanism, Username: "alice", Password: "pw"}}
			if tc.mutual {
				cfg.TLS.CertFile, cfg.TLS.KeyFile = clientCert, clientKey
			}
			f, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx := testenv.Context(t, 30*time.Second)

			if _, err := f.Client(5*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}}); err != nil {
				t.Fatalf("client: %v", err)
			}
			w := f.Writer(WriterOptions{Topic: "t", BatchTimeout: time.Millisecond, WriteTimeout: 5 * time.Second, MaxAttempts: 1})
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
				t.Fatalf("writer: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: f.Brokers(), Topic: "t", Partition: 0, Dialer: f.Dialer(), MaxWait: 100 * time.Millisecond})
			defer r.Close()
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			if string(m.Value) != "v" {
				t.Fatalf("read %q, want v", m.Value)
			}

			const wrongPW = "wrong-pw-5c1e9a"
			cfg.SASL.Password = wrongPW
			bad, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			if _, err := bad.Dialer().DialContext(ctx, "tcp", brokers[0]); err == nil {
				t.Fatal("dial with a wrong password succeeded")
			}
			// Through the transport, kafka-go says only "Broker Not
			// Available"; the probe's login names the broker and the cause.
			_, err = bad.Client(5*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}})
			want := "kafka broker " + brokers[0] + ": SASL " + tc.mechanism + ` login as "alice" refused`
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), wrongPW) {
				t.Fatalf("metadata with a wrong password = %v; want an error containing %q, without the password", err, want)
			}
			if !LoginRefused(err) {
				t.Errorf("LoginRefused(%v) = false", err)
			}
		})
	}
}
