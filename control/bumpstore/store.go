package bumpstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/segmentlease"
)

// Config places the store. The zero value takes every default.
type Config struct {
	// Prefix of every key. Default segmentlease.DefaultPrefix, the one
	// control prefix.
	Prefix string
	// Keep is how long a finished bump stays readable. Default 14 days.
	Keep time.Duration
	// Timeout bounds each Redis call. Default 5s.
	Timeout time.Duration
}

// Validate reports every invalid setting as a *setting.Error.
func (c Config) Validate() error {
	return (&segmentlease.Config{Prefix: c.Prefix, Timeout: c.Timeout}).Validate()
}

// Store keeps the last bump of each mapping.
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
	if cfg.Keep <= 0 {
		cfg.Keep = 14 * 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Store{rdb: rdb, cfg: cfg}, nil
}

func (s *Store) key(mapping string) string { return s.cfg.Prefix + "{bumps}:" + mapping }

// Last returns the last bump of mapping, nil if it has none.
func (s *Store) Last(ctx context.Context, mapping string) (*Bump, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.key(mapping)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bumpstore: read %s: %w", s.key(mapping), err)
	}
	var bump Bump
	if err := json.Unmarshal(b, &bump); err != nil {
		return nil, fmt.Errorf("bumpstore: %s does not decode: %w", s.key(mapping), err)
	}
	return &bump, nil
}

// Put stores b as its mapping's last bump; a finished one expires after
// Config.Keep.
func (s *Store) Put(ctx context.Context, b Bump) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("bumpstore: encode the bump of %q: %w", b.Mapping, err)
	}
	var ttl time.Duration
	if !b.Active() {
		ttl = s.cfg.Keep
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.rdb.Set(ctx, s.key(b.Mapping), data, ttl).Err(); err != nil {
		return fmt.Errorf("bumpstore: store the bump of %q: %w", b.Mapping, err)
	}
	return nil
}
