package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/schema"
)

// NewWriter returns the kafka-go Writer a Publisher publishes with, from
// kf (brokers, TLS, SASL and the shared transport) and cfg's batching.
// kafka-go's own retries sleep without watching ctx: they are kept few and
// short, and write does the bounded, ctx-aware part.
func NewWriter(cfg Config, kf *kafkax.Factory) *kafka.Writer {
	return kf.Writer(kafkax.WriterOptions{
		Topic:           cfg.Topic,
		BatchSize:       cfg.BatchSize,
		BatchBytes:      cfg.BatchBytes,
		BatchTimeout:    cfg.BatchTimeout,
		Compression:     compressions[cfg.Compression],
		WriteTimeout:    cfg.WriteTimeout,
		MaxAttempts:     3,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 500 * time.Millisecond,
	})
}

// retryPolicy is the retry policy of Kafka calls, bounded by
// cfg.RetryMaxElapsed (and by ctx).
func retryPolicy(cfg Config) retry.Policy {
	return retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Timeout: cfg.RetryMaxElapsed}
}

// retryLogger reports each retry: a sync that is slow because Kafka keeps
// failing should say so while it waits, not only when it gives up.
func retryLogger(cfg Config, op string) func(error, time.Duration) {
	log := cfg.logger()
	return func(err error, wait time.Duration) {
		log.Warn("transient Kafka error, retrying", "op", op, "err", err, "backoff", wait)
	}
}

// EnsureTopics creates the membership topic and its dead-letter topic
// ("<topic>.dlq", the consumer's default) if they do not exist; existing
// topics are used as they are. Creating the dead-letter topic here means one
// sync prepares everything a consumer with default settings needs.
func EnsureTopics(ctx context.Context, cfg Config, kf *kafkax.Factory) error {
	client := kf.Client(cfg.WriteTimeout)
	tc := kafka.TopicConfig{
		Topic:             cfg.Topic,
		NumPartitions:     cfg.TopicPartitions,
		ReplicationFactor: cfg.TopicReplicationFactor,
	}
	if cfg.TopicCompact {
		tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
	}
	// Dead letters are evidence, not state: never compacted, so each bad
	// message is kept (for the broker's retention), not just the last per key.
	dlq := kafka.TopicConfig{
		Topic:             kafkax.DeadLetterTopic(cfg.Topic),
		NumPartitions:     cfg.TopicPartitions,
		ReplicationFactor: cfg.TopicReplicationFactor,
	}
	op := func() error {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc, dlq}})
		if err != nil {
			return kafkax.Classify(err)
		}
		for _, t := range []string{tc.Topic, dlq.Topic} {
			if err := resp.Errors[t]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
				return kafkax.Classify(fmt.Errorf("topic %s: %w", t, err))
			}
		}
		return nil
	}
	const what = "create topics"
	return retry.Do(ctx, retryPolicy(cfg), what, op, retryLogger(cfg, what))
}

// Publisher publishes membership events through one kafka-go Writer, which
// its Streams share. It owns the write goroutines of every Stream, so Close
// ends them even for a Stream nobody waits for. Close it when done.
type Publisher struct {
	cfg    Config
	w      *kafka.Writer
	writes writes
	closed sync.Once
	err    error
}

// ErrClosed is returned by a Publisher, and by its Streams, once Close was
// called.
var ErrClosed = errors.New("publisher closed")

// New returns a Publisher for cfg writing through kf's clients. It does not
// create the topics (see EnsureTopics) or connect before the first send.
func New(cfg Config, kf *kafkax.Factory) (*Publisher, error) {
	if kf == nil {
		return nil, errors.New("publish.New: nil Kafka client factory")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, w: NewWriter(cfg, kf)}, nil
}

// Origin is what the events of a Stream name besides the membership: its
// segment, the run that published them and their source.
type Origin struct {
	Segment snapshot.SegmentID
	Run     string // run of the snapshot (or delta) the events publish
	Source  string // e.g. "csv"
}

// Stream returns a Stream of origin's events. ctx's trace context goes
// into every message.
func (p *Publisher) Stream(ctx context.Context, origin Origin) (*Stream, error) {
	if p.writes.isClosed() {
		return nil, fmt.Errorf("stream: %w", ErrClosed)
	}
	return newStream(ctx, p.w, &p.writes, p.cfg, origin)
}

// Close cancels the writes still in flight of every Stream (a caller that
// wants them acknowledged calls the Stream's Wait first), waits for them to
// end, so nothing is sent after it returns, and releases the Writer. It is
// bounded: a cancelled write ends within its current request, which
// WriteTimeout bounds. Sends after Close fail with ErrClosed. It is
// idempotent.
func (p *Publisher) Close() error {
	p.closed.Do(func() {
		p.writes.close()
		p.err = closeWriter(p.w)
	})
	return p.err
}

func closeWriter(w *kafka.Writer) error {
	if err := w.Close(); err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}

// writes runs and tracks the write goroutines of a Publisher's Streams, so
// that Close can cancel them and wait for them whether or not each
// Stream's Wait was called.
type writes struct {
	mu      sync.Mutex
	closed  bool
	next    uint64
	cancels map[uint64]context.CancelCauseFunc
	wg      sync.WaitGroup
}

// Go runs f in a goroutine with a ctx that close cancels (cause
// ErrClosed), or returns ErrClosed once close was called.
func (g *writes) Go(ctx context.Context, f func(ctx context.Context)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	ctx, cancel := context.WithCancelCause(ctx)
	id := g.next
	g.next++
	if g.cancels == nil {
		g.cancels = make(map[uint64]context.CancelCauseFunc)
	}
	g.cancels[id] = cancel
	// Added under mu, which close takes before it waits: no Add can race
	// with the Wait.
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.forget(id)
		f(ctx)
	}()
	return nil
}

func (g *writes) forget(id uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cancels[id](nil)
	delete(g.cancels, id)
}

func (g *writes) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close refuses new goroutines, cancels the running ones and waits for
// them.
func (g *writes) close() {
	g.mu.Lock()
	g.closed = true
	for _, cancel := range g.cancels {
		cancel(ErrClosed)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// Stream publishes changes of one origin as membership events through a
// Publisher's Writer. Send encodes a batch and hands it to one of at most
// InFlight goroutines, which Wait waits for (and the Publisher's Close, if
// Wait was not called). It implements snapshot.Publisher.
type Stream struct {
	w        messageWriter
	writes   *writes // of the Publisher, which owns the goroutines
	cfg      Config
	template schema.Event
	headers  []kafka.Header
	slots    chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	err      error
	acked    atomic.Int64
	// free holds the memory of acknowledged batches for the next ones: a
	// batch's few MiB, allocated anew, cost zeroing and GC work per event.
	free chan *encoded
}

// messageWriter is the part of kafka.Writer a Stream uses.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

func newStream(ctx context.Context, w messageWriter, g *writes, cfg Config, o Origin) (*Stream, error) {
	id := o.Segment
	ev := schema.Event{
		Env: id.Env, Segment: id.Segment, Generation: id.Generation, ContextKind: id.ContextKind,
		ContextKey: "template", Op: schema.OpAdd, Run: o.Run, Seq: 1, Source: o.Source, Time: time.Now(),
	}
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	// The headers (version, trace context) are the same for every event of
	// the run: build them once and share the slice, which kafka-go only reads.
	m := ev.Message()
	if cfg.Propagator != nil {
		cfg.Propagator.Inject(ctx, &m.Headers)
	}
	return &Stream{
		w: w, writes: g, cfg: cfg, template: ev,
		headers: m.Headers[:len(m.Headers):len(m.Headers)],
		slots:   make(chan struct{}, cfg.InFlight),
		// InFlight batches in writes and one being encoded.
		free: make(chan *encoded, cfg.InFlight+1),
	}, nil
}

func (p *Stream) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *Stream) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

// Send encodes batch (copying the keys) and starts writing it.
func (p *Stream) Send(ctx context.Context, batch []snapshot.Change) error {
	if err := p.firstErr(); err != nil {
		return err
	}
	enc, err := p.encode(batch)
	if err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("send: %w", ctx.Err())
	}
	p.wg.Add(1)
	err = p.writes.Go(ctx, func(ctx context.Context) {
		defer p.wg.Done()
		defer func() { <-p.slots }()
		err := p.write(ctx, enc.msgs)
		if err == nil {
			p.reuse(enc)
			return
		}
		if cause := context.Cause(ctx); errors.Is(cause, ErrClosed) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		p.fail(err)
	})
	if err != nil {
		p.wg.Done()
		<-p.slots
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// Wait returns when every write started by Send has ended, with the first
// error. Writes end on success, on a permanent error, when retries are
// exhausted, when Send's ctx is done or when the Publisher is closed, so
// Wait is bounded.
func (p *Stream) Wait(ctx context.Context) error {
	p.wg.Wait()
	return p.firstErr()
}

// Acked is the number of events acknowledged so far.
func (p *Stream) Acked() int64 { return p.acked.Load() }

// encoded is the memory of one batch's messages: the messages and the
// arena holding their keys and values.
type encoded struct {
	msgs  []kafka.Message
	arena []byte
}

// reuse hands enc to a later encode. Only a batch whose write succeeded is
// reused: WriteMessages returned, so kafka-go holds none of its messages,
// which a write that ended early (ctx done) cannot promise.
func (p *Stream) reuse(enc *encoded) {
	select {
	case p.free <- enc:
	default:
	}
}

// encode builds the messages of batch in one arena, on the memory of an
// acknowledged batch if there is one: no allocation per event (the keys
// are encoded from the changes' bytes), and none per batch once InFlight
// batches were acknowledged.
func (p *Stream) encode(batch []snapshot.Change) (*encoded, error) {
	ev := p.template
	ev.Time = time.Now()
	en := schema.NewEncoder(&ev)
	var enc *encoded
	select {
	case enc = <-p.free:
	default:
		enc = &encoded{arena: make([]byte, 0, len(batch)*(2*len(p.template.AppendKey(nil))+256))}
	}
	if cap(enc.msgs) < len(batch) {
		enc.msgs = make([]kafka.Message, len(batch))
	}
	msgs, arena := enc.msgs[:len(batch)], enc.arena[:0]
	for i, c := range batch {
		// The rest of the event was validated with the template.
		if err := schema.CheckIdentifier(c.Key); err != nil {
			p.reuse(enc)
			return nil, fmt.Errorf("event seq %d: context key: %w", c.Seq, err)
		}
		// A grown arena leaves earlier messages on the old array, which
		// stays valid: nothing is written into it again (until the batch
		// was acknowledged).
		start := len(arena)
		arena = en.AppendKey(arena, c.Key)
		k := arena[start:len(arena):len(arena)]
		start = len(arena)
		arena = en.AppendValue(arena, c.Key, c.Op, c.Seq)
		msgs[i] = kafka.Message{Key: k, Value: arena[start:len(arena):len(arena)], Headers: p.headers}
	}
	enc.msgs, enc.arena = msgs, arena
	return enc, nil
}

// write writes msgs until every one is acknowledged, retrying only the
// messages that failed, with bounded backoff on transient errors.
func (p *Stream) write(ctx context.Context, msgs []kafka.Message) error {
	pending := msgs
	op := func() error {
		err := p.w.WriteMessages(ctx, pending...)
		if err == nil {
			p.acked.Add(int64(len(pending)))
			return nil
		}
		var werrs kafka.WriteErrors
		if !errors.As(err, &werrs) || len(werrs) != len(pending) {
			return kafkax.Classify(err)
		}
		var failed []kafka.Message
		var first, permanent error
		for i, e := range werrs {
			if e == nil {
				continue
			}
			if c := kafkax.Classify(e); permanent == nil && retry.IsPermanent(c) {
				permanent = c
			}
			if first == nil {
				first = e
			}
			failed = append(failed, pending[i])
		}
		p.acked.Add(int64(len(pending) - len(failed)))
		pending = failed
		if permanent != nil {
			return permanent
		}
		return fmt.Errorf("%d of the batch's messages failed: %w", len(failed), first)
	}
	what := "write to topic " + p.cfg.Topic
	return retry.Do(ctx, retryPolicy(p.cfg), what, op, retryLogger(p.cfg, what))
}
