package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/retry"
)

// Headers of a webhook request.
const (
	HeaderSignature = "Cohortsync-Signature"
	HeaderDelivery  = "Cohortsync-Delivery"
	HeaderEvent     = "Cohortsync-Event"
)

// postWebhook POSTs p to w, retrying what may pass, and returns the
// number of requests made.
func (n *Notifier) postWebhook(ctx context.Context, w catalog.Webhook, mapping string, p Payload) (int, error) {
	secret, err := w.Secret.Read(fmt.Sprintf("mapping %q", mapping), "webhook secret", n.cfg.LookupEnv, n.cfg.ReadFile)
	if err != nil {
		return 0, err
	}
	body := p.body()
	attempts := 0
	err = retry.Do(ctx, n.cfg.Retry, "webhook "+redactURL(w.URL), func() error {
		attempts++
		return n.post(ctx, w.URL, []byte(secret), p, body)
	}, func(err error, wait time.Duration) {
		n.log.Debug("webhook attempt failed; retrying", "delivery", p.Delivery, "attempt", attempts, "wait", wait, "error", err)
	})
	return attempts, err
}

// post makes one request, signed now. Its error is retry.Permanent for an
// answer retrying cannot change, retry.After for a Retry-After.
func (n *Notifier) post(ctx context.Context, url string, secret []byte, p Payload, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cohortsync-notify/1")
	req.Header.Set(HeaderDelivery, p.Delivery)
	req.Header.Set(HeaderEvent, p.Event)
	req.Header.Set(HeaderSignature, Signature(secret, n.cfg.Now(), body))
	res, err := n.http.Do(req)
	if err != nil {
		return redactErr(err) // network: retried
	}
	defer func() { _ = res.Body.Close() }()                     // read below; nothing to lose
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 256))     // for the error only
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // let the connection be reused
	code := res.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("HTTP %s%s", res.Status, quoteBody(snippet))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		if wait, ok := retryAfter(res.Header.Get("Retry-After"), n.cfg.Now()); ok {
			return retry.After(err, wait)
		}
		return err
	}
	return retry.Permanent(fmt.Errorf("%w (not retried)", err))
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// quoteBody is the start of a response body for an error, printable.
func quoteBody(b []byte) string {
	s := strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b)))
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}

// redactURL masks a URL's credentials and query: a webhook's path or
// query may carry a token.
func redactURL(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}

// redactErr masks the URL net/http's errors quote, keeping the error
// (and what it wraps) otherwise.
func redactErr(err error) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	return err
}
