package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
)

// Channels of a delivery.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// Statuses of a delivery.
const (
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	// StatusDropped: the queue was full, or the notifier closed before a
	// worker got to it; nothing was sent. Counted, never recorded.
	StatusDropped = "dropped"
)

// Recorder keeps the deliveries of a run (runstore.Store does).
type Recorder interface {
	AddDelivery(ctx context.Context, run string, d runstore.Delivery) error
}

// job is one delivery to make.
type job struct {
	channel string
	run     Run
	webhook catalog.Webhook
	email   catalog.Email
}

func (j job) target() string {
	if j.channel == ChannelWebhook {
		return redactURL(j.webhook.URL)
	}
	return strings.Join(j.email.To, ", ")
}

// Notifier delivers notifications from a bounded queue with its own
// workers. It is safe for concurrent use; Close stops it.
type Notifier struct {
	cfg  Config
	rec  Recorder
	log  *slog.Logger
	http *http.Client

	ctx    context.Context // the workers'; cancelled when Close gives up waiting
	cancel context.CancelFunc
	queue  chan job
	wg     sync.WaitGroup

	mu     sync.Mutex // guards closed and sends on queue
	closed bool

	dropped atomic.Int64
}

// New starts a Notifier recording deliveries with rec (nil: not
// recorded). ctx gives the workers their values (logging, tracing), not
// their end: deliveries go on after ctx ends, until Close.
func New(ctx context.Context, cfg Config, rec Recorder, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	n := &Notifier{cfg: cfg, rec: rec, log: log, queue: make(chan job, cfg.QueueSize),
		// A webhook that redirects is answered as it is: a POST is not
		// replayed elsewhere (Go would turn it into a GET).
		http: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if cfg.SMTP.Username != "" {
		// Fail at start, not at the first failed run.
		if _, err := n.smtpPassword(); err != nil {
			return nil, err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for range cfg.Workers {
		n.wg.Add(1)
		go n.work()
	}
	return n, nil
}

// Notify queues the notifications that to wants of r, without waiting:
// one that finds the queue full (or the notifier closed) is dropped,
// logged and counted.
func (n *Notifier) Notify(to catalog.Notify, r Run) {
	ev := r.Event()
	if w := to.Webhook; w != nil && catalog.Wants(w.Events, ev) {
		n.enqueue(job{channel: ChannelWebhook, run: r, webhook: *w})
	}
	if e := to.Email; e != nil && catalog.Wants(e.Events, ev) {
		n.enqueue(job{channel: ChannelEmail, run: r, email: *e})
	}
}

func (n *Notifier) enqueue(j job) {
	n.mu.Lock()
	queued := false
	if !n.closed {
		select {
		case n.queue <- j:
			queued = true
		default:
		}
	}
	n.mu.Unlock()
	if !queued {
		n.drop(j, "the notification queue is full or closed")
	}
}

func (n *Notifier) drop(j job, why string) {
	n.dropped.Add(1)
	n.log.Warn("notification dropped", "why", why, "channel", j.channel, "mapping", j.run.Mapping,
		"destination", j.run.Destination, "run", j.run.Summary.Run, "event", j.run.Event())
	if n.cfg.OnDelivery != nil {
		n.cfg.OnDelivery(runstore.Delivery{Destination: j.run.Destination, Channel: j.channel, Target: j.target(),
			Event: string(j.run.Event()), Status: StatusDropped, Error: why, At: n.cfg.Now()})
	}
}

// Dropped counts the notifications dropped so far.
func (n *Notifier) Dropped() int64 { return n.dropped.Load() }

func (n *Notifier) work() {
	defer n.wg.Done()
	for j := range n.queue {
		if n.ctx.Err() != nil {
			n.drop(j, "the notifier closed before it was sent")
			continue
		}
		n.deliver(j)
	}
}

// deliver makes one delivery, retrying within the policy, and records
// how it ended.
func (n *Notifier) deliver(j job) {
	id := newID()
	start := time.Now()
	p := n.payload(id, j.run)
	// Bounded whatever the receiver does: the retries' budget plus one
	// attempt under way at its end.
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Retry.Timeout+n.cfg.AttemptTimeout)
	defer cancel()
	var attempts int
	var err error
	if j.channel == ChannelWebhook {
		attempts, err = n.postWebhook(ctx, j.webhook, j.run.Mapping, p)
	} else {
		attempts, err = n.sendEmail(ctx, j.email, p, j.run)
	}
	d := runstore.Delivery{ID: id, Destination: j.run.Destination, Channel: j.channel, Target: j.target(), Event: p.Event,
		Status: StatusDelivered, Attempts: attempts, At: n.cfg.Now().UTC(), Took: time.Since(start)}
	attrs := []any{"channel", j.channel, "delivery", id, "mapping", j.run.Mapping, "destination", j.run.Destination,
		"run", p.Run, "event", p.Event, "attempts", attempts}
	if err != nil {
		d.Status, d.Error = StatusFailed, err.Error()
		n.log.Warn("notification failed", append(attrs, "error", err)...)
	} else {
		n.log.Info("notification delivered", attrs...)
	}
	if n.cfg.OnDelivery != nil {
		n.cfg.OnDelivery(d)
	}
	if n.rec == nil || p.Run == "" {
		return // a run that did not start has no record to keep it with
	}
	// Recorded even when Close gave up on it: its store call is bounded
	// by the store's own timeout.
	if err := n.rec.AddDelivery(context.WithoutCancel(n.ctx), p.Run, d); err != nil {
		n.log.Warn("record a notification's delivery", append(attrs, "error", err)...)
	}
}

// ErrAbandoned is wrapped by Close's error when deliveries were still
// under way at its timeout.
var ErrAbandoned = errors.New("deliveries under way were abandoned")

// Close stops taking notifications and waits up to CloseTimeout for the
// queued and in-flight ones; then it cancels them (they are recorded as
// failed, or counted as dropped if not started) and returns once the
// workers have. It is idempotent.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.queue)
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	t := time.NewTimer(n.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-t.C:
	}
	n.cancel()
	<-done
	return fmt.Errorf("notify: after %v: %w", n.cfg.CloseTimeout, ErrAbandoned)
}

// newID is a random delivery id: 16 bytes, hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}
