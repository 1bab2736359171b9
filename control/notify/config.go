package notify

import (
	"crypto/tls"
	"errors"
	"net"
	"net/mail"
	neturl "net/url"
	"regexp"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// Defaults of Config.
const (
	DefaultQueueSize      = 100
	DefaultWorkers        = 2
	DefaultAttemptTimeout = 10 * time.Second
	DefaultRetryTimeout   = 2 * time.Minute
	DefaultCloseTimeout   = 10 * time.Second
	// DefaultRetryInitial and DefaultRetryMax are the first and the
	// longest wait between attempts: a receiver that is restarting is
	// given seconds, not milliseconds.
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = 30 * time.Second
)

// StartTLS modes of SMTPConfig.
const (
	// StartTLSRequired sends only over STARTTLS: a server that does not
	// offer it fails the delivery.
	StartTLSRequired = "required"
	// StartTLSOff sends in clear (a relay on the same host or network);
	// Go's SMTP client then refuses AUTH PLAIN except to localhost.
	StartTLSOff = "off"
)

// Config tunes a Notifier. The zero value takes every default and sends
// no email.
type Config struct {
	// QueueSize bounds the deliveries waiting for a worker; one more is
	// dropped (logged and counted), never waited for. Default
	// DefaultQueueSize.
	QueueSize int
	// Workers deliver at once. Default DefaultWorkers.
	Workers int
	// AttemptTimeout bounds one attempt: one HTTP request, one SMTP
	// session. Default DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Retry spaces the attempts of one delivery; its Timeout bounds the
	// retries (an attempt under way may add AttemptTimeout). Default
	// Initial DefaultRetryInitial, Max DefaultRetryMax, Timeout
	// DefaultRetryTimeout.
	Retry retry.Policy
	// CloseTimeout bounds how long Close waits for queued and in-flight
	// deliveries before it abandons them. Default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// ExclusionsURL is where people download a run's exclusions, {run}
	// standing for the run's id (e.g.
	// https://console.example.com/runs/{run}/exclusions.csv); "" for none
	// (the notifications then give the command only).
	ExclusionsURL string
	// SMTP is the server emails go through; without an Addr, a mapping's
	// email notifications fail (and are recorded as failed).
	SMTP SMTPConfig
	// LookupEnv and ReadFile read the webhooks' secrets and the SMTP
	// password. Default os.LookupEnv and os.ReadFile.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
	// Now is the clock of the signatures' timestamps. Default time.Now.
	Now func() time.Time
	// OnDelivery, unless nil, is called with every delivery that ended
	// (Status delivered or failed) or was dropped (Status dropped), from
	// the worker or from Notify: metrics hang here.
	OnDelivery func(runstore.Delivery)
}

// SMTPConfig is the SMTP server of a process.
type SMTPConfig struct {
	// Addr is the server's host:port (submission is usually port 587);
	// "" for no email.
	Addr string
	// Username, when set, authenticates with AUTH PLAIN, with the password
	// read from Password.
	Username string
	// Password is where the password is read, at each delivery (a rotated
	// password is picked up). Required with Username.
	Password catalog.SecretRef
	// From is the sender's address (user@host). Required with Addr.
	From string
	// StartTLS is StartTLSRequired or StartTLSOff. Default
	// StartTLSRequired.
	StartTLS string
	// TLS, unless nil, is the TLS configuration of STARTTLS (its
	// ServerName is set to Addr's host); nil verifies the server against
	// the system's roots. For tests and programs embedding the notifier;
	// no flag sets it.
	TLS *tls.Config
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	var errs []error
	if c.QueueSize < 0 {
		errs = append(errs, setting.Invalid("notify-queue-size", c.QueueSize, "a positive number of deliveries"))
	}
	if c.Workers < 0 || c.Workers > 64 {
		errs = append(errs, setting.Invalid("notify-workers", c.Workers, "a number of workers between 1 and 64"))
	}
	if c.AttemptTimeout < 0 {
		errs = append(errs, setting.Invalid("notify-attempt-timeout", c.AttemptTimeout, "a positive duration"))
	}
	if c.Retry.Timeout < 0 {
		errs = append(errs, setting.Invalid("notify-retry-timeout", c.Retry.Timeout, "a positive duration"))
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, setting.Invalid("notify-close-timeout", c.CloseTimeout, "a positive duration"))
	}
	if c.ExclusionsURL != "" && !validTemplate(c.ExclusionsURL) {
		errs = append(errs, setting.Invalid("notify-exclusions-url", c.ExclusionsURL, "an http:// or https:// URL with a host, {run} standing for the run's id"))
	}
	return errors.Join(append(errs, c.SMTP.Validate())...)
}

// Validate reports every invalid setting as a *setting.Error.
func (c SMTPConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		for _, f := range [...]struct{ name, value string }{
			{"smtp-username", c.Username}, {"smtp-password-env", c.Password.Env}, {"smtp-password-file", c.Password.File}, {"smtp-from", c.From},
		} {
			if f.value != "" {
				errs = append(errs, setting.Invalid(f.name, f.value, "nothing without --smtp-addr"))
			}
		}
		return errors.Join(errs...)
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil || host == "" || port == "" {
		errs = append(errs, setting.Invalid("smtp-addr", c.Addr, "host:port of an SMTP server, such as smtp.example.com:587"))
	}
	if c.From == "" {
		errs = append(errs, setting.Missing("smtp-from", "the sender's address (user@example.com) with --smtp-addr"))
	} else if !validAddress(c.From) {
		errs = append(errs, setting.Invalid("smtp-from", c.From, "an address such as cohortsync@example.com"))
	}
	switch c.StartTLS {
	case "", StartTLSRequired, StartTLSOff:
	default:
		errs = append(errs, setting.Invalid("smtp-starttls", c.StartTLS, "%s or %s", StartTLSRequired, StartTLSOff))
	}
	if c.Password.Env != "" && c.Password.File != "" {
		errs = append(errs, setting.Invalid("smtp-password-file", c.Password.File, "nothing with --smtp-password-env: one place to read the password from"))
	}
	if c.Password.Env != "" && !envName.MatchString(c.Password.Env) {
		errs = append(errs, setting.Invalid("smtp-password-env", c.Password.Env, "an environment variable name: letters, digits or '_', not starting with a digit"))
	}
	switch {
	case c.Username != "" && c.Password.IsZero():
		errs = append(errs, setting.Missing("smtp-password-env", "where the password of --smtp-username is read (--smtp-password-env or --smtp-password-file)"))
	case c.Username == "" && !c.Password.IsZero():
		errs = append(errs, setting.Missing("smtp-username", "the user the password is for"))
	}
	return errors.Join(errs...)
}

func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// validTemplate accepts an http(s) URL with a host once {run} is
// replaced.
func validTemplate(s string) bool {
	u, err := neturl.Parse(strings.ReplaceAll(s, "{run}", "20261207T120000Z-0"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = DefaultRetryInitial
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = DefaultRetryMax
	}
	if c.Retry.Timeout == 0 {
		c.Retry.Timeout = DefaultRetryTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.SMTP.StartTLS == "" {
		c.SMTP.StartTLS = StartTLSRequired
	}
	return c
}
