package catalog

import (
	"net/mail"
	neturl "net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NotifyEvent is an end of a run a mapping's notifications can be sent on.
type NotifyEvent string

// Notification events, in the order they are listed.
const (
	// EventFinished: the run succeeded (producer.Succeeded).
	EventFinished NotifyEvent = "finished"
	// EventFailed: the run failed (producer.Failed), or could not start.
	EventFailed NotifyEvent = "failed"
	// EventRefused: a guard refused the run (producer.Refused), nothing
	// was published.
	EventRefused NotifyEvent = "refused"
	// EventApplied: the consumer group committed past every event of a
	// finished run: it is in the destination's Redis (runwatch).
	EventApplied NotifyEvent = "applied"
	// EventSetAside: the consumer set events of a finished run's
	// destination aside instead of applying them; the next run of the
	// segment repairs it.
	EventSetAside NotifyEvent = "set_aside"
)

// NotifyEvents are every event, in the order they are listed.
var NotifyEvents = []NotifyEvent{EventFinished, EventFailed, EventRefused, EventApplied, EventSetAside}

// DefaultNotifyEvents are the events of a channel that lists none: how
// each run ended (applied and set_aside are asked for by name).
var DefaultNotifyEvents = NotifyEvents[:3]

// Notify says who is told when a run of a mapping ends. The zero value
// tells nobody.
type Notify struct {
	// Webhook, unless nil, is POSTed a signed JSON summary.
	Webhook *Webhook
	// Email, unless nil, is sent a plain-text summary.
	Email *Email
}

// IsZero tells whether n tells nobody.
func (n Notify) IsZero() bool { return n.Webhook == nil && n.Email == nil }

// Webhook is an HTTP endpoint told of runs.
type Webhook struct {
	// URL is an http:// or https:// URL without credentials. Required.
	URL string
	// Secret is where the HMAC-SHA256 signing secret is read. Required:
	// a receiver must be able to tell cohortsync's requests from others.
	Secret SecretRef
	// Events are the events sent, in NotifyEvents order. Default
	// DefaultNotifyEvents.
	Events []NotifyEvent
}

// Email is the people told of runs by email, through the process's SMTP
// settings.
type Email struct {
	// To are the recipients' addresses (user@host). At least one.
	To []string
	// Events are the events sent, in NotifyEvents order. Default
	// DefaultNotifyEvents.
	Events []NotifyEvent
}

// Wants tells whether events holds e.
func Wants(events []NotifyEvent, e NotifyEvent) bool { return slices.Contains(events, e) }

// EncodedNotify is a mapping's notifications in its Encoded form: where
// the webhook's secret is read, never the secret.
type EncodedNotify struct {
	WebhookURL        string   `json:"webhook_url,omitempty"`
	WebhookSecretEnv  string   `json:"webhook_secret_env,omitempty"`
	WebhookSecretFile string   `json:"webhook_secret_file,omitempty"`
	WebhookEvents     []string `json:"webhook_events,omitempty"`
	EmailTo           []string `json:"email_to,omitempty"`
	EmailEvents       []string `json:"email_events,omitempty"`
}

// EventNames are the names of es, as a file spells them.
func EventNames(es []NotifyEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e)
	}
	return out
}

func eventsOf(ss []string) []NotifyEvent {
	out := make([]NotifyEvent, len(ss))
	for i, s := range ss {
		out[i] = NotifyEvent(s)
	}
	return out
}

// encode is n's encoded form, nil when n tells nobody (so that mappings
// without notifications keep their hashes).
func (n Notify) encode() *EncodedNotify {
	if n.IsZero() {
		return nil
	}
	e := &EncodedNotify{}
	if w := n.Webhook; w != nil {
		e.WebhookURL, e.WebhookSecretEnv, e.WebhookSecretFile, e.WebhookEvents = w.URL, w.Secret.Env, w.Secret.File, EventNames(w.Events)
	}
	if m := n.Email; m != nil {
		e.EmailTo, e.EmailEvents = slices.Clone(m.To), EventNames(m.Events)
	}
	return e
}

// notify is the Notify e encodes; nil is none.
func (e *EncodedNotify) notify() Notify {
	var n Notify
	if e == nil {
		return n
	}
	if e.WebhookURL != "" {
		n.Webhook = &Webhook{URL: e.WebhookURL, Secret: SecretRef{Env: e.WebhookSecretEnv, File: e.WebhookSecretFile}, Events: eventsOf(e.WebhookEvents)}
	}
	if len(e.EmailTo) > 0 {
		n.Email = &Email{To: slices.Clone(e.EmailTo), Events: eventsOf(e.EmailEvents)}
	}
	return n
}

var (
	notifyFields  = []string{"webhook", "email"}
	webhookFields = []string{"url", "secret_env", "secret_file", "events", "secret"}
	emailFields   = []string{"to", "events"}
)

// secretRefAdvice is how a file gives the webhook's signing secret.
const secretRefAdvice = "secret_env (an environment variable) or secret_file (a file) naming where the signing secret is read"

const eventsForm = "a list of finished, failed, refused, applied, set_aside"

// notify decodes a mapping's notify settings.
func (d *decoder) notify(n *yaml.Node, me *mapEntry) {
	e := me.entry
	lines := d.fields(n, e, "notify.", notifyFields, func(key string, v *yaml.Node) {
		switch key {
		case "webhook":
			me.Notify.Webhook = d.webhook(v, e)
		case "email":
			me.Notify.Email = d.email(v, e)
		}
	})
	if resolve(n).Kind == yaml.MappingNode && len(lines) == 0 {
		d.add(n.Line, e, "notify", "want webhook or email (or no notify)")
	}
}

func (d *decoder) webhook(n *yaml.Node, e Entry) *Webhook {
	w := &Webhook{}
	lines := d.fields(n, e, "notify.webhook.", webhookFields, func(key string, v *yaml.Node) {
		field := "notify.webhook." + key
		switch key {
		case "url":
			// Not d.text: a refused URL is shown redacted, it may hold a token.
			if u, ok := d.scalar(v, e, field, "a URL"); ok && validWebhookURL(u) {
				w.URL = u
			} else if ok {
				d.add(v.Line, e, field, "%s", invalid(redactURL(u), "an http:// or https:// URL with a host, without credentials (the signing secret is given by secret_env or secret_file)"))
			}
		case "secret":
			d.add(v.Line, e, field, "a secret in the file is refused: give %s", secretRefAdvice)
		case "secret_env":
			w.Secret.Env = d.text(v, e, field, envNamePattern.MatchString, envNameForm)
		case "secret_file":
			w.Secret.File = d.text(v, e, field, validText, "a file path: "+textForm)
		case "events":
			w.Events = d.events(v, e, field)
		}
	})
	if resolve(n).Kind != yaml.MappingNode {
		return w
	}
	if _, ok := lines["url"]; !ok {
		d.required(n, e, "notify.webhook.url", "an http:// or https:// URL")
	}
	if _, ok := lines["secret"]; !ok {
		d.secretPair(n, e, "notify.webhook.", "secret", "secret", lines, w.Secret, secretRefAdvice)
	}
	if _, ok := lines["events"]; !ok {
		w.Events = slices.Clone(DefaultNotifyEvents)
	}
	return w
}

func (d *decoder) email(n *yaml.Node, e Entry) *Email {
	m := &Email{}
	lines := d.fields(n, e, "notify.email.", emailFields, func(key string, v *yaml.Node) {
		field := "notify.email." + key
		switch key {
		case "to":
			var at []int
			m.To, at = d.texts(v, e, field, validAddress, "email addresses (user@example.com)")
			for i, a := range m.To {
				if slices.Index(m.To, a) < i {
					d.add(at[i], e, field, "%s", invalid(a, "each address once"))
				}
			}
		case "events":
			m.Events = d.events(v, e, field)
		}
	})
	if resolve(n).Kind != yaml.MappingNode {
		return m
	}
	if l, ok := lines["to"]; !ok {
		d.required(n, e, "notify.email.to", "a list of email addresses")
	} else if len(m.To) == 0 && !d.reported(l) {
		d.add(l, e, "notify.email.to", "want at least one email address")
	}
	if _, ok := lines["events"]; !ok {
		m.Events = slices.Clone(DefaultNotifyEvents)
	}
	return m
}

// events decodes a list of events, returned in NotifyEvents order.
func (d *decoder) events(v *yaml.Node, e Entry, field string) []NotifyEvent {
	names, lines := d.texts(v, e, field, func(s string) bool { return Wants(NotifyEvents, NotifyEvent(s)) }, eventsForm)
	for i, s := range names {
		if slices.Index(names, s) < i {
			d.add(lines[i], e, field, "%s", invalid(s, "each event once"))
		}
	}
	if len(names) == 0 && !d.reported(v.Line) {
		d.add(v.Line, e, field, "want %s (leave events out for finished, failed and refused)", eventsForm)
	}
	var out []NotifyEvent
	for _, ev := range NotifyEvents {
		if slices.Contains(names, string(ev)) {
			out = append(out, ev)
		}
	}
	return out
}

// validWebhookURL accepts what a webhook can be POSTed to: http(s), a
// host, no credentials (a secret in the file would be read by everyone
// who reads the file or the store).
func validWebhookURL(s string) bool {
	u, err := neturl.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Fragment == ""
}

// validAddress accepts a bare address, user@host, without a display name.
func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && strings.Contains(s, "@")
}
