package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// storeIDs detects a store that lost its data under a running consumer
// (issue 11, item 1). Before this process first writes to a prefix, or
// first marks it current, it writes a random store id there (or adopts the
// one another member of the group wrote); from then on a prefix whose id is missing or changed lost
// everything written before (FLUSHALL, a Redis replaced by an empty one, a
// failover to an empty replica), though the group's offsets say it is
// applied. Such a prefix is not stamped current again: the SDKs, reading
// no big_segments_synchronized_on, report the store stale instead of
// evaluating an empty one as up to date. The loss is logged, counted,
// fails readiness (not liveness: a restarted process would start afresh)
// and is written into the store (StoreLostKey), so that no consumer claims
// it again until it has been rebuilt (cohortsync rebuild, which deletes
// that key when done; README "Redis lost its data"). A store whose mark
// exists is never stamped, whatever its id says: rebuild writes the mark
// to hold freshness back while it refills the store.
type storeIDs struct {
	log *slog.Logger

	mu     sync.Mutex
	ids    map[storeKey]string                   // the id found or written, per store
	lost   map[storeKey]struct{}                 // stores found without their id
	names  map[storeKey]string                   // destination names, for the messages
	checks map[redis.UniversalClient]*sync.Mutex // per client, the lock its checks take turns on (intact)
}

// storeKey is one prefix on one Redis client.
type storeKey struct {
	client redis.UniversalClient
	prefix string
}

func newStoreIDs(log *slog.Logger) *storeIDs {
	return &storeIDs{log: log, ids: map[storeKey]string{}, lost: map[storeKey]struct{}{}, names: map[storeKey]string{},
		checks: map[redis.UniversalClient]*sync.Mutex{}}
}

// checkLock returns the lock that orders the checks of client's stores.
func (s *storeIDs) checkLock(client redis.UniversalClient) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.checks[client]
	if l == nil {
		l = &sync.Mutex{}
		s.checks[client] = l
	}
	return l
}

// intact returns the prefixes of client that still hold their store's id,
// writing an id to those seen for the first time; the others are recorded
// as lost (and logged once). names name the destination, for messages.
func (s *storeIDs) intact(ctx context.Context, client redis.UniversalClient, prefixes []string, names string) ([]string, error) {
	// A check decides from ids read before it looks at s.ids: two checks
	// of one new store at once (two streams' first batches, a batch and a
	// stamp) would otherwise let the one that read "no id" judge after the
	// other recorded the id it wrote, and call the new store lost. Checks
	// are a few per sync interval, so they take turns per client.
	turn := s.checkLock(client)
	turn.Lock()
	defer turn.Unlock()
	pipe := client.Pipeline()
	gets := make([]*redis.StringCmd, len(prefixes))
	marks := make([]*redis.IntCmd, len(prefixes))
	for i, p := range prefixes {
		gets[i] = pipe.Get(ctx, bigsegments.StoreIDKey(p))
		marks[i] = pipe.Exists(ctx, bigsegments.StoreLostKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read store ids: %w", err)
	}
	var ok, gone []string
	defer func() {
		// A lost store must not look current: a stamp another member (or
		// this one) wrote just before the loss was seen, or while racing
		// it, is taken back at every check.
		if len(gone) == 0 {
			return
		}
		pipe := client.Pipeline()
		for _, p := range gone {
			pipe.Del(ctx, bigsegments.SyncTimeKey(p))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			s.log.WarnContext(ctx, "take back synchronized_on of a store that lost its data", "destination", names, "error", err)
		}
	}()
	for i, p := range prefixes {
		k := storeKey{client, p}
		found, err := gets[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read store id of prefix %q: %w", p, err)
		}
		s.mu.Lock()
		want, known := s.ids[k]
		_, lost := s.lost[k]
		s.names[k] = names
		s.mu.Unlock()
		switch {
		case lost:
			gone = append(gone, p)
		case marks[i].Val() > 0:
			// The mark is the store's own word, whoever wrote it: a
			// consumer that found the loss, or cohortsync rebuild holding
			// freshness back while it refills the store.
			s.markLost(ctx, client, k, names, want, "its store_lost mark is set (a loss a consumer found, or a rebuild under way)")
			gone = append(gone, p)
		case !known:
			id, err := s.claim(ctx, client, p, found)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.ids[k] = id
			s.mu.Unlock()
			ok = append(ok, p)
		case found == want:
			ok = append(ok, p)
		default:
			s.markLost(ctx, client, k, names, want, found)
			gone = append(gone, p)
		}
	}
	return ok, nil
}

// claimUnseen claims the store id of every prefix of changes this process
// has not checked yet (see intact), so that a store's id exists before
// anything is written to it. Prefixes already known cost no round trip.
func (s *storeIDs) claimUnseen(ctx context.Context, client redis.UniversalClient, changes []segmentstore.Change, names string) error {
	var unseen []string
	last := ""
	s.mu.Lock()
	for i := range changes {
		p := changes[i].Prefix
		if (i > 0 && p == last) || slices.Contains(unseen, p) {
			continue
		}
		last = p
		k := storeKey{client, p}
		if _, known := s.ids[k]; known {
			continue
		}
		if _, lost := s.lost[k]; lost {
			continue
		}
		unseen = append(unseen, p)
	}
	s.mu.Unlock()
	if len(unseen) == 0 {
		return nil
	}
	_, err := s.intact(ctx, client, unseen, names)
	return err
}

// markLost records that k lost its data: in this process, and in the
// store itself for every later consumer (best effort: a store that cannot
// be written now is found lost again by the next process's first check
// only if it says so, hence the log line either way).
func (s *storeIDs) markLost(ctx context.Context, client redis.UniversalClient, k storeKey, names, want, found string) {
	s.mu.Lock()
	s.lost[k] = struct{}{}
	s.mu.Unlock()
	err := client.SetNX(ctx, bigsegments.StoreLostKey(k.prefix), time.Now().UTC().Format(time.RFC3339), 0).Err()
	s.log.ErrorContext(ctx, "Redis lost the data of a destination: its store id is gone or changed "+
		"(FLUSHALL, a Redis replaced by an empty one, or a failover to an empty replica); it is no longer marked current, "+
		"so SDKs report it stale; stop the group's consumers and run cohortsync rebuild (README: Redis lost its data)",
		"destination", names, "prefix", k.prefix, "store_id", want, "found", found, "lost_key", bigsegments.StoreLostKey(k.prefix), "record_error", err)
}

// claim adopts the id found, or writes a new one unless another member of
// the group wrote one meanwhile (then adopts that).
func (s *storeIDs) claim(ctx context.Context, client redis.UniversalClient, prefix, found string) (string, error) {
	if found != "" {
		return found, nil
	}
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	set, err := client.SetNX(ctx, bigsegments.StoreIDKey(prefix), id, 0).Result()
	if err != nil {
		return "", fmt.Errorf("write the store id of prefix %q: %w", prefix, err)
	}
	if set {
		return id, nil
	}
	got, err := client.Get(ctx, bigsegments.StoreIDKey(prefix)).Result()
	if err != nil {
		return "", fmt.Errorf("read the store id of prefix %q: %w", prefix, err)
	}
	return got, nil
}

// count is the number of stores found without their id.
func (s *storeIDs) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lost)
}

// ready fails while a store has lost its data, naming each.
func (s *storeIDs) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lost) == 0 {
		return nil
	}
	var which []string
	for k := range s.lost {
		which = append(which, fmt.Sprintf("%s (prefix %q)", s.names[k], k.prefix))
	}
	slices.Sort(which)
	return fmt.Errorf("the Redis of %s lost its data: not marked current until rebuilt (README: Redis lost its data)", strings.Join(which, ", "))
}
