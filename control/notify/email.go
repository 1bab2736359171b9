package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/retry"
)

// ErrNoSMTP is the error of an email notification in a process without
// an SMTP server (--smtp-addr).
var ErrNoSMTP = errors.New("no SMTP server configured (--smtp-addr)")

func (n *Notifier) smtpPassword() (string, error) {
	return n.cfg.SMTP.Password.Read("smtp", "password", n.cfg.LookupEnv, n.cfg.ReadFile)
}

// sendEmail sends the email of p to e's recipients, retrying what may
// pass, and returns the number of SMTP sessions opened.
func (n *Notifier) sendEmail(ctx context.Context, e catalog.Email, p Payload, r Run) (int, error) {
	if n.cfg.SMTP.Addr == "" {
		return 0, ErrNoSMTP
	}
	msg := n.message(n.cfg.SMTP.From, e.To, p, r, n.cfg.Now())
	attempts := 0
	err := retry.Do(ctx, n.cfg.Retry, "email via "+n.cfg.SMTP.Addr, func() error {
		attempts++
		return n.send(ctx, e.To, msg)
	}, func(err error, wait time.Duration) {
		n.log.Debug("email attempt failed; retrying", "delivery", p.Delivery, "attempt", attempts, "wait", wait, "error", err)
	})
	return attempts, err
}

// send is one SMTP session: STARTTLS, AUTH PLAIN, one message. Its error
// is retry.Permanent when the server refused for good (a 5xx reply) or
// the settings cannot work (no STARTTLS offered, a certificate that does
// not verify, AUTH refused by the client).
func (n *Notifier) send(ctx context.Context, to []string, msg []byte) error {
	cfg := n.cfg.SMTP
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
	defer cancel()
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return retry.Permanent(err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// net/smtp takes no context: the deadline bounds each read and write,
	// and ending ctx closes the connection under it.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close()
		return classify(err)
	}
	defer func() { _ = c.Close() }() // after Quit, or on an error already returned
	if err := c.Hello("cohortsync"); err != nil {
		return classify(err)
	}
	if cfg.StartTLS != StartTLSOff {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return retry.Permanent(fmt.Errorf("SMTP server %s offers no STARTTLS (--smtp-starttls=%s sends in clear)", cfg.Addr, StartTLSOff))
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
		}
		tc.ServerName = host
		if err := c.StartTLS(tc); err != nil {
			return classify(fmt.Errorf("STARTTLS: %w", err))
		}
	}
	if cfg.Username != "" {
		password, err := n.smtpPassword()
		if err != nil {
			return retry.Permanent(err)
		}
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, password, host)); err != nil {
			var tp *textproto.Error
			if !errors.As(err, &tp) {
				// The client's own refusal (no TLS to a remote host):
				// settings, not weather.
				return retry.Permanent(fmt.Errorf("AUTH PLAIN: %w", err))
			}
			return classify(fmt.Errorf("AUTH PLAIN: %w", err))
		}
	}
	if err := c.Mail(cfg.From); err != nil {
		return classify(fmt.Errorf("MAIL FROM: %w", err))
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return classify(fmt.Errorf("RCPT TO %s: %w", rcpt, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify(fmt.Errorf("DATA: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return classify(fmt.Errorf("DATA: %w", err))
	}
	if err := w.Close(); err != nil {
		return classify(fmt.Errorf("DATA: %w", err))
	}
	// The message is accepted; a failed QUIT does not unsend it.
	_ = c.Quit()
	return nil
}

// classify marks the errors retrying cannot fix: an SMTP reply 5xx, a
// certificate that does not verify.
func classify(err error) error {
	var tp *textproto.Error
	var cv *tls.CertificateVerificationError
	switch {
	case errors.As(err, &tp) && tp.Code >= 500:
		return retry.Permanent(err)
	case errors.As(err, &cv):
		return retry.Permanent(err)
	}
	return err
}
