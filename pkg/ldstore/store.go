package ldstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldtime"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems"
	"github.com/launchdarkly/go-server-sdk/v7/subsystems/ldstoreimpl"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// DefaultTimeout bounds each Redis read of a Store.
const DefaultTimeout = 5 * time.Second

// Store is a subsystems.BigSegmentStore over go-redis, reading the layout
// LaunchDarkly's Redis stores read.
type Store struct {
	// ctx bounds the store's lifetime: the SDK's interface passes no context,
	// so the one given to NewStore stands in for it.
	ctx     context.Context
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ subsystems.BigSegmentStore = (*Store)(nil)

// NewStore returns a store reading keys under prefix through client, which
// the caller owns and closes. Reads stop when ctx is done.
func NewStore(ctx context.Context, client redis.UniversalClient, prefix string) *Store {
	return &Store{ctx: ctx, client: client, prefix: prefix, timeout: DefaultTimeout}
}

// GetMetadata reads big_segments_synchronized_on. A missing key is zero
// metadata, which the SDK reports as STALE; an unparsable one is an error
// (STORE_ERROR), as in LaunchDarkly's Go Redis store.
func (s *Store) GetMetadata() (subsystems.BigSegmentStoreMetadata, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	key := bigsegments.SyncTimeKey(s.prefix)
	v, err := s.client.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return subsystems.BigSegmentStoreMetadata{}, nil
	}
	if err != nil {
		return subsystems.BigSegmentStoreMetadata{}, fmt.Errorf("ldstore: GET %s: %w", key, err)
	}
	ms, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return subsystems.BigSegmentStoreMetadata{}, fmt.Errorf("ldstore: %s = %q is not unix milliseconds: %w", key, v, err)
	}
	return subsystems.BigSegmentStoreMetadata{LastUpToDate: ldtime.UnixMillisecondTime(ms)}, nil
}

// GetMembership reads both sets of one context hash in one round trip.
// It always returns a non-nil membership: the SDK reports a nil one as
// HEALTHY even when the store is stale.
func (s *Store) GetMembership(contextHash string) (subsystems.BigSegmentMembership, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	incKey, excKey := bigsegments.IncludeKeyForHash(s.prefix, contextHash), bigsegments.ExcludeKeyForHash(s.prefix, contextHash)
	var inc, exc *redis.StringSliceCmd
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		inc = p.SMembers(ctx, incKey)
		exc = p.SMembers(ctx, excKey)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ldstore: SMEMBERS %s, %s: %w", incKey, excKey, err)
	}
	return ldstoreimpl.NewBigSegmentMembershipFromSegmentRefs(inc.Val(), exc.Val()), nil
}

// Close does nothing: the client belongs to the caller.
func (s *Store) Close() error { return nil }

// Configurer hands the SDK this already built store, for
// ldcomponents.BigSegments. The SDK closes the store with the client; the
// Redis client stays the caller's.
func (s *Store) Configurer() subsystems.ComponentConfigurer[subsystems.BigSegmentStore] {
	return storeConfigurer{s}
}

// storeConfigurer hands the SDK an already built store.
type storeConfigurer struct{ store subsystems.BigSegmentStore }

func (c storeConfigurer) Build(subsystems.ClientContext) (subsystems.BigSegmentStore, error) {
	return c.store, nil
}
