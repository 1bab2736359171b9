package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"mime/quotedprintable"
	neturl "net/url"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/producer"
)

// Run is an ended run of a mapping into one destination, as told.
type Run struct {
	// Mapping and Destination name what ran.
	Mapping     string
	Destination string
	// Trigger is why it ran (scheduled, catch-up, one-time, manual).
	Trigger string
	// Summary is the producer's report; its Run is the run's id, "" for a
	// run that failed before it started (nothing to look up then).
	Summary producer.Summary
	// Err is the run's error when Summary has none (a run that could not
	// start); "" otherwise.
	Err string
	// Settled, unless "", is the event of a finished run found applied
	// or set aside later (catalog.EventApplied, EventSetAside).
	Settled catalog.NotifyEvent
}

// Event is the event r is: finished, failed, refused, or how a finished
// run settled.
func (r Run) Event() catalog.NotifyEvent {
	switch {
	case r.Settled != "":
		return r.Settled
	case r.Summary.Outcome == producer.Refused:
		return catalog.EventRefused
	case r.Summary.Outcome == producer.Succeeded && r.Err == "":
		return catalog.EventFinished
	}
	return catalog.EventFailed
}

func (r Run) outcome() string {
	if r.Summary.Outcome == "" {
		return string(producer.Failed)
	}
	return string(r.Summary.Outcome)
}

func (r Run) errText() string {
	if r.Summary.Error != "" {
		return r.Summary.Error
	}
	return r.Err
}

// Payload is the JSON body of a webhook; its names are the documented
// format (README, Notifications).
type Payload struct {
	// Delivery is the Cohortsync-Delivery header's id.
	Delivery    string `json:"delivery"`
	Event       string `json:"event"`
	Run         string `json:"run"`
	Mapping     string `json:"mapping"`
	Destination string `json:"destination"`
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	Trigger     string `json:"trigger"`
	Outcome     string `json:"outcome"`
	Error       string `json:"error,omitempty"`
	Counts      Counts `json:"counts"`
	// Started is the run's start (RFC 3339); zero for a run that did not
	// start.
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	// Exclusions, when the run excluded rows, says how to get them.
	Exclusions *Exclusions `json:"exclusions,omitempty"`
}

// Counts are a run's counts (producer.Summary's).
type Counts struct {
	Rows             int64            `json:"rows"`
	Members          int64            `json:"members"`
	Added            int64            `json:"added"`
	Removed          int64            `json:"removed"`
	Unchanged        int64            `json:"unchanged"`
	Excluded         int64            `json:"excluded"`
	ExcludedByReason map[string]int64 `json:"excluded_by_reason,omitempty"`
	Duplicates       int64            `json:"duplicates"`
	Events           int64            `json:"events"`
}

// Exclusions says where a run's exclusion report is.
type Exclusions struct {
	// Command prints it as CSV.
	Command string `json:"command"`
	// URL downloads it, when the process knows one (--notify-exclusions-url).
	URL string `json:"url,omitempty"`
}

// payload is r's Payload for delivery id.
func (n *Notifier) payload(id string, r Run) Payload {
	s := r.Summary
	p := Payload{
		Delivery: id, Event: string(r.Event()), Run: s.Run, Mapping: r.Mapping, Destination: r.Destination,
		Segment: s.Segment, Generation: s.Generation, Trigger: r.Trigger, Outcome: r.outcome(), Error: r.errText(),
		Counts: Counts{Rows: s.Rows, Members: s.Keys, Added: s.Added, Removed: s.Removed, Unchanged: s.Unchanged,
			Excluded: s.ExcludedTotal(), ExcludedByReason: s.Excluded, Duplicates: s.Duplicates, Events: s.Events},
		Started: s.Started, DurationMS: s.Duration.Milliseconds(),
	}
	if s.Run != "" && p.Counts.Excluded > 0 {
		p.Exclusions = &Exclusions{Command: "cohortsync runs exclusions " + s.Run, URL: n.exclusionsURL(s.Run)}
	}
	return p
}

func (n *Notifier) exclusionsURL(run string) string {
	if n.cfg.ExclusionsURL == "" {
		return ""
	}
	return strings.ReplaceAll(n.cfg.ExclusionsURL, "{run}", neturl.PathEscape(run))
}

// Signature is the Cohortsync-Signature header of body sent at t, signed
// with secret: "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix>.<body>">".
func Signature(secret []byte, t time.Time, body []byte) string {
	ts := fmt.Sprint(t.Unix())
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// body is p as JSON.
func (p Payload) body() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		// Strings, numbers, a time and a map of numbers always marshal.
		panic("notify: encode payload: " + err.Error())
	}
	return b
}

// subject is an email's subject for r.
func subject(r Run) string {
	s := fmt.Sprintf("[cohortsync] %s: run %s (destination %s)", r.Mapping, r.Event(), r.Destination)
	return mime.QEncoding.Encode("utf-8", s)
}

// message is the email of p to to, from from: headers and a plain-text
// body (quoted-printable, so that any error text travels intact).
func (n *Notifier) message(from string, to []string, p Payload, r Run, at time.Time) []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from)
	h("To", strings.Join(to, ", "))
	h("Subject", subject(r))
	h("Date", at.Format(time.RFC1123Z))
	h("Message-ID", "<"+p.Delivery+"@cohortsync>")
	h("Cohortsync-Delivery", p.Delivery)
	h("Cohortsync-Event", p.Event)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write(textBody(p, r)) // a bytes.Buffer does not fail
	_ = qp.Close()
	return b.Bytes()
}

// textBody is the plain text of an email, lines ending in CRLF.
func textBody(p Payload, r Run) []byte {
	var b bytes.Buffer
	run := p.Run
	if run == "" {
		run = "(did not start)"
	}
	fmt.Fprintf(&b, "Run %s of mapping %s into destination %s: %s.\n\n", run, p.Mapping, p.Destination, p.Outcome)
	line := func(label, format string, a ...any) {
		fmt.Fprintf(&b, "  %-11s %s\n", label, fmt.Sprintf(format, a...))
	}
	line("trigger", "%s", p.Trigger)
	if p.Error != "" {
		line("error", "%s", p.Error)
	}
	if r.Summary.Run != "" {
		line("started", "%s", p.Started.UTC().Format(time.RFC3339))
		line("duration", "%v", time.Duration(p.DurationMS)*time.Millisecond)
		line("segment", "%s (generation %d)", p.Segment, p.Generation)
		c := p.Counts
		line("members", "%d", c.Members)
		line("added", "%d", c.Added)
		line("removed", "%d", c.Removed)
		line("unchanged", "%d", c.Unchanged)
		line("excluded", "%d", c.Excluded)
		line("duplicates", "%d", c.Duplicates)
	}
	if e := p.Exclusions; e != nil {
		fmt.Fprintf(&b, "\nThe %d excluded rows and why: %s\n", p.Counts.Excluded, e.Command)
		if e.URL != "" {
			fmt.Fprintf(&b, "or download them: %s\n", e.URL)
		}
	}
	if r.Summary.Run != "" {
		fmt.Fprintf(&b, "\nThe whole run: cohortsync runs show %s\n", r.Summary.Run)
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte("\r\n"))
}
