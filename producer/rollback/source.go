package rollback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/producer/generation"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/schema"
)

// SourceKind is the source label of a rollback's events.
const SourceKind = "rollback"

// DefaultIdle is how long a partition's read waits for an offset below the
// end it listed before it takes the rest as removed from the log.
const DefaultIdle = 10 * time.Second

// DefaultClockSkew is the default of Source.ClockSkew.
const DefaultClockSkew = 5 * time.Minute

// Source is the membership of Target, for a sync of Target's segment to
// publish; see the package comment for how it is read.
type Source struct {
	Target Target
	// Kafka and Topic are where the segment's events are.
	Kafka *kafkax.Factory
	Topic string
	// Destination reads the destination's members once the consumer has
	// applied everything published before (its Wait bounds that).
	Destination segmentstore.Rebuilder
	// Idle: see DefaultIdle, the default.
	Idle time.Duration
	// ClockSkew bounds how far apart the clocks of the replicas that
	// produce events are (Kafka's timestamps are the producers'); see
	// DefaultClockSkew, the default.
	ClockSkew time.Duration
	// Retry is the policy of listing the topic's offsets (a leader may be
	// moving). Default retry's defaults, but giving up after 30s: a topic
	// that is not there is more often a typo than a broker catching up.
	Retry retry.Policy
}

var _ source.Source = (*Source)(nil)

func (s *Source) skew() time.Duration {
	if s.ClockSkew > 0 {
		return s.ClockSkew
	}
	return DefaultClockSkew
}

// Name says which membership this is.
func (s *Source) Name() string {
	return fmt.Sprintf("membership of %s after run %s (seq %d)", bigsegments.Ref(s.Target.Segment.Segment, s.Target.Segment.Generation), s.Target.Run, s.Target.Boundary)
}

// Kind is SourceKind.
func (s *Source) Kind() string { return SourceKind }

// change is an event of a key after the boundary.
type change struct {
	seq uint64
	op  schema.Op
	run string
}

// Read emits every member of the target membership. The events are read
// first, up to the end offsets listed at the start; then the destination's
// members, once the consumer has applied everything up to those ends.
func (s *Source) Read(ctx context.Context, emit func(string) error, _ func(source.Exclusion) error) (source.Stats, error) {
	var st source.Stats
	later, maxSeq, err := s.changesSince(ctx)
	if err != nil {
		return st, err
	}
	id := s.Target.Segment
	if err := s.Destination.Members(ctx, id, func(k string) error {
		if _, changed := later[k]; changed {
			return nil
		}
		st.Rows++
		return emit(k)
	}); err != nil {
		return st, err
	}
	ref := bigsegments.Ref(id.Segment, id.Generation)
	info, err := segmentstore.Info(ctx, s.Destination.Client, s.Destination.Prefix, ref)
	if err != nil {
		return st, err
	}
	if info.LastSeq > s.Target.Boundary && info.LastSeq > maxSeq {
		return st, fmt.Errorf("%w: the destination applied %s's event seq %d, the topic %s holds none above %d (was it re-created?)",
			ErrHistoryIncomplete, ref, info.LastSeq, s.Topic, maxSeq)
	}
	for k, op := range later {
		// A diff removes only a member: before its removal, k was one.
		if op == schema.OpRemove {
			st.Rows++
			if err := emit(k); err != nil {
				return st, err
			}
		}
	}
	st.Keys = st.Rows
	return st, nil
}

// changesSince reads the topic up to its current end and returns, per
// context key changed after the boundary, the op of its earliest change,
// and the highest sequence number of the segment's events. The events of a
// generation handover are not changes (they republish members as they
// are), nor is a recovery of one, which keeps its run id.
func (s *Source) changesSince(ctx context.Context) (map[string]schema.Op, uint64, error) {
	parts, err := s.partitions(ctx)
	if err != nil {
		return nil, 0, err
	}
	id := s.Target.Segment
	head := (&schema.Event{Env: id.Env, Segment: id.Segment, ContextKind: id.ContextKind}).AppendKey(nil)
	events := map[string][]change{}
	handovers := map[string]bool{}
	var maxSeq uint64
	for _, p := range parts {
		err := s.readPartition(ctx, p, func(m *kafka.Message) {
			if !bytes.HasPrefix(m.Key, head) {
				return
			}
			ev, err := schema.Decode(m)
			if err != nil || ev.Generation != id.Generation {
				// An undecodable event went to the dead-letter topic, never
				// to Redis; another generation is another segment.
				return
			}
			maxSeq = max(maxSeq, ev.Seq)
			if ev.Seq <= s.Target.Boundary {
				p.lastBefore = m.Offset
				return
			}
			if ev.Source == generation.SourceKind {
				handovers[ev.Run] = true
			}
			events[ev.ContextKey] = append(events[ev.ContextKey], change{seq: ev.Seq, op: ev.Op, run: ev.Run})
		})
		if err != nil {
			return nil, 0, err
		}
	}
	for _, p := range parts {
		if err := p.check(s.Topic, s.Target.Started.Add(-s.skew())); err != nil {
			return nil, 0, err
		}
	}
	later := make(map[string]schema.Op, len(events))
	for k, cs := range events {
		first := change{}
		for _, c := range cs {
			if !handovers[c.run] && (first.seq == 0 || c.seq < first.seq) {
				first = c
			}
		}
		if first.seq != 0 {
			later[k] = first.op
		}
	}
	return later, maxSeq, nil
}

// partitions lists the topic's partitions with their first and end
// offsets now, retrying what Kafka says is passing (a leader moving).
func (s *Source) partitions(ctx context.Context) (parts []*partition, err error) {
	policy := s.Retry
	if policy.Timeout <= 0 {
		policy.Timeout = 30 * time.Second
	}
	err = retry.Do(ctx, policy, "list the partitions of topic "+s.Topic, func() error {
		parts, err = s.listPartitions(ctx)
		return kafkax.Classify(err)
	}, nil)
	return parts, err
}

func (s *Source) listPartitions(ctx context.Context) ([]*partition, error) {
	client := s.Kafka.Client(30 * time.Second)
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.Topic}})
	if err != nil {
		return nil, fmt.Errorf("read metadata of topic %q: %w", s.Topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		var terr error
		if len(md.Topics) == 1 {
			terr = md.Topics[0].Error
		}
		return nil, fmt.Errorf("topic %q: %w", s.Topic, errors.Join(terr, errors.New("not found")))
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.Topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets of topic %q: %w", s.Topic, err)
	}
	var parts []*partition
	for _, po := range lo.Topics[s.Topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", s.Topic, po.Partition, po.Error)
		}
		parts = append(parts, newPartition(po.Partition, po.FirstOffset, po.LastOffset))
	}
	if len(parts) != len(md.Topics[0].Partitions) {
		return nil, fmt.Errorf("list offsets of topic %q: %d partitions answered of %d", s.Topic, len(parts), len(md.Topics[0].Partitions))
	}
	return parts, s.skipOlder(ctx, client, parts)
}

// skipOlder starts each partition's read at its first record produced
// since the run started (less the clock skew): the events after the run
// are all there or beyond, so what precedes, holes included, is not read.
func (s *Source) skipOlder(ctx context.Context, client *kafka.Client, parts []*partition) error {
	since := s.Target.Started.Add(-s.skew())
	reqs := make([]kafka.OffsetRequest, 0, len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.TimeOffsetOf(p.id, since))
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.Topic: reqs}})
	if err != nil {
		return fmt.Errorf("list offsets of topic %q at %s: %w", s.Topic, since.UTC().Format(time.RFC3339), err)
	}
	starts := map[int]int64{}
	for _, po := range lo.Topics[s.Topic] {
		if po.Error != nil {
			return fmt.Errorf("offset of %s/%d at %s: %w", s.Topic, po.Partition, since.UTC().Format(time.RFC3339), po.Error)
		}
		for off := range po.Offsets {
			starts[po.Partition] = off
		}
	}
	for _, p := range parts {
		start, ok := starts[p.id]
		if !ok || start < 0 {
			start = p.end // nothing produced since
		}
		p.skipTo(start)
	}
	return nil
}

// readPartition calls fn with each message of p from its first offset to
// the end listed, in offset order, recording the offsets it never gets.
func (s *Source) readPartition(ctx context.Context, p *partition, fn func(*kafka.Message)) (err error) {
	if p.end <= p.first {
		return nil
	}
	idle := s.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.Kafka.Brokers(), Dialer: s.Kafka.Dialer(), Topic: s.Topic,
		Partition: p.id, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
	defer func() {
		if cerr := r.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close reader of %s/%d: %w", s.Topic, p.id, cerr))
		}
	}()
	if err := r.SetOffset(p.first); err != nil {
		return fmt.Errorf("read %s/%d from offset %d: %w", s.Topic, p.id, p.first, err)
	}
	for p.next < p.end {
		mctx, cancel := context.WithTimeout(ctx, idle)
		m, err := r.ReadMessage(mctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				// Nothing more below the end: the log's tail was removed
				// (finish records it as a hole).
				break
			}
			return fmt.Errorf("read %s/%d at offset %d: %w", s.Topic, p.id, p.next, err)
		}
		if m.Offset >= p.end {
			break
		}
		p.saw(m.Offset, m.Time)
		fn(&m)
	}
	p.finish()
	return nil
}
