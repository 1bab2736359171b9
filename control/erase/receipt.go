package erase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/segmentlease"
)

// Receipt is the record of one erase.
type Receipt struct {
	// ID identifies the receipt; it is also the run id of the erase's
	// events and of its run history record.
	ID          string `json:"id"`
	Environment string `json:"environment"`
	Destination string `json:"destination"`
	Prefix      string `json:"prefix"`
	ContextKey  string `json:"context_key"`
	ContextHash string `json:"context_hash"`
	// Requested is when the erase began; Published when Kafka had
	// acknowledged every remove event (zero if it did not get there).
	Requested time.Time `json:"requested"`
	Published time.Time `json:"published,omitzero"`
	// Listed says the key is on the environment's erased-keys list, which
	// every later mapping run excludes (reason "erased").
	Listed bool `json:"erased_list"`
	// Segments are the segment generations a remove event was published to
	// (every one of the destination); empty, never null.
	Segments []Removal `json:"segments"`
	// Topic and Barrier: the erase is applied once the consumer group's
	// committed offsets on Topic reach Barrier (partition → offset) on
	// every partition. Nil when it could not be taken.
	Topic   string        `json:"topic"`
	Barrier map[int]int64 `json:"barrier"`
	// Error is why the erase stopped part way ("" if it did not).
	Error string `json:"error,omitempty"`
}

// Removal is the remove event of one segment generation.
type Removal struct {
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	Ref         string `json:"ref"`
	ContextKind string `json:"context_kind"`
	// Mapping owns the segment ("" for a list segment).
	Mapping string `json:"mapping,omitempty"`
	// WasMember says the key's include set held the segment when erased:
	// the segments it was removed from. The others got a remove too, in
	// case an add was still in flight.
	WasMember bool `json:"was_member"`
	// Seq is the event's sequence number in the segment.
	Seq uint64 `json:"seq"`
}

// RemovedFrom lists the refs the key was a member of.
func (r Receipt) RemovedFrom() []string {
	out := []string{}
	for _, s := range r.Segments {
		if s.WasMember {
			out = append(out, s.Ref)
		}
	}
	return out
}

// Store keeps receipts in the control Redis, without expiry (they are the
// record that an erase happened), under the control prefix:
// "<prefix>{erase}:receipt:<id>" (JSON) and "<prefix>{erase}:receipts", a
// sorted set of ids by time, for listing. One hash slot.
type Store struct {
	rdb redis.UniversalClient
	cfg segmentlease.Config
}

// NewStore returns receipts on rdb; only Prefix and Timeout of cfg apply.
func NewStore(rdb redis.UniversalClient, cfg segmentlease.Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = segmentlease.DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = segmentlease.DefaultTimeout
	}
	return &Store{rdb: rdb, cfg: cfg}, nil
}

func (s *Store) key(id string) string { return s.cfg.Prefix + "{erase}:receipt:" + id }
func (s *Store) index() string        { return s.cfg.Prefix + "{erase}:receipts" }

// ErrNotFound is wrapped by Get's error for an unknown receipt.
var ErrNotFound = errors.New("no such erase receipt")

// Save stores r (again, when it changed).
func (s *Store) Save(ctx context.Context, r Receipt) error {
	if r.ID == "" || strings.ContainsAny(r.ID, " \n") {
		return fmt.Errorf("erase receipt: bad id %q", r.ID)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode erase receipt %s: %w", r.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key(r.ID), b, 0)
		p.ZAdd(ctx, s.index(), redis.Z{Score: float64(r.Requested.UnixMilli()), Member: r.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store erase receipt %s: %w", r.ID, err)
	}
	return nil
}

// Get returns receipt id, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Receipt{}, fmt.Errorf("erase receipt %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("read erase receipt %q: %w", id, err)
	}
	var r Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		return Receipt{}, fmt.Errorf("%s does not decode: %w", s.key(id), err)
	}
	return r, nil
}

// List returns up to limit receipt ids (default 50), newest first.
func (s *Store) List(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 50
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ids, err := s.rdb.ZRevRange(ctx, s.index(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list erase receipts: %w", err)
	}
	return ids, nil
}
