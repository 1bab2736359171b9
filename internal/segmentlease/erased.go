package segmentlease

import (
	"context"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// Erased is the list of context keys erased from an environment
// (cohortsync erase): every mapping run into a destination of that
// environment excludes them from its source with reason "erased", so that
// the next sync of a synced segment does not add an erased key back. A
// hash per environment, context key → the erase receipt's id.
type Erased struct{ control }

// NewErased returns the erased-keys lists on rdb (standalone or Cluster);
// only Prefix and Timeout of cfg apply.
func NewErased(rdb redis.UniversalClient, cfg Config) (*Erased, error) {
	c, err := newControl(rdb, cfg)
	if err != nil {
		return nil, err
	}
	return &Erased{c}, nil
}

// envKey is env's list.
func (e *Erased) envKey(env string) string {
	return e.cfg.Prefix + "{erased:" + url.QueryEscape(env) + "}:keys"
}

// Add records contextKey as erased from env by receipt.
func (e *Erased) Add(ctx context.Context, env, contextKey, receipt string) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := e.rdb.HSet(ctx, e.envKey(env), contextKey, receipt).Err(); err != nil {
		return fmt.Errorf("record context key %q as erased from environment %q: %w", contextKey, env, err)
	}
	return nil
}

// Forget takes contextKey off env's list, so that syncs may add it again;
// it reports whether it was on it.
func (e *Erased) Forget(ctx context.Context, env, contextKey string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	n, err := e.rdb.HDel(ctx, e.envKey(env), contextKey).Result()
	if err != nil {
		return false, fmt.Errorf("forget the erasure of context key %q from environment %q: %w", contextKey, env, err)
	}
	return n == 1, nil
}

// Keys returns env's erased context keys, each with its receipt's id.
// The list grows by one per erased key; a run reads it once.
func (e *Erased) Keys(ctx context.Context, env string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	keys, err := e.rdb.HGetAll(ctx, e.envKey(env)).Result()
	if err != nil {
		return nil, fmt.Errorf("read the context keys erased from environment %q: %w", env, err)
	}
	return keys, nil
}
