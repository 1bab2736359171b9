package runstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

// Config places and tunes the store. The zero value takes every default.
type Config struct {
	// Prefix of every key. Default segmentlease.DefaultPrefix, the one
	// control prefix. No '{' or '}'.
	Prefix string
	// Retention is how long a run is kept. Default DefaultRetention (14
	// days, as hosted syncs keep their history).
	Retention time.Duration
	// Timeout bounds each Redis call. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxExclusions bounds the exclusion rows kept per run and
	// destination; more are counted, not kept. Default
	// DefaultMaxExclusions. See exclusions.go.
	MaxExclusions int64
}

// Defaults.
const (
	DefaultRetention = 14 * 24 * time.Hour
	DefaultTimeout   = 5 * time.Second
)

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	errs := []error{(&segmentlease.Config{Prefix: c.Prefix, Timeout: c.Timeout}).Validate(), c.validateExclusions()}
	if c.Retention < 0 || (c.Retention > 0 && c.Retention < time.Minute) {
		errs = append(errs, setting.Invalid("runs-retention", c.Retention, "a duration of at least 1m"))
	}
	return errors.Join(errs...)
}

// Record is one run of a mapping into one destination.
type Record struct {
	// ID is the producer's run id (unique, sorts by start time).
	ID          string `json:"id"`
	Mapping     string `json:"mapping"`
	Destination string `json:"destination"`
	// Trigger is why it ran: scheduled, catch-up, one-time, manual
	// (sync --mapping), purge.
	Trigger string `json:"trigger"`
	// Exclusions says how much of the run's exclusion report is kept with
	// it (WriteExclusions); nil when it was recorded without its report.
	Exclusions *ExclusionsKept `json:"exclusions_kept,omitempty"`
	// Summary is the producer's report: counts, sequence range, outcome,
	// error, start and duration.
	Summary producer.Summary `json:"summary"`
	// Published is when the run's last event was acknowledged by Kafka
	// (zero for a run that did not succeed).
	Published time.Time `json:"published,omitzero"`
	// Barrier is what the consumer group must commit on Topic for the
	// run to be applied (see freshness.Barrier); nil when it could not be
	// taken (Kafka's offsets could not be listed): then the run stays
	// "published" and Applied is never set.
	Topic   string        `json:"topic,omitempty"`
	Barrier map[int]int64 `json:"barrier"` // not omitempty: {} (nothing to wait for) is not null (unknown)
	// Gaps is the destination's count of set-asides (segmentlease.Gaps)
	// read before the run published: a higher count once the barrier is
	// reached means the consumer may have set some of the run's events
	// aside instead of applying them.
	Gaps uint64 `json:"gaps,omitempty"`
	// Applied is when the barrier was found reached: every event of the
	// run is in the destination's Redis. Zero until then.
	Applied time.Time `json:"applied,omitzero"`
	// SetAside is set instead of Applied when the consumer set events of
	// the destination aside while the run was being applied: the next run
	// of the segment reads it back and republishes what is missing.
	SetAside bool `json:"set_aside,omitempty"`
	// Progress is set while the run goes: the record is written when the
	// run starts and rewritten about every ProgressInterval, until the
	// run's final record (without Progress) replaces it.
	Progress *Progress `json:"progress,omitempty"`
}

// Progress is how far a running run got.
type Progress struct {
	// Phase is what the run does: one of producer's phases (starting,
	// recovering, reading, sorting, diffing, publishing), or waiting once
	// this destination is done and the run still syncs another.
	Phase string `json:"phase"`
	// Done counts what the phase did (rows read, events acknowledged);
	// Total is what it has to do, 0 when unknown.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// Updated is when the progress was written.
	Updated time.Time `json:"updated"`
}

// ProgressInterval is how often a running run's record is rewritten.
// A record not rewritten for StaleAfter belongs to a process that died
// (killed, or cut off from Redis): it reads "interrupted", never "running"
// for ever. The next run of the segment republishes what it left pending.
const (
	ProgressInterval = time.Second
	StaleAfter       = 30 * ProgressInterval
)

// PhaseWaiting is the phase of a destination that is done while the run
// syncs its mapping's other destinations.
const PhaseWaiting = "waiting"

// Running tells whether r is a running run's record (it may be stale:
// see Interrupted).
func (r Record) Running() bool { return r.Progress != nil && r.Summary.Outcome == "" }

// Interrupted tells whether r is a running run's record that was not
// rewritten for StaleAfter before now: its process is gone.
func (r Record) Interrupted(now time.Time) bool {
	return r.Running() && now.Sub(r.Progress.Updated) > StaleAfter
}

// Status states how far the run got, for people: running (or
// interrupted, see Interrupted), failed, refused by the max-shrink guard,
// published (not yet applied), applied, or set aside; "with exclusions" is
// added to a run that excluded rows.
func (r Record) Status() string { return r.StatusAt(time.Now()) }

// StatusAt is Status with now as the time a running record is judged at.
func (r Record) StatusAt(now time.Time) string {
	var st string
	switch {
	case r.Interrupted(now):
		return "interrupted"
	case r.Running():
		return "running"
	case r.Summary.Outcome == producer.Failed:
		return "failed"
	case r.Summary.Outcome == producer.Refused:
		return "refused by guard"
	case r.SetAside:
		st = "set aside (destination unavailable; repaired by the next run)"
	case !r.Applied.IsZero():
		st = "applied"
	case !r.Published.IsZero():
		st = "published, not applied"
	default:
		st = string(r.Summary.Outcome)
	}
	if r.Summary.ExcludedTotal() > 0 {
		st += ", with exclusions"
	}
	return st
}

// awaitsApply tells whether the run waits for its barrier.
func (r Record) awaitsApply() bool {
	return !r.Published.IsZero() && r.Barrier != nil && r.Applied.IsZero() && !r.SetAside
}

// Store is the run history in Redis.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

// New returns a Store on rdb (standalone or Cluster).
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = segmentlease.DefaultPrefix
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, cfg: cfg}, nil
}

func (s *Store) runKey(id string) string    { return s.cfg.Prefix + "{runs}:run:" + id }
func (s *Store) indexKey() string           { return s.cfg.Prefix + "{runs}:by-start" }
func (s *Store) mappingKey(m string) string { return s.cfg.Prefix + "{runs}:mapping:" + m }

// pendingKey indexes, by publication time, the runs published and not yet
// applied, so that the barrier checks read them without a scan.
func (s *Store) pendingKey() string { return s.cfg.Prefix + "{runs}:unapplied" }

// member is a run's member of the indexes: one per destination.
func (r Record) member() string { return r.ID + " " + r.Destination }

// Add records r and trims what is past the retention, in one transaction.
func (s *Store) Add(ctx context.Context, r Record) error {
	if r.ID == "" || r.Mapping == "" || strings.ContainsAny(r.ID, " \n") {
		return fmt.Errorf("runstore: record needs an id and a mapping (got %q, %q)", r.ID, r.Mapping)
	}
	b, err := encode(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	started := r.Summary.Started
	if started.IsZero() {
		started = s.cfg.Now()
	}
	member := r.member()
	cutoff := s.cfg.Now().Add(-s.cfg.Retention).UnixMilli()
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.runKey(member), b, s.cfg.Retention)
		p.ZAdd(ctx, s.indexKey(), redis.Z{Score: float64(started.UnixMilli()), Member: member})
		p.ZAdd(ctx, s.mappingKey(r.Mapping), redis.Z{Score: float64(started.UnixMilli()), Member: member})
		p.ZRemRangeByScore(ctx, s.indexKey(), "-inf", fmt.Sprintf("(%d", cutoff))
		p.ZRemRangeByScore(ctx, s.mappingKey(r.Mapping), "-inf", fmt.Sprintf("(%d", cutoff))
		p.PExpire(ctx, s.mappingKey(r.Mapping), s.cfg.Retention)
		if r.awaitsApply() {
			p.ZAdd(ctx, s.pendingKey(), redis.Z{Score: float64(r.Published.UnixMilli()), Member: member})
		}
		p.ZRemRangeByScore(ctx, s.pendingKey(), "-inf", fmt.Sprintf("(%d", cutoff))
		return nil
	})
	if err != nil {
		return fmt.Errorf("runstore: record run %s of mapping %q: %w", r.ID, r.Mapping, err)
	}
	return nil
}

func encode(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("runstore: encode run %s: %w", r.ID, err)
	}
	return b, nil
}

// Filter selects runs for List.
type Filter struct {
	// Mapping, when set, keeps that mapping's runs.
	Mapping string
	// Limit bounds how many are returned, newest first. Default 50.
	Limit int
}

// List returns runs newest first. A record that expired meanwhile is left
// out; one that does not decode fails the list with its key named.
func (s *Store) List(ctx context.Context, f Filter) ([]Record, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.indexKey()
	if f.Mapping != "" {
		key = s.mappingKey(f.Mapping)
	}
	cutoff := s.cfg.Now().Add(-s.cfg.Retention).UnixMilli()
	members, err := s.rdb.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Max: "+inf", Min: fmt.Sprint(cutoff), Count: int64(f.Limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("runstore: list runs: %w", err)
	}
	return s.getAll(ctx, members)
}

// getAll reads the records of members, leaving out those that expired
// since the index was read.
func (s *Store) getAll(ctx context.Context, members []string) ([]Record, error) {
	out := make([]Record, 0, len(members))
	for _, m := range members {
		r, err := s.get(ctx, m)
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ErrNotFound is wrapped by Get's error for a run the store does not hold
// (never recorded, or past the retention).
var ErrNotFound = errors.New("no such run")

// Get returns the records of run id, one per destination it ran into.
func (s *Store) Get(ctx context.Context, id string) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	// A run id begins with its start time to the second (producer.NewRunID)
	// and the index scores runs by start time: look in that second.
	at, err := time.Parse("20060102T150405Z", id[:min(len(id), len("20060102T150405Z"))])
	if err != nil {
		return nil, fmt.Errorf("runstore: run %s: %w (a run id starts with its UTC start time, such as 20261125T201500Z)", id, ErrNotFound)
	}
	in, err := s.rdb.ZRangeByScore(ctx, s.indexKey(), &redis.ZRangeBy{
		Min: fmt.Sprint(at.UnixMilli()), Max: fmt.Sprintf("(%d", at.Add(time.Second).UnixMilli())}).Result()
	if err != nil {
		return nil, fmt.Errorf("runstore: get run %s: %w", id, err)
	}
	var members []string
	for _, m := range in {
		if strings.HasPrefix(m, id+" ") {
			members = append(members, m)
		}
	}
	out, err := s.getAll(ctx, members)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("runstore: run %s: %w", id, ErrNotFound)
	}
	return out, nil
}

func (s *Store) get(ctx context.Context, member string) (Record, error) {
	b, err := s.rdb.Get(ctx, s.runKey(member)).Bytes()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("runstore: read %s: %w", s.runKey(member), err)
	}
	return decodeRecord(s.runKey(member), b)
}

// decodeRecord decodes the record stored at key.
func decodeRecord(key string, b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("runstore: %s does not decode: %w", key, err)
	}
	return r, nil
}
