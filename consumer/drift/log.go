package drift

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/consumer/freshness"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/schema"
)

// LogStats describe the read of the topic.
type LogStats struct {
	// Ends are the end offsets read up to, by partition.
	Ends map[int]int64 `json:"ends"`
	// Events counts the events read for the destinations compared.
	Events int64 `json:"events"`
	// OtherEnvironments counts the events of environments not compared.
	OtherEnvironments int64 `json:"other_environments"`
	// Undecodable counts messages that are not valid events (the
	// consumer dead-letters them; they change nothing in Redis).
	Undecodable int64 `json:"undecodable"`
	// Incomplete lists the partitions whose log no longer starts at
	// offset 0: retention removed events there, so members only those
	// events added are not in the log.
	Incomplete []int `json:"incomplete,omitempty"`
}

// logFile is the log's events for the destinations compared, sorted by
// membership then position (see appendLogRecord), and the segment refs
// they name per destination.
type logFile struct {
	path  string
	refs  []map[string]bool // by destination index
	stats LogStats
	// toGroup: stats.Ends are the group's committed offsets.
	toGroup bool
}

// readLog reads every partition of the topic from its first offset to the
// end listed now (with toGroup, to the group's committed offset instead)
// into a sorted file under dir.
func readLog(ctx context.Context, kf *kafkax.Factory, cfg Config, dir string, toGroup bool) (*logFile, error) {
	kc := kf.Client(30 * time.Second)
	ids, first, end, err := freshness.Bounds(ctx, kc, cfg.Topic)
	if err != nil {
		return nil, err
	}
	if toGroup {
		c, err := freshness.ReadCommitted(ctx, kc, cfg.Topic, cfg.Group)
		if err != nil {
			return nil, err
		}
		if !c.HasCommitted() {
			return nil, fmt.Errorf("consumer group %q has committed no offset on topic %s: %w", cfg.Group, cfg.Topic, ErrNoCommits)
		}
		for p, pos := range c.Positions() {
			if e, ok := end[p]; ok {
				end[p] = min(e, pos)
			}
		}
	}
	slices.Sort(ids)
	lf := &logFile{path: filepath.Join(dir, "log.keys"), refs: make([]map[string]bool, len(cfg.Destinations)),
		stats: LogStats{Ends: end}, toGroup: toGroup}
	for i := range lf.refs {
		lf.refs[i] = map[string]bool{}
	}
	sorter, err := snapshot.NewSorter(snapshot.SortOptions{ChunkBytes: cfg.SortChunkBytes, TempDir: dir})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sorter.Close() }() // idempotent; Finish closes it on success
	var rec []byte
	for _, p := range ids {
		if first[p] > 0 {
			lf.stats.Incomplete = append(lf.stats.Incomplete, p)
		}
		cfg.Progress(fmt.Sprintf("reading %s/%d, offsets %d to %d", cfg.Topic, p, first[p], end[p]))
		err := readPartition(ctx, kf, cfg, p, first[p], end[p], func(m *kafka.Message) error {
			ev, err := schema.Decode(m)
			if err != nil {
				lf.stats.Undecodable++
				return nil
			}
			d, ok := cfg.Route(ev.Env)
			if !ok {
				lf.stats.OtherEnvironments++
				return nil
			}
			lf.stats.Events++
			lf.refs[d][ev.Ref()] = true
			rec = appendLogRecord(rec[:0], d, &ev, p, m.Offset)
			return sorter.Add(string(rec))
		})
		if err != nil {
			return nil, err
		}
	}
	if _, err := sorter.Finish(ctx, lf.path); err != nil {
		return nil, err
	}
	return lf, nil
}

// ErrNoCommits is wrapped by Check's error when Config.Group has never
// committed on the topic: not the group of the topic's consumers, or one
// that never ran.
var ErrNoCommits = errors.New("not the group of the consumers applying it? (an empty group compares with the whole log)")

// ErrGroupBehind is wrapped by Check's error when the group has more
// events left to apply than Config.MaxChanging.
var ErrGroupBehind = errors.New("the consumer group is too far behind to compare")

// readChanging returns the identities of the memberships with events after
// the group's offsets the log was read up to (lf), to the end now: a
// running consumer may have applied them while Redis was read.
func readChanging(ctx context.Context, kf *kafkax.Factory, cfg Config, lf *logFile) (map[string]bool, error) {
	ids, _, end, err := freshness.Bounds(ctx, kf.Client(30*time.Second), cfg.Topic)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	changing := map[string]bool{}
	var rec []byte
	for _, p := range ids {
		from, ok := lf.stats.Ends[p]
		if !ok {
			return nil, fmt.Errorf("partition %s/%d appeared during the check", cfg.Topic, p)
		}
		cfg.Progress(fmt.Sprintf("reading %s/%d, offsets %d to %d, applied or not while Redis was read", cfg.Topic, p, from, end[p]))
		err := readPartition(ctx, kf, cfg, p, from, end[p], func(m *kafka.Message) error {
			ev, err := schema.Decode(m)
			if err != nil {
				return nil
			}
			d, ok := cfg.Route(ev.Env)
			if !ok {
				return nil
			}
			rec = appendIdentity(rec[:0], d, ev.Ref(), ev.ContextKey)
			changing[string(rec)] = true
			if len(changing) > cfg.MaxChanging {
				return fmt.Errorf("%w: more than %d memberships changed after its committed offsets; run check once it has caught up", ErrGroupBehind, cfg.MaxChanging)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return changing, nil
}

// readPartition calls fn with each message of partition p from offset
// from to end (exclusive), in offset order. Offsets compaction removed are
// skipped; no message for cfg.Idle is an error.
func readPartition(ctx context.Context, kf *kafkax.Factory, cfg Config, p int, from, end int64, fn func(*kafka.Message) error) (err error) {
	if end <= from {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: kf.Brokers(), Dialer: kf.Dialer(), Topic: cfg.Topic,
		Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond})
	defer func() {
		if cerr := r.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close reader of %s/%d: %w", cfg.Topic, p, cerr))
		}
	}()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("read %s/%d from offset %d: %w", cfg.Topic, p, from, err)
	}
	for next := from; next < end; {
		mctx, cancel := context.WithTimeout(ctx, cfg.Idle)
		m, err := r.ReadMessage(mctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			// Neither compaction nor retention removes the last records of
			// a log: a read that stalls below the listed end would report
			// a partial log as drift (and rebuild would act on it).
			return fmt.Errorf("read %s/%d: no message at or after offset %d within %v, below the end %d listed at the start", cfg.Topic, p, next, cfg.Idle, end)
		case err != nil:
			return fmt.Errorf("read %s/%d at offset %d: %w", cfg.Topic, p, next, err)
		case m.Offset >= end:
			return nil
		}
		if err := fn(&m); err != nil {
			return err
		}
		next = m.Offset + 1
	}
	return nil
}
