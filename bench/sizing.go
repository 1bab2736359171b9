package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/schema"
)

// Defaults of SizingConfig.
const (
	DefaultSizingEvents    = 1_000_000
	DefaultReferenceEvents = 1_000_000
	DefaultLagInterval     = time.Second
	DefaultSizingTimeout   = 30 * time.Minute
	// NamePrefix starts the topic, consumer group and Redis prefix of a
	// run when none is named.
	NamePrefix = "cohortsync-bench-"
	// MaxLagSamples bounds the lag table: longer runs print every k-th
	// sample.
	MaxLagSamples = 60
)

// SizingConfig is cohortsync bench: a user's own Kafka and Redis, sized
// with synthetic events applied by the real consumer.
type SizingConfig struct {
	// Events is how many synthetic membership events (adds of distinct
	// members to one segment) are produced and applied. Default
	// DefaultSizingEvents.
	Events int
	// ReferenceEvents is how many include sets the raw pipelined SADD
	// reference writes (at most Events). Default DefaultReferenceEvents.
	ReferenceEvents int
	// Topic holds the events; default NamePrefix+<run id>, created and
	// deleted by the run. A topic that exists is used and left in place.
	Topic string
	// Partitions and ReplicationFactor of the topic when the run creates
	// it; default the producer's.
	Partitions, ReplicationFactor int
	// Prefix is the Redis prefix written; default NamePrefix+<run id>.
	Prefix string
	// Force runs even when Topic holds messages or Prefix holds
	// cohortsync or LaunchDarkly data.
	Force bool
	// ConsumerBatch is the consumer's BatchSize; 0 its default.
	ConsumerBatch int
	// ConsumerAppliers is the consumer's Appliers; 0 its default.
	ConsumerAppliers int
	// LagInterval is how often the consumer's lag is checked and sampled.
	// Default DefaultLagInterval.
	LagInterval time.Duration
	// Timeout bounds the whole run. Default DefaultSizingTimeout.
	Timeout time.Duration
}

// DefaultSizing returns the documented defaults.
func DefaultSizing() SizingConfig {
	p := publish.DefaultConfig()
	return SizingConfig{Events: DefaultSizingEvents, ReferenceEvents: DefaultReferenceEvents,
		Partitions: p.TopicPartitions, ReplicationFactor: p.TopicReplicationFactor,
		LagInterval: DefaultLagInterval, Timeout: DefaultSizingTimeout}
}

// Validate checks c.
func (c SizingConfig) Validate() error {
	var errs []error
	bad := func(name string, v any, want string, a ...any) {
		errs = append(errs, setting.Invalid(name, v, want, a...))
	}
	if c.Events < 1 {
		bad("events", c.Events, "a positive number of events")
	}
	if c.ReferenceEvents < 1 {
		bad("reference-events", c.ReferenceEvents, "a positive number of include sets")
	}
	if c.Topic != "" && !kafkax.ValidTopic(c.Topic) {
		bad("topic", c.Topic, "%s", kafkax.TopicForm)
	}
	if c.Partitions < 1 {
		bad("topic-partitions", c.Partitions, "a positive number of partitions")
	}
	if c.ReplicationFactor < 1 {
		bad("topic-replication-factor", c.ReplicationFactor, "a positive replication factor")
	}
	switch {
	case c.Prefix == bigsegments.DefaultPrefix:
		bad("redis-prefix", c.Prefix, "a prefix of the benchmark's own, not the one the SDKs read by default")
	case c.Prefix != strings.TrimSpace(c.Prefix):
		bad("redis-prefix", c.Prefix, "a prefix without blanks at either end")
	}
	if c.ConsumerBatch < 0 || c.ConsumerBatch > consumer.MaxBatchSize {
		bad("consumer-batch-size", c.ConsumerBatch, "an integer between 0 (the consumer's default) and %d", consumer.MaxBatchSize)
	}
	if c.ConsumerAppliers < 0 || c.ConsumerAppliers > consumer.MaxAppliers {
		bad("consumer-appliers", c.ConsumerAppliers, "an integer between 0 (the consumer's default) and %d", consumer.MaxAppliers)
	}
	if c.LagInterval < 10*time.Millisecond || c.LagInterval > consumer.MaxSyncInterval {
		bad("lag-interval", c.LagInterval, "a duration between 10ms and %v", consumer.MaxSyncInterval)
	}
	if c.Timeout <= 0 {
		bad("timeout", c.Timeout, "a positive duration")
	}
	return errors.Join(errs...)
}

// LagSample is the consumer's lag at one moment of a sizing run.
type LagSample struct {
	At      time.Duration // since the consumer started
	Lag     int64         // uncommitted messages at the last check; -1 before the first
	Applied int64         // events applied so far
}

// SizingResult is what a sizing run measured.
type SizingResult struct {
	Events        int
	Topic, Prefix string
	Produce       float64       // events produced per second (acks=all, the producer's writer settings)
	Join          time.Duration // from the consumer's start to its first assignment
	Apply         time.Duration // from the first assignment to caught up
	RawSADD       float64       // the reference: pipelined SADDs of bare include sets per second
	Lag           []LagSample
}

// ApplyRate is events applied per second from the first assignment.
func (r SizingResult) ApplyRate() float64 { return float64(r.Events) / r.Apply.Seconds() }

// Rows is the result as table rows (no targets: these size a deployment).
func (r SizingResult) Rows() []Row {
	apply := r.ApplyRate()
	return []Row{
		{Measure: fmt.Sprintf("produce %d synthetic events to %s (the producer's writer settings, acks=all)", r.Events, r.Topic),
			Subject: fmt.Sprintf("%.0f events/s", r.Produce)},
		{Measure: fmt.Sprintf("apply with the consumer into Redis under %s, from its first assignment (%.2f s to join) until caught up", r.Prefix, r.Join.Seconds()),
			Subject:   fmt.Sprintf("%.0f events/s (%.2f s)", apply, r.Apply.Seconds()),
			Reference: fmt.Sprintf("raw pipelined SADD of bare include sets: %.0f/s", r.RawSADD),
			Figure:    apply / r.RawSADD, Unit: Ratio},
	}
}

// WriteLag prints the lag samples as a Markdown table, at most
// MaxLagSamples rows (every k-th sample, and always the last).
func (r SizingResult) WriteLag(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| time since the consumer started | consumer lag (messages) | applied |\n|---:|---:|---:|\n")
	step := (len(r.Lag) + MaxLagSamples - 1) / MaxLagSamples
	for i, s := range r.Lag {
		if step > 1 && i%step != 0 && i != len(r.Lag)-1 {
			continue
		}
		lag := strconv.FormatInt(s.Lag, 10)
		if s.Lag < 0 {
			lag = "not checked yet"
		}
		fmt.Fprintf(&b, "| %.1f s | %s | %d |\n", s.At.Seconds(), lag, s.Applied)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Size runs cohortsync bench: it produces cfg.Events synthetic events to
// a topic, times the raw pipelined SADD reference on rdb, applies the
// events with the real consumer under a prefix, sampling its lag, and
// removes what it wrote. It refuses a topic holding messages or a prefix
// holding data unless cfg.Force. Progress goes to out.
func Size(ctx context.Context, cfg SizingConfig, rdb redis.UniversalClient, kf *kafkax.Factory, out io.Writer) (res SizingResult, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	say := func(format string, args ...any) { _, _ = fmt.Fprintf(out, "bench: "+format+"\n", args...) } // progress only
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	res = SizingResult{Events: cfg.Events, Topic: cfg.Topic, Prefix: cfg.Prefix}
	if res.Topic == "" {
		res.Topic = NamePrefix + id
	}
	if res.Prefix == "" {
		res.Prefix = NamePrefix + id
	}
	segment, group := NamePrefix+id, NamePrefix+id
	ref, rawRef := bigsegments.Ref(segment, 1), bigsegments.Ref(segment+"-raw", 1)

	messages, existed, err := TopicMessages(ctx, kf, res.Topic)
	if err != nil {
		return res, err
	}
	if messages > 0 && !cfg.Force {
		return res, fmt.Errorf("topic %s already holds %d messages: refusing to run (--force to run anyway: they are applied under the prefix too and counted)", res.Topic, messages)
	}
	var held []string
	held, err = storeKeys(ctx, rdb, res.Prefix)
	if err != nil {
		return res, err
	}
	if len(held) > 0 && !cfg.Force {
		return res, fmt.Errorf("the Redis prefix %s already holds data (%s exists): refusing to run (--force to run anyway)", res.Prefix, strings.Join(held, ", "))
	}
	// Cleanup runs on a context that outlives an interrupted run.
	cctx := context.WithoutCancel(ctx)
	defer func() {
		var errs []error
		errs = append(errs, removeSegment(cctx, rdb, res.Prefix, ref, cfg.Events), DeleteGroup(cctx, kf, group))
		// The store keys the consumer created go; those there before stay.
		var created []string
		for _, k := range prefixStoreKeys(res.Prefix) {
			if !slices.Contains(held, k) {
				created = append(created, k)
			}
		}
		errs = append(errs, deleteKeys(cctx, rdb, created...))
		if !existed {
			errs = append(errs, DeleteTopics(cctx, kf, res.Topic, kafkax.DeadLetterTopic(res.Topic)))
		} else {
			say("topic %s existed before the run: left in place, with the %d synthetic events", res.Topic, cfg.Events)
		}
		if cerr := errors.Join(errs...); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()

	pcfg := publish.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions, pcfg.TopicReplicationFactor = res.Topic, cfg.Partitions, cfg.ReplicationFactor
	if err := publish.EnsureTopics(ctx, pcfg, kf); err != nil {
		return res, err
	}
	say("producing %d events to %s", cfg.Events, res.Topic)
	if res.Produce, err = produce(ctx, kf, pcfg, segment, cfg.Events); err != nil {
		return res, err
	}
	say("produced: %.0f events/s", res.Produce)

	n := min(cfg.ReferenceEvents, cfg.Events)
	res.RawSADD, err = RawSADD(ctx, rdb, res.Prefix, rawRef, n, max(cfg.ConsumerBatch, consumer.DefaultBatchSize))
	if err = errors.Join(err, removeSegment(ctx, rdb, res.Prefix, rawRef, n)); err != nil {
		return res, err
	}
	say("reference: raw pipelined SADD of %d include sets: %.0f/s", n, res.RawSADD)

	c, err := StartConsumer(ctx, consumer.Config{Topic: res.Topic, GroupID: group, RedisPrefix: res.Prefix,
		BatchSize: cfg.ConsumerBatch, Appliers: cfg.ConsumerAppliers, SyncInterval: cfg.LagInterval}, rdb, kf)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, c.Stop()) }()
	var assigned time.Time
	tick := time.NewTicker(min(cfg.LagInterval, 10*time.Millisecond))
	defer tick.Stop()
	caught := make(chan error, 1)
	go func() { caught <- c.WaitCaughtUp(ctx) }() // ends with ctx at the latest
	next := cfg.LagInterval
	for {
		select {
		case err := <-caught:
			if err != nil {
				return res, errors.Join(fmt.Errorf("consumer catching up: %w", err), c.Failed())
			}
			now := time.Now()
			if assigned.IsZero() {
				assigned = now
			}
			st := c.Stats()
			res.Lag = append(res.Lag, LagSample{At: now.Sub(c.Started), Lag: 0, Applied: st.Applied})
			res.Join, res.Apply = assigned.Sub(c.Started), now.Sub(assigned)
			if st.Applied < int64(cfg.Events) {
				return res, fmt.Errorf("consumer caught up having applied %d events, want at least %d", st.Applied, cfg.Events)
			}
			res.Events = int(st.Applied) // with --force, the topic's own events count too
			return res, nil
		case now := <-tick.C:
			st := c.Stats()
			if assigned.IsZero() && st.Generations > 0 {
				assigned = now
			}
			if at := now.Sub(c.Started); at >= next {
				next += cfg.LagInterval
				res.Lag = append(res.Lag, LagSample{At: at, Lag: st.Lag, Applied: st.Applied})
				say("%5.1f s: lag %d, applied %d", at.Seconds(), st.Lag, st.Applied)
			}
		}
	}
}

// prefixStoreKeys are the keys of a Big Segments store as a whole under
// prefix: the SDKs' synchronized_on, cohortsync's store id, lost-store
// mark and segment list.
func prefixStoreKeys(prefix string) []string {
	return []string{bigsegments.SyncTimeKey(prefix), bigsegments.StoreIDKey(prefix), bigsegments.StoreLostKey(prefix), bigsegments.SegmentsKey(prefix)}
}

// storeKeys lists the store keys (prefixStoreKeys) that exist under
// prefix: any of them says the prefix holds Big Segments data. It reads
// those keys alone: no SCAN of a user's keyspace.
func storeKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var held []string
	for _, k := range prefixStoreKeys(prefix) {
		n, err := rdb.Exists(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("check prefix %s: %w", prefix, err)
		}
		if n > 0 {
			held = append(held, k)
		}
	}
	return held, nil
}

// removeSegment removes ref from the include sets of members Key(i),
// i < n, under prefix (Redis deletes a set left empty), and deletes
// cohortsync's keys of ref: only what the run wrote, even under a prefix
// that holds other data.
func removeSegment(ctx context.Context, rdb redis.UniversalClient, prefix, ref string, n int) error {
	const batch = 10000
	for i := 0; i < n; i += batch {
		p := rdb.Pipeline()
		for j := i; j < min(i+batch, n); j++ {
			p.SRem(ctx, bigsegments.IncludeKey(prefix, Key(j)), ref)
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("remove %s from the include sets under %s: %w", ref, prefix, err)
		}
	}
	if err := rdb.SRem(ctx, bigsegments.SegmentsKey(prefix), ref).Err(); err != nil {
		return fmt.Errorf("remove %s from %s: %w", ref, bigsegments.SegmentsKey(prefix), err)
	}
	return deleteKeys(ctx, rdb, bigsegments.MembersKey(prefix, ref), bigsegments.RunsKey(prefix, ref), bigsegments.MetaKey(prefix, ref))
}

// deleteKeys deletes keys one command each (they may span Cluster slots).
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	p := rdb.Pipeline()
	for _, k := range keys {
		p.Unlink(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("delete %s: %w", strings.Join(keys, ", "), err)
	}
	return nil
}

// produce writes n add events of segment (members Key(i)) with the
// producer's writer settings and concurrency, each batch built in the
// goroutine that sends it (n may be tens of millions), and returns events
// per second acknowledged.
func produce(ctx context.Context, kf *kafkax.Factory, cfg publish.Config, segment string, n int) (float64, error) {
	w := publish.NewWriter(cfg, kf)
	defer func() { _ = w.Close() }() // WriteMessages is synchronous: nothing is left to flush
	run := "bench-" + time.Now().UTC().Format("20060102T150405Z")
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.InFlight)
	for i := 0; i < n; i += cfg.SendBatch {
		from, to := i, min(i+cfg.SendBatch, n)
		g.Go(func() error {
			msgs := make([]kafka.Message, 0, to-from)
			now := time.Now()
			for j := from; j < to; j++ {
				ev := schema.Event{Env: "bench", Segment: segment, Generation: 1, ContextKind: "user", ContextKey: Key(j),
					Op: schema.OpAdd, Run: run, Seq: uint64(j + 1), Source: "bench", Time: now}
				msgs = append(msgs, ev.Message())
			}
			return writeAll(gctx, w, msgs)
		})
	}
	if err := g.Wait(); err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// writeAll writes msgs, retrying the ones that failed transiently, as the
// producer does: right after the topic is created a broker may still answer
// NotLeaderForPartition for some partitions.
func writeAll(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	pending := msgs
	return retry.Do(ctx, retry.Policy{Timeout: time.Minute}, "produce", func() error {
		err := w.WriteMessages(ctx, pending...)
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(pending) {
			failed := pending[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, pending[i])
				}
			}
			pending = failed
		}
		return kafkax.Classify(err)
	}, nil)
}
