package notify

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestConfigValidate(t *testing.T) {
	withSMTP := func() Config {
		return Config{SMTP: SMTPConfig{Addr: "smtp.example.com:587", From: "cohortsync@example.com", Username: "cohortsync", Password: catalog.SecretRef{Env: "SMTP_PASSWORD"}}}
	}
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "defaults: no email", Change: func(*Config) {}},
		{Name: "a negative queue", Change: func(c *Config) { c.QueueSize = -1 }, Want: `--notify-queue-size="-1": want a positive number of deliveries`},
		{Name: "too many workers", Change: func(c *Config) { c.Workers = 65 }, Want: `--notify-workers="65": want a number of workers between 1 and 64`},
		{Name: "negative timeouts", Change: func(c *Config) {
			c.AttemptTimeout, c.Retry.Timeout, c.CloseTimeout = -time.Second, -time.Second, -time.Second
		}, Want: `--notify-attempt-timeout="-1s": want a positive duration` + "\n" + `--notify-retry-timeout="-1s": want a positive duration` + "\n" +
			`--notify-close-timeout="-1s": want a positive duration`},
		{Name: "an exclusions URL template", Change: func(c *Config) { c.ExclusionsURL = "https://console.example.com/runs/{run}/exclusions.csv" }},
		{Name: "an exclusions URL that is no http URL", Change: func(c *Config) { c.ExclusionsURL = "console/runs/{run}" },
			Want: `--notify-exclusions-url="console/runs/{run}": want an http:// or https:// URL with a host, {run} standing for the run's id`},
		{Name: "SMTP settings without a server", Change: func(c *Config) {
			c.SMTP.From, c.SMTP.Username = "a@b.c", "u"
		}, Want: `--smtp-username="u": want nothing without --smtp-addr` + "\n" + `--smtp-from="a@b.c": want nothing without --smtp-addr`},
	})
	testenv.RunValidate(t, withSMTP, []testenv.ValidateCase[Config]{
		{Name: "a server with AUTH PLAIN", Change: func(*Config) {}},
		{Name: "a server without auth, in clear", Change: func(c *Config) {
			c.SMTP.Username, c.SMTP.Password, c.SMTP.StartTLS = "", catalog.SecretRef{}, StartTLSOff
		}},
		{Name: "an address that is no host:port", Change: func(c *Config) { c.SMTP.Addr = "smtp.example.com" },
			Want: `--smtp-addr="smtp.example.com": want host:port of an SMTP server, such as smtp.example.com:587`},
		{Name: "no sender", Change: func(c *Config) { c.SMTP.From = "" }, Want: `--smtp-from: required, want the sender's address (user@example.com) with --smtp-addr`},
		{Name: "a sender with a display name", Change: func(c *Config) { c.SMTP.From = "Cohortsync <c@example.com>" },
			Want: `--smtp-from="Cohortsync <c@example.com>": want an address such as cohortsync@example.com`},
		{Name: "an unknown STARTTLS mode", Change: func(c *Config) { c.SMTP.StartTLS = "maybe" }, Want: `--smtp-starttls="maybe": want required or off`},
		{Name: "a password from both", Change: func(c *Config) { c.SMTP.Password.File = "/run/secrets/smtp" },
			Want: `--smtp-password-file="/run/secrets/smtp": want nothing with --smtp-password-env: one place to read the password from`},
		{Name: "a variable name that is no name", Change: func(c *Config) { c.SMTP.Password.Env = "1PW" },
			Want: `--smtp-password-env="1PW": want an environment variable name: letters, digits or '_', not starting with a digit`},
		{Name: "a user without a password", Change: func(c *Config) { c.SMTP.Password = catalog.SecretRef{} },
			Want: `--smtp-password-env: required, want where the password of --smtp-username is read (--smtp-password-env or --smtp-password-file)`},
		{Name: "a password without a user", Change: func(c *Config) { c.SMTP.Username = "" }, Want: `--smtp-username: required, want the user the password is for`},
	})
}
