package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// selfSigned is a certificate for 127.0.0.1 and the pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// mailbox is an SMTP server on loopback (go-smtp) that requires AUTH
// PLAIN as user/password over TLS, and keeps what it receives.
type mailbox struct {
	addr string
	// failMail answers the first n MAIL commands 451 (try again later).
	failMail int

	mu       sync.Mutex
	sessions int
	messages []message
}

type message struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

type session struct {
	box  *mailbox
	conn *smtp.Conn
	user string
	msg  message
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != "cohortsync" || password != "smtp-pass" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	if s.box.failMail > 0 {
		s.box.failMail--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.msg.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.msg.tls = s.conn.TLSConnectionState()
	s.msg.data, s.msg.user = b, s.user
	s.box.mu.Lock()
	s.box.messages = append(s.box.messages, s.msg)
	s.box.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = message{} }
func (s *session) Logout() error { return nil }

// newMailbox starts a mailbox failing the first failMail MAIL commands;
// with cert nil it offers no STARTTLS (and then accepts AUTH in clear, as
// Go's client sends it to loopback).
func newMailbox(t *testing.T, cert *tls.Certificate, failMail int) *mailbox {
	box := &mailbox{failMail: failMail}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		box.mu.Lock()
		box.sessions++
		box.mu.Unlock()
		return &session{box: box, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	} else {
		srv.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	return box
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (b *mailbox) received() []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]message(nil), b.messages...)
}

func TestEmail(t *testing.T) {
	cert, pool := selfSigned(t)
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(pwFile, []byte("smtp-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	smtpCfg := func(addr string) SMTPConfig {
		return SMTPConfig{Addr: addr, From: "cohortsync@example.com", Username: "cohortsync", Password: catalog.SecretRef{File: pwFile},
			TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	for _, tc := range []struct {
		name     string
		tls      bool // the server offers STARTTLS
		failMail int
		change   func(*SMTPConfig)
		status   string
		attempts int
		err      string
	}{
		{name: "over STARTTLS with AUTH PLAIN", tls: true, status: StatusDelivered, attempts: 1},
		{name: "a 451 is retried", tls: true, failMail: 1, status: StatusDelivered, attempts: 2},
		{name: "a wrong password is final", tls: true, change: func(c *SMTPConfig) { c.Password.File = wrongFile },
			status: StatusFailed, attempts: 1, err: `AUTH PLAIN: 535 "5.7.8 bad credentials"`},
		{name: "a server without STARTTLS is refused when it is required", status: StatusFailed, attempts: 1,
			err: "offers no STARTTLS (--smtp-starttls=off sends in clear)"},
		{name: "a certificate that does not verify is final", tls: true, change: func(c *SMTPConfig) { c.TLS = nil },
			status: StatusFailed, attempts: 1, err: "STARTTLS: tls: failed to verify certificate"},
		{name: "in clear when STARTTLS is off", change: func(c *SMTPConfig) { c.StartTLS = StartTLSOff }, status: StatusDelivered, attempts: 1},
		{name: "no SMTP server", change: func(c *SMTPConfig) { *c = SMTPConfig{} }, status: StatusFailed, attempts: 0,
			err: "no SMTP server configured (--smtp-addr)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var box *mailbox
			if tc.tls {
				box = newMailbox(t, &cert, tc.failMail)
			} else {
				box = newMailbox(t, nil, tc.failMail)
			}
			cfg := smtpCfg(box.addr)
			if tc.change != nil {
				tc.change(&cfg)
			}
			h := history(t)
			n, err := New(t.Context(), Config{SMTP: cfg, Retry: fastRetry, AttemptTimeout: 5 * time.Second,
				ExclusionsURL: "https://console.example.com/runs/{run}/exclusions.csv"}, h, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			run := failedRun(time.Now())
			to := []string{"growth@example.com", "oncall@example.com"}
			n.Notify(catalog.Notify{Email: &catalog.Email{To: to, Events: catalog.NotifyEvents}}, run)
			d := deliveries(t, h, run.Summary.Run, 1)[0]
			if d.Status != tc.status || d.Attempts != tc.attempts || !strings.Contains(d.Error, tc.err) ||
				d.Channel != ChannelEmail || d.Target != "growth@example.com, oncall@example.com" {
				t.Fatalf("delivery = %+v; want %s after %d attempts, error containing %q", d, tc.status, tc.attempts, tc.err)
			}
			got := box.received()
			if tc.status != StatusDelivered {
				if len(got) != 0 {
					t.Fatalf("%d messages received, want none", len(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d messages received, want 1", len(got))
			}
			m := got[0]
			if m.from != "cohortsync@example.com" || strings.Join(m.to, ",") != strings.Join(to, ",") || m.user != "cohortsync" || m.tls != tc.tls {
				t.Errorf("envelope: from %q to %q, user %q, tls %v", m.from, m.to, m.user, m.tls)
			}
			checkMessage(t, m.data, d.ID, run)
		})
	}
}

// checkMessage parses the received message and checks its headers and
// its decoded body.
func checkMessage(t *testing.T, data []byte, id string, run Run) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"From": "cohortsync@example.com", "To": "growth@example.com, oncall@example.com",
		"Subject": "[cohortsync] beta: run failed (destination production)", "Message-Id": "<" + id + "@cohortsync>",
		"Cohortsync-Delivery": id, "Cohortsync-Event": "failed",
		"Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	r := run.Summary.Run
	want := "Run " + r + " of mapping beta into destination production: failed.\r\n\r\n" +
		"  trigger     scheduled\r\n" +
		"  error       kafka: not enough replicas\r\n" +
		"  started     " + run.Summary.Started.UTC().Format(time.RFC3339) + "\r\n" +
		"  duration    1.5s\r\n" +
		"  segment     beta-users (generation 2)\r\n" +
		"  members     7\r\n  added       4\r\n  removed     1\r\n  unchanged   3\r\n  excluded    2\r\n  duplicates  1\r\n\r\n" +
		"The 2 excluded rows and why: cohortsync runs exclusions " + r + "\r\n" +
		"or download them: https://console.example.com/runs/" + r + "/exclusions.csv\r\n\r\n" +
		"The whole run: cohortsync runs show " + r + "\r\n"
	if string(body) != want {
		t.Errorf("body\n%s\nwant\n%s", body, want)
	}
}
