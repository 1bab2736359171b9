package cli

import (
	"github.com/cohortsync/cohortsync/control/notify"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// notifySettings are the settings bindNotify binds.
var notifySettings = []string{"notify-queue-size", "notify-workers", "notify-attempt-timeout", "notify-retry-timeout", "notify-close-timeout",
	"notify-exclusions-url", "smtp-addr", "smtp-username", "smtp-password-env", "smtp-password-file", "smtp-from", "smtp-starttls"}

// newNotify returns the notifier's defaults, shown as such in --help.
func newNotify() notify.Config {
	c := notify.Config{QueueSize: notify.DefaultQueueSize, Workers: notify.DefaultWorkers, AttemptTimeout: notify.DefaultAttemptTimeout,
		CloseTimeout: notify.DefaultCloseTimeout, SMTP: notify.SMTPConfig{StartTLS: notify.StartTLSRequired}}
	c.Retry.Timeout = notify.DefaultRetryTimeout
	return c
}

// bindNotify binds how the notifications of mapping runs are delivered
// (each mapping's notify says to whom).
func bindNotify(s *setting.Set, c *notify.Config) {
	s.Int(&c.QueueSize, "notify-queue-size", "NOTIFY_QUEUE_SIZE", "run notifications waiting to be sent; one more is dropped (logged, counted), never waited for", setting.NonZero)
	s.Int(&c.Workers, "notify-workers", "NOTIFY_WORKERS", "run notifications sent at once", setting.NonZero)
	s.Duration(&c.AttemptTimeout, "notify-attempt-timeout", "NOTIFY_ATTEMPT_TIMEOUT", "bound on one webhook request or SMTP session", setting.NonZero)
	s.Duration(&c.Retry.Timeout, "notify-retry-timeout", "NOTIFY_RETRY_TIMEOUT", "a notification failing with network errors, 408, 429 or 5xx is retried, with backoff, this long", setting.NonZero)
	s.Duration(&c.CloseTimeout, "notify-close-timeout", "NOTIFY_CLOSE_TIMEOUT", "at exit, how long queued and in-flight notifications are waited for", setting.NonZero)
	s.String(&c.ExclusionsURL, "notify-exclusions-url", "NOTIFY_EXCLUSIONS_URL", "link to a run's exclusions in notifications, {run} standing for the run id (e.g. https://console/runs/{run}/exclusions.csv)")
	s.String(&c.SMTP.Addr, "smtp-addr", "SMTP_ADDR", "host:port of the SMTP server email notifications go through (none: mappings' email notifications fail)")
	s.String(&c.SMTP.Username, "smtp-username", "SMTP_USERNAME", "user of SMTP AUTH PLAIN (none: no AUTH)")
	s.String(&c.SMTP.Password.Env, "smtp-password-env", "SMTP_PASSWORD_ENV", "name of the environment variable holding the SMTP password")
	s.String(&c.SMTP.Password.File, "smtp-password-file", "SMTP_PASSWORD_FILE", "file holding the SMTP password (a final newline is not part of it)")
	s.String(&c.SMTP.From, "smtp-from", "SMTP_FROM", "sender address of email notifications (user@example.com)")
	s.String(&c.SMTP.StartTLS, "smtp-starttls", "SMTP_STARTTLS", "required (a server without STARTTLS fails the delivery) or off (in clear)")
}
