package consumer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/schema"
)

// Consumer is one member of the consumer group. Create it with New, run it
// once with Run.
type Consumer struct {
	cfg      Config
	routes   *RouteTable // New's single Redis, or NewWithRoutes' table
	kf       *kafkax.Factory
	log      *slog.Logger
	streams  []*stream         // Config.Appliers of them
	kc       freshness.Offsets // a *kafka.Client
	now      func() time.Time
	fresh    *freshness.Tracker
	storeIDs *storeIDs // stores that lost their data (issue 11, item 1)
	tracer   trace.Tracer
	traces   TraceExtractor // nil: no trace links
	observer Observer       // nil: none

	stats   counters
	running atomic.Bool
	ready   atomic.Bool // preflight passed

	deadLog logLimit // the dead-letter log's rate limit

	memberID atomic.Value  // string: this member's id in the group, once it joined
	joinWait time.Duration // joinWaitLog; tests shorten it
	applying atomic.Int32  // batches being applied now (tests of a stop wait for one)

	// Per generation: messages fetched, and messages of batches the apply
	// loop started. Their difference when the generation ends is what it
	// dropped for the partitions' next owners to read again.
	genFetched, genStarted atomic.Int64
}

// stream is one apply loop's own state. The partitions a member is
// assigned are dealt to Config.Appliers streams, each batching, applying
// and committing its partitions' messages apart from the others'.
type stream struct {
	applier *applier
	seen    map[int]int64 // per partition, the highest offset taken into a batch this generation
}

// New returns a consumer reading from the Kafka of kf and writing to rdb
// (standalone or Cluster), under Config.RedisPrefix or the event's
// environment's Config.EnvPrefixes. Its Kafka clients are kf's; the caller
// closes kf, and rdb, after Run has returned. New validates cfg but touches
// no network; Run does.
func New(cfg Config, rdb redis.UniversalClient, kf *kafkax.Factory) (*Consumer, error) {
	if rdb == nil {
		return nil, errors.New("consumer.New: nil Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return newConsumer(cfg, staticRoutes(rdb, cfg.RedisPrefix, cfg.EnvPrefixes), kf)
}

// NewWithRoutes returns a consumer reading from the Kafka of kf and writing
// each event through its environment's route in routes, which the caller
// may replace while Run runs (RouteTable.Set). An event whose environment
// has no route is dead-lettered with ReasonUnknownEnvironment. Config's
// RedisPrefix is not used, and EnvPrefixes must be empty: routes name every
// prefix. The caller closes kf, and routes (RouteTable.Close) and with it
// its clients, after Run has returned.
func NewWithRoutes(cfg Config, routes *RouteTable, kf *kafkax.Factory) (*Consumer, error) {
	if routes == nil {
		return nil, errors.New("consumer.NewWithRoutes: nil route table")
	}
	var errs []error
	if len(cfg.EnvPrefixes) > 0 {
		errs = append(errs, setting.Invalid("env-prefix", len(cfg.EnvPrefixes), "none with a route table: its routes give every prefix"))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return newConsumer(cfg.withDefaults(), routes, kf)
}

// newConsumer builds a consumer on a valid cfg with its defaults.
func newConsumer(cfg Config, routes *RouteTable, kf *kafkax.Factory) (*Consumer, error) {
	if kf == nil {
		return nil, errors.New("consumer.New: nil Kafka client factory")
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	c := &Consumer{
		cfg:      cfg,
		routes:   routes,
		kf:       kf,
		log:      cfg.Logger.With("component", "consumer", "topic", cfg.Topic, "group", cfg.GroupID),
		kc:       kf.Client(10 * time.Second),
		now:      time.Now,
		tracer:   tp.Tracer(tracerName),
		traces:   cfg.Propagator,
		observer: cfg.Observer,
		joinWait: joinWaitLog,
	}
	c.storeIDs = newStoreIDs(c.log)
	for range c.cfg.Appliers {
		a := newApplier(func() time.Time { return c.now() }, c.cfg.Pipelines)
		a.ids = c.storeIDs
		c.streams = append(c.streams, &stream{applier: a, seen: map[int]int64{}})
	}
	fresh, err := freshness.New(freshness.Config{
		Topic: cfg.Topic, GroupID: cfg.GroupID, SyncInterval: cfg.SyncInterval, RetryTimeout: cfg.RetryTimeout, Logger: c.log,
	}, freshness.Deps{
		Offsets:  c.kc,
		SyncTime: syncTime{routes: routes, ids: c.storeIDs},
		Now:      func() time.Time { return c.now() },
	})
	if err != nil {
		return nil, err
	}
	c.fresh = fresh
	return c, nil
}

// Stats returns a snapshot of the counters; safe to call concurrently.
func (c *Consumer) Stats() Stats {
	s := c.stats.snapshot()
	s.Lag, s.LastSync, s.SyncErrors = c.fresh.Lag(), c.fresh.LastSync(), c.fresh.SyncErrors()
	s.CaughtUp = s.Lag == 0
	s.StoresLost = c.storeIDs.count()
	return s
}

// ErrStopped is returned by WaitCaughtUp when Run has returned.
var ErrStopped = freshness.ErrStopped

// WaitCaughtUp blocks until the group has reached a watermark taken after
// the call (its committed offsets reached the end offsets listed then) and
// synchronized_on says so: every message produced before the call is then in
// Redis. See freshness.Tracker.WaitCaughtUp.
func (c *Consumer) WaitCaughtUp(ctx context.Context) error { return c.fresh.WaitCaughtUp(ctx) }

// Health fails when the synchronized_on refresh has stopped working for
// three sync intervals (see freshness.Tracker.Health): for a liveness probe.
func (c *Consumer) Health() error { return c.fresh.Health() }

// Alive fails when the consumer's lag checks have stopped ending at all
// (see freshness.Tracker.Alive): for a liveness probe that must not fail
// while Kafka or Redis is down.
func (c *Consumer) Alive() error { return c.fresh.Alive() }

// Ready fails until Run has passed its preflight (Redis answers, the topics
// exist). A readiness probe wants Health too: the HTTP server adds every
// liveness check to /readyz.
//
// It also fails while a destination's Redis has lost its data (see
// Stats.StoresLost): not Health, since a restarted process would forget
// that and mark the store current again.
func (c *Consumer) Ready() error {
	if !c.ready.Load() {
		return errors.New("starting: preflight not finished")
	}
	return c.storeIDs.ready()
}

// Run consumes until ctx is cancelled, then finishes or abandons the
// batches in flight (see Config.ShutdownTimeout), leaves the group, closes the
// dead-letter writer and returns nil. It returns an error, with the batches in
// flight uncommitted, for a permanent failure or a transient one outlasting
// RetryTimeout. Run may be called once.
//
// Each generation of the consumer group (each assignment of partitions,
// between two rebalances) runs its own pipeline: per stream, fetchers,
// batcher and apply loop, with buffers of their own. The pipeline runs
// under the generation (kafka.Generation.Start), so this member does not
// rejoin the group, and the broker cannot give its partitions to another
// member, until the pipeline has finished: when a rebalance starts, the
// batches being applied are finished and committed (within
// ShutdownTimeout), every other buffered
// message is dropped, and the next generation starts again from the
// committed offsets. No message of a partition is applied after another
// member may have taken it over.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run called twice")
	}
	runCtx, cancel := context.WithCancel(ctx)
	// Once runCtx ends, every wait of Run is bounded by the clock (see
	// shutdownSlack): what still hangs then is abandoned, and logged.
	clock := newShutdownClock(runCtx, c.cfg.ShutdownTimeout)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		if !await(goDone(wg.Wait), clock.hard) {
			c.log.Warn("shutdown: stopped waiting for the freshness tracker", "waited_for", "a synchronized_on write to Redis")
		}
		clock.stop()
	}()
	// The tracker's Run returns before Run does, so that WaitCaughtUp
	// returns ErrStopped once Run has returned, also after a failed
	// preflight (then the tracker's Run starts on a done context and
	// returns at once); its checks start after the preflight.
	preflightOK := make(chan struct{})
	wg.Go(func() {
		select {
		case <-preflightOK:
		case <-runCtx.Done():
		}
		_ = c.fresh.Run(runCtx) // only a second call fails, and this is the one
	})
	err := c.preflight(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	group, err := kafka.NewConsumerGroup(c.groupConfig())
	if err != nil {
		return fmt.Errorf("consumer group %q: %w", c.cfg.GroupID, err)
	}
	close(preflightOK)
	c.ready.Store(true)

	w := c.deadLetterWriter()
	// Closing the group ends the current generation (its pipeline finishes
	// its batch), then leaves the group.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-runCtx.Done()
		_ = group.Close() // always nil
	}()
	c.log.Info("consuming", "brokers", c.kf.Brokers(), "dead_letter_topic", c.cfg.DeadLetterTopic, "routes", c.routes.describe())
	consumed := make(chan error, 1)
	go func() { consumed <- c.consume(runCtx, group, w) }()
	var loopErr error
	select {
	case loopErr = <-consumed:
	case <-clock.soft:
		// The batch was logged as abandoned when its grace ran out.
		c.log.Warn("shutdown: stopped waiting for the consumer's pipeline: a Redis or Kafka call did not return", "shutdown_timeout", c.cfg.ShutdownTimeout)
	}
	cancel()
	var closeErr, wErr error
	wclosed := goDone(func() { wErr = w.Close() })
	c.leaveGroup(ctx, closed, clock)
	if !await(wclosed, clock.hard) {
		// Only an abandoned batch can still be writing dead letters: it is
		// uncommitted, and its next owner writes them again.
		c.log.Warn("shutdown: stopped waiting for the dead-letter writer to close")
	} else if wErr != nil {
		closeErr = fmt.Errorf("close dead-letter writer: %w", wErr)
	}
	s := c.Stats()
	c.log.Info("stopped", "applied", s.Applied, "dead_lettered", s.DeadLettered, "batches", s.Batches, "lag", s.Lag)
	if loopErr != nil {
		return errors.Join(loopErr, closeErr)
	}
	return closeErr
}

// consume runs one pipeline per group generation until ctx ends (nil), a
// pipeline fails, or joining the group fails for longer than RetryTimeout.
func (c *Consumer) consume(ctx context.Context, group *kafka.ConsumerGroup, dlq messageWriter) error {
	var failingSince time.Time
	for {
		// A join waits for every member to rejoin; one that stopped
		// without leaving the group holds it up to its session timeout:
		// say so rather than wait in silence.
		cfg := c.groupConfig()
		waiting := time.AfterFunc(c.joinWait, func() {
			c.log.Info("waiting to join the consumer group: the coordinator holds a join until every member has rejoined (up to the rebalance timeout); a member that stopped without leaving holds it until its session times out",
				"rebalance_timeout", cfg.RebalanceTimeout, "session_timeout", cfg.SessionTimeout)
		})
		gen, err := group.Next(ctx)
		waiting.Stop()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			// Join or sync failed; the group retries on its own (after
			// JoinGroupBackoff for most errors).
			err = c.kf.Explain(ctx, err)
			now := c.now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(failingSince) > c.cfg.RetryTimeout {
				return fmt.Errorf("consumer group %q: join: %w", c.cfg.GroupID, err)
			}
			c.stats.retries.Add(1)
			c.log.Warn("joining the consumer group failed, retrying", "err", err)
			continue
		}
		failingSince = time.Time{}
		c.memberID.Store(gen.MemberID)
		// The pipeline runs under the generation: the group does not rejoin
		// (and the broker does not reassign this member's partitions) until
		// it has returned. Start runs it even if the generation already
		// ended (then with a done ctx); waiting for it here keeps one
		// pipeline at a time and makes it owned by Run.
		done := make(chan error, 1)
		gen.Start(func(gctx context.Context) { done <- c.runGeneration(gctx, gen, dlq) })
		if err := <-done; err != nil {
			return err
		}
	}
}

// runGeneration consumes the partitions assigned to this member in gen until
// ctx (the generation's) ends or a permanent error occurs. It reads every
// assigned partition from the offset the group committed, and returns only
// once every goroutine it started has.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation, dlq messageWriter) error {
	if ctx.Err() != nil {
		return nil // the generation ended before it began
	}
	c.stats.generations.Add(1)
	assigned := gen.Assignments[c.cfg.Topic]
	ids := make([]int, len(assigned))
	for i, a := range assigned {
		ids[i] = a.ID
	}
	slices.Sort(ids)
	c.log.Info("generation started", "generation", gen.ID, "member", gen.MemberID, "partitions", ids)
	c.genFetched.Store(0)
	c.genStarted.Store(0)
	defer func() {
		// Every fetcher and apply loop has returned: the counts are final.
		dropped := max(c.genFetched.Load()-c.genStarted.Load(), 0)
		c.stats.dropped.Add(dropped)
		c.log.Info("generation ended", "generation", gen.ID, "dropped", dropped)
	}()
	if len(assigned) == 0 {
		<-ctx.Done() // more members than partitions: wait for the next rebalance
		return nil
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each stream fetches, applies and commits its own partitions: while
	// one waits for a commit or a Redis reply, another writes. A partition
	// belongs to one stream, so its messages still apply in order.
	dealt := dealPartitions(assigned, len(c.streams))
	streams := c.streams[:len(dealt)]
	srcs := make([][]source, len(dealt))
	for i, parts := range dealt {
		for _, a := range parts {
			off := a.Offset
			if off < 0 { // nothing committed: the group's StartOffset
				off = kafka.FirstOffset
			}
			src, closeSrc := c.partitionSource(a.ID, off)
			defer closeSrc()
			srcs[i] = append(srcs[i], src)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*len(streams))
	for i, st := range streams {
		// Offsets taken this generation; each partition is read once per
		// generation, from its committed offset.
		st.seen = make(map[int]int64, len(srcs[i]))
		batches := make(chan []item, 1) // one batch prepared while one is applied
		spare := make(chan []item, 2)   // applied batches' buffers, to build batches in
		wg.Go(func() { errs[2*i] = c.fetchBatches(pctx, cancel, srcs[i], batches, spare) })
		wg.Go(func() {
			errs[2*i+1] = c.applyLoop(pctx, st, batches, spare, gen, dlq)
			// Whatever is still buffered belongs to this generation only:
			// dropped, uncommitted, and read again by whoever owns its
			// partition next. A stream that failed stops the others.
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dealPartitions deals the assigned partitions, in partition order, to at
// most n streams, none empty: the partitions of a topic carry about equal
// traffic, so equal counts share the work.
func dealPartitions(assigned []kafka.PartitionAssignment, n int) [][]kafka.PartitionAssignment {
	sorted := slices.SortedFunc(slices.Values(assigned), func(a, b kafka.PartitionAssignment) int { return a.ID - b.ID })
	dealt := make([][]kafka.PartitionAssignment, min(n, len(sorted)))
	for i, a := range sorted {
		dealt[i%len(dealt)] = append(dealt[i%len(dealt)], a)
	}
	return dealt
}

// preflight checks what would otherwise fail late or never: Redis answers,
// the topics exist. Transient failures are retried within RetryTimeout;
// errors name the setting to fix.
func (c *Consumer) preflight(ctx context.Context) error {
	err := c.retryFor(ctx, c.cfg.StartupTimeout, "redis: ping", func() error {
		// Each attempt pings the current table's clients: a destination
		// fixed by a new table meanwhile counts.
		s := c.routes.acquire()
		defer c.routes.release(s)
		return pingAll(ctx, s)
	})
	if err != nil {
		if c.routes.static() {
			return fmt.Errorf("--redis-url/--redis-cluster-addrs: %w", err)
		}
		return err
	}
	for _, t := range []struct{ flag, topic string }{{"--topic", c.cfg.Topic}, {"--dead-letter-topic", c.cfg.DeadLetterTopic}} {
		err := c.retryFor(ctx, c.cfg.StartupTimeout, "kafka metadata", func() error {
			_, err := freshness.Partitions(ctx, c.kc, t.topic)
			// A refused login (a wrong password) does not get better
			// within the start-up's seconds: said at once, not after them.
			if errors.Is(err, freshness.ErrTopicMissing) || kafkax.LoginRefused(err) {
				return retry.Permanent(err)
			}
			return err
		})
		if errors.Is(err, freshness.ErrTopicMissing) {
			return fmt.Errorf("%s: topic %q %w", t.flag, t.topic, freshness.ErrTopicMissing)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.flag, err)
		}
	}
	return nil
}

// groupConfig configures this member's consumer group.
func (c *Consumer) groupConfig() kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:      c.cfg.GroupID,
		Brokers: c.kf.Brokers(),
		Dialer:  c.kf.Dialer(),
		Topics:  []string{c.cfg.Topic},
		// A new group reads the whole topic: the topic is the record of
		// membership, and replaying it is idempotent.
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: 3 * time.Second,
		// kafka-go stops heartbeating as soon as a rebalance starts, so the
		// session clock, not only RebalanceTimeout, runs while this member
		// finishes its batch: it must outlast ShutdownTimeout plus a
		// heartbeat interval, a heartbeat timeout and a commit.
		SessionTimeout: max(30*time.Second, c.cfg.ShutdownTimeout+20*time.Second),
		// How long the broker waits for every member to rejoin once a
		// rebalance starts. A member rejoins only after its pipeline has
		// finished its batch (ShutdownTimeout after the heartbeat that
		// noticed the rebalance, plus a commit): a member that took longer
		// would be dropped from the group, and its partitions handed out,
		// while it still writes.
		RebalanceTimeout:       c.cfg.ShutdownTimeout + 30*time.Second,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 5 * time.Second,
		JoinGroupBackoff:       time.Second,
		// kafka-go's default of 24h would let a group's offsets expire over a
		// long weekend of downtime (harmless, a full replay, but slow).
		RetentionTime: 7 * 24 * time.Hour,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.log.Warn("kafka consumer group: " + fmt.Sprintf(msg, args...))
		}),
	}
}

// deadLetterWriter writes dead letters with kf's settings for every writer:
// acknowledged by every in-sync replica, as a dead letter must be durable
// before the offsets that skip the original are committed, and partitioned
// by the original key, which keeps a membership's dead letters in order.
func (c *Consumer) deadLetterWriter() *kafka.Writer {
	return c.kf.Writer(kafkax.WriterOptions{
		Topic:        c.cfg.DeadLetterTopic,
		BatchSize:    c.cfg.BatchSize,
		BatchTimeout: time.Millisecond, // writes are synchronous: never wait for company
		BatchBytes:   1 << 20,          // the broker's default message.max.bytes
		MaxAttempts:  3,
		WriteTimeout: 10 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.log.Warn("dead-letter writer: " + fmt.Sprintf(msg, args...))
		}),
	})
}

// committer is what an apply loop needs from a kafka.Generation; the
// streams call it concurrently (kafka-go's coordinator connection matches
// concurrent requests to their responses, as it does for heartbeats).
type committer interface {
	// CommitOffsets commits, per topic and partition, the next offset to
	// read.
	CommitOffsets(offsets map[string]map[int]int64) error
}

// errGenerationEnded marks a commit refused because this member's
// generation is over: the batch is in Redis but uncommitted, and will be
// applied again by the partition's next owner.
var errGenerationEnded = errors.New("consumer group generation ended")

// applyLoop processes batches until ctx (the generation's) ends or in is
// closed (nil), or processing fails, and hands the buffer of each batch it
// committed to spare, if there is room. A batch is started only while the
// generation lasts; the one in progress when it ends is finished within
// ShutdownTimeout, the rest are dropped.
func (c *Consumer) applyLoop(ctx context.Context, st *stream, in <-chan []item, spare chan<- []item, cm committer, dlq messageWriter) error {
	for {
		var batch []item
		select {
		case <-ctx.Done():
			return nil
		case b, ok := <-in:
			if !ok {
				return nil
			}
			batch = b
		}
		if ctx.Err() != nil {
			return nil // both were ready: never start a batch after the generation
		}
		c.genStarted.Add(int64(len(batch)))
		c.applying.Add(1)
		err := c.applyBatch(ctx, st, batch, cm, dlq)
		c.applying.Add(-1)
		if err == nil {
			// Nothing refers to the batch once it is committed: its
			// abandonment log (processWithGrace) has returned, and dead
			// letters are copies.
			select {
			case spare <- batch[:0]:
			default:
			}
		}
		if err != nil {
			if errors.Is(err, errGenerationEnded) {
				c.log.Info("batch applied but not committed: the generation ended; it will be redelivered", "err", err)
				return nil
			}
			if ctx.Err() != nil {
				return nil // aborted by the end of the generation, uncommitted
			}
			return err
		}
	}
}

// tracerName names the consumer's tracer.
const tracerName = "github.com/cohortsync/cohortsync/consumer"

// maxLinks caps the span links of one batch: a batch of events from many
// sync runs should not make a span of thousands of links.
const maxLinks = 32

// applyBatch processes one batch in an "apply batch" span of
// Config.TracerProvider, linked to the traces of the sync runs that produced
// its events (their producers' span contexts travel in the message headers).
func (c *Consumer) applyBatch(ctx context.Context, st *stream, batch []item, cm committer, dlq messageWriter) error {
	sctx, span := c.tracer.Start(ctx, "apply batch",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.destination.name", c.cfg.Topic),
			attribute.String("messaging.consumer.group.name", c.cfg.GroupID),
			attribute.Int("messaging.batch.message_count", len(batch)),
		))
	defer span.End()
	if span.IsRecording() { // extracting costs a little per message: only for a span kept
		for _, l := range traceLinks(ctx, c.traces, batch, maxLinks) {
			span.AddLink(l)
		}
	}
	res, err := c.processWithGrace(sctx, st, batch, cm, dlq)
	span.SetAttributes(
		attribute.Int("cohortsync.applied", res.applied),
		attribute.Int("cohortsync.dead_lettered", res.deadLettered),
		attribute.Int("cohortsync.stale", res.stale),
	)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// traceLinks returns links to the distinct remote span contexts found in the
// batch's headers by ex, at most limit of them, in batch order. Consecutive
// messages of one sync run carry the same headers: those are compared as
// bytes rather than extracted again.
func traceLinks(ctx context.Context, ex TraceExtractor, batch []item, limit int) []trace.Link {
	if ex == nil {
		return nil // no propagator configured
	}
	fields := ex.Fields()
	if len(fields) == 0 {
		return nil // a propagator that reads nothing
	}
	// Extract over an explicitly empty span context, so a message without
	// trace headers cannot yield a span context of ctx.
	base := trace.ContextWithSpanContext(ctx, trace.SpanContext{})
	type spanID struct {
		trace.TraceID
		trace.SpanID
	}
	seen := make(map[spanID]bool)
	var links []trace.Link
	var prev *kafka.Message
	for i := range batch {
		m := &batch[i].msg
		if prev != nil && sameHeaders(prev.Headers, m.Headers, fields) {
			continue
		}
		prev = m
		sc := trace.SpanContextFromContext(ex.Extract(base, m.Headers))
		if !sc.IsValid() || !sc.IsRemote() {
			continue
		}
		k := spanID{sc.TraceID(), sc.SpanID()}
		if seen[k] {
			continue
		}
		seen[k] = true
		links = append(links, trace.Link{SpanContext: sc})
		if len(links) == limit {
			break
		}
	}
	return links
}

// sameHeaders reports whether a and b have the same first value (or none)
// for every key.
func sameHeaders(a, b []kafka.Header, keys []string) bool {
	for _, k := range keys {
		va, oka := firstHeader(a, k)
		vb, okb := firstHeader(b, k)
		if oka != okb || !bytes.Equal(va, vb) {
			return false
		}
	}
	return true
}

func firstHeader(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// batchResult counts what became of one batch's messages.
type batchResult struct {
	applied, deadLettered, stale int
}

// processWithGrace gives the batch's Redis, Kafka and commit calls up to
// ShutdownTimeout after ctx is cancelled: a batch written to Redis but not
// committed is only re-applied work, but one that is also committed is not.
func (c *Consumer) processWithGrace(ctx context.Context, st *stream, batch []item, cm committer, dlq messageWriter) (batchResult, error) {
	bctx, bcancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(c.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			c.logAbandoned(batch, "its generation ended (a stop or a rebalance) and --shutdown-timeout ran out before it was applied and committed")
			bcancel()
		case <-done:
		}
	})
	defer func() {
		close(done)
		wg.Wait()
		bcancel()
	}()
	return c.process(ctx, bctx, st, batch, cm, dlq)
}

// process applies one batch and commits it. Retries stop when ctx ends; the
// calls themselves run under bctx. The result counts only a committed batch.
func (c *Consumer) process(ctx, bctx context.Context, st *stream, batch []item, cm committer, dlq messageWriter) (batchResult, error) {
	began := c.now()
	// A message at or below an offset already taken this generation (each
	// partition is read once per generation, in order, so none is
	// expected) is dropped, and not committed: committing it would move the
	// group's offset backwards.
	var res batchResult
	live := make([]*item, 0, len(batch))
	for i := range batch {
		it := &batch[i]
		if hi, ok := st.seen[it.msg.Partition]; ok && it.msg.Offset <= hi {
			c.stats.stale.Add(1)
			res.stale++
			continue
		}
		st.seen[it.msg.Partition] = it.msg.Offset
		live = append(live, it)
	}
	if len(live) == 0 {
		return res, nil
	}

	evs := make([]*schema.Event, 0, len(live))
	evItem := make([]*item, 0, len(live))
	var (
		dead     []kafka.Message
		deadInfo []deadLettered
	)
	addDead := func(it *item, reason string, cause error) {
		dead = append(dead, deadLetter(&it.msg, reason, cause))
		deadInfo = append(deadInfo, deadLettered{partition: it.msg.Partition, offset: it.msg.Offset, reason: reason, err: cause})
	}
	for _, it := range live {
		if it.err != nil {
			addDead(it, decodeReason(it.err), it.err)
			continue
		}
		if it.ev.Seq > MaxSeq {
			addDead(it, ReasonSeqOutOfRange, fmt.Errorf("seq %d of segment %q is above %d, more than any producer of ours numbers", it.ev.Seq, it.ev.Segment, uint64(MaxSeq)))
			continue
		}
		evs = append(evs, &it.ev)
		evItem = append(evItem, it)
	}

	var res0 applied
	refreshed := false
	err := c.retry(ctx, "apply batch to redis", func() error {
		for {
			// Each attempt resolves the batch against the table current
			// when it starts, so a destination replaced while a batch
			// retries (one that is down, say) is left behind, and holds
			// that table until its writes have returned (see RouteTable).
			s := c.routes.acquire()
			var err error
			res0, err = st.applier.apply(bctx, s, evs, c.routes.setAsideAfter)
			c.routes.release(s)
			if err == nil && len(res0.setAside) > 0 {
				// Recorded before the offsets move past the events, or
				// the batch retries: their repair depends on it.
				if err := c.routes.setAside(bctx, res0.setAsideNames); err != nil {
					return fmt.Errorf("record destinations set aside (%s): %w", strings.Join(res0.setAsideNames, ", "), err)
				}
			}
			if err != nil || len(res0.unknown) == 0 || refreshed {
				return err
			}
			// An environment without a route may be a destination added
			// since the table was set: look once before dead-lettering,
			// and apply again (idempotent) if the table changed.
			changed, err := c.routes.refreshed(bctx, s)
			if err != nil {
				return err // retried, refreshing again
			}
			refreshed = true
			if !changed {
				return nil
			}
		}
	})
	if err != nil {
		return res, err
	}
	failures, unknown := res0.failures, res0.unknown
	for _, i := range res0.setAside {
		it := evItem[i]
		addDead(it, ReasonDestinationUnavailable, fmt.Errorf("destination of environment %q unavailable", it.ev.Env))
	}
	if len(res0.setAside) > 0 {
		c.stats.setAside.Add(int64(len(res0.setAside)))
		c.log.Warn("events of unavailable destinations set aside", "count", len(res0.setAside), "destinations", res0.setAsideNames)
	}
	for _, i := range unknown {
		it := evItem[i]
		addDead(it, ReasonUnknownEnvironment, fmt.Errorf("environment %q has no destination", it.ev.Env))
	}
	c.stats.unrouted.Add(int64(len(unknown)))
	for _, f := range failures {
		it := evItem[f.Index]
		addDead(it, f.Reason, f.Err)
	}

	if len(dead) > 0 {
		pending := dead
		err := c.retry(ctx, "write dead letters to "+c.cfg.DeadLetterTopic, func() error {
			var err error
			pending, err = writeAttempt(bctx, dlq, pending)
			return err
		})
		if err != nil {
			return res, err
		}
		c.logDeadLetters(deadInfo)
	}

	// Per partition, the offset after the batch's last message: the next
	// one to read.
	next := make(map[int]int64, 4)
	var oldest time.Time // produce time of the batch's oldest message
	for _, it := range live {
		next[it.msg.Partition] = max(next[it.msg.Partition], it.msg.Offset+1)
		if t := it.msg.Time; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	offsets := map[string]map[int]int64{c.cfg.Topic: next}
	err = c.retry(ctx, "commit offsets", func() error {
		// Every other commit error is worth retrying: the batch is in Redis,
		// so the worst a failed commit costs is re-applying it. The call
		// is bounded by the group's request timeout.
		err := cm.CommitOffsets(offsets)
		if kafkax.GenerationEnded(err) {
			return retry.Permanent(fmt.Errorf("%w: %w", errGenerationEnded, err))
		}
		return err
	})
	if err != nil {
		return res, err
	}

	res.applied, res.deadLettered = len(evs)-len(failures)-len(unknown)-len(res0.setAside), len(dead)
	c.stats.applied.Add(int64(res.applied))
	c.stats.deadLettered.Add(int64(res.deadLettered))
	c.stats.batches.Add(1)
	now := c.now()
	c.stats.lastApplied.Store(now.UnixNano())
	c.fresh.Committed(int64(len(live)))
	if c.observer != nil {
		c.observer.BatchCommitted(BatchReport{Messages: len(live), Took: now.Sub(began), OldestProduced: oldest, Committed: now,
			DeadLettered: deadByReason(deadInfo)})
	}
	return res, nil
}

func decodeReason(err error) string {
	var de *schema.DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return "decode"
}

// retry runs op until it succeeds, returns a permanent error, ctx ends, or
// RetryTimeout passes, counting and logging each retry. The first wait is
// short (20ms): a batch waiting on a blip of Redis holds up the whole
// pipeline.
func (c *Consumer) retry(ctx context.Context, what string, op func() error) error {
	return c.retryFor(ctx, c.cfg.RetryTimeout, what, op)
}

// retryFor is retry bounded by timeout.
func (c *Consumer) retryFor(ctx context.Context, timeout time.Duration, what string, op func() error) error {
	p := retry.Policy{Initial: 20 * time.Millisecond, Max: 5 * time.Second, Timeout: timeout}
	return retry.Do(ctx, p, what, op, func(err error, d time.Duration) {
		c.stats.retries.Add(1)
		c.log.Warn("transient error, retrying", "op", what, "err", err, "backoff", d)
	})
}
