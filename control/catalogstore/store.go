package catalogstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// ErrNotFound is returned for a mapping the store does not hold.
var ErrNotFound = errors.New("no such mapping")

// Change is what Apply did, or would report, for one mapping.
type Change string

// Changes.
const (
	Created   Change = "created"
	Updated   Change = "updated"
	Unchanged Change = "unchanged"
	// NotInFile is a stored mapping the applied catalog does not have: it
	// is kept, and reported so the user can Delete it if that was meant.
	NotInFile Change = "not-in-file"
)

// Result is one mapping's Change.
type Result struct {
	Name   string
	Change Change
}

// apply writes every record of ARGV (name, record pairs) into the hash
// KEYS[1] whose stored record differs, and returns the status of each (0
// created, 1 updated, 2 unchanged) followed by the stored names the
// catalog lacks. One script, so the apply is all or nothing to a reader.
var apply = redis.NewScript(`
local out = {}
local given = {}
for i = 1, #ARGV, 2 do
  local name, rec = ARGV[i], ARGV[i+1]
  given[name] = true
  local cur = redis.call('HGET', KEYS[1], name)
  if not cur then
    redis.call('HSET', KEYS[1], name, rec)
    out[#out+1] = 0
  elseif cur ~= rec then
    redis.call('HSET', KEYS[1], name, rec)
    out[#out+1] = 1
  else
    out[#out+1] = 2
  end
end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not given[name] then out[#out+1] = name end
end
return out
`)

// swap sets field ARGV[1] of hash KEYS[1] to ARGV[3] only if it still holds
// ARGV[2]: 1 if set, 0 if someone changed it meanwhile, -1 if it is gone.
var swap = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// Store is the mappings of a catalog in Redis, shared by every replica
// using the same Redis and Prefix.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

// New returns a Store on rdb (standalone or Cluster). It fails with
// *setting.Error values if cfg is invalid.
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Store{rdb: rdb, cfg: cfg}, nil
}

// Apply stores every mapping of c and returns what changed for each, then
// the stored mappings c lacks (NotInFile), each group sorted by name. c is
// a decoded, normalised catalog (catalog.Decode); its destinations are not
// stored.
func (s *Store) Apply(ctx context.Context, c *catalog.Catalog) ([]Result, error) {
	args := make([]any, 0, 2*len(c.Mappings))
	for _, m := range c.Mappings {
		args = append(args, m.Name, encode(m))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := apply.Run(ctx, s.rdb, []string{s.cfg.mappingsKey()}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("catalogstore: apply: %w", err)
	}
	if len(res) < len(c.Mappings) {
		return nil, fmt.Errorf("catalogstore: apply: %d results for %d mappings", len(res), len(c.Mappings))
	}
	out := make([]Result, 0, len(res))
	for i, m := range c.Mappings {
		code, ok := res[i].(int64)
		if !ok || code < 0 || code > 2 {
			return nil, fmt.Errorf("catalogstore: apply: status %v of %q: want 0, 1 or 2", res[i], m.Name)
		}
		out = append(out, Result{Name: m.Name, Change: [...]Change{Created, Updated, Unchanged}[code]})
	}
	var extra []string
	for _, v := range res[len(c.Mappings):] {
		name, _ := v.(string)
		extra = append(extra, name)
	}
	slices.Sort(extra)
	for _, name := range extra {
		out = append(out, Result{Name: name, Change: NotInFile})
	}
	return out, nil
}

// List returns every stored mapping, sorted by name. A record that does
// not decode fails the whole list with a *CorruptError naming it: a partial
// list would look like a deleted mapping.
func (s *Store) List(ctx context.Context) ([]catalog.Mapping, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.cfg.mappingsKey()
	all, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("catalogstore: list: %w", err)
	}
	out := make([]catalog.Mapping, 0, len(all))
	for name, data := range all {
		m, err := decode(key, name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b catalog.Mapping) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the mapping called name, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (catalog.Mapping, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	m, _, err := s.get(ctx, name)
	return m, err
}

func (s *Store) get(ctx context.Context, name string) (catalog.Mapping, string, error) {
	key := s.cfg.mappingsKey()
	data, err := s.rdb.HGet(ctx, key, name).Result()
	if errors.Is(err, redis.Nil) {
		return catalog.Mapping{}, "", fmt.Errorf("catalogstore: mapping %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return catalog.Mapping{}, "", fmt.Errorf("catalogstore: get %q: %w", name, err)
	}
	m, err := decode(key, name, data)
	return m, data, err
}

// Pause disables the mapping called name; see SetEnabled.
func (s *Store) Pause(ctx context.Context, name string) (Change, error) {
	return s.SetEnabled(ctx, name, false)
}

// Resume enables the mapping called name; see SetEnabled.
func (s *Store) Resume(ctx context.Context, name string) (Change, error) {
	return s.SetEnabled(ctx, name, true)
}

// SetEnabled sets the enabled flag of the mapping called name and nothing
// else: Updated, or Unchanged if it already had that flag. A later Apply of
// a file saying otherwise sets it back: the file is the declaration.
func (s *Store) SetEnabled(ctx context.Context, name string, enabled bool) (Change, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	for {
		m, old, err := s.get(ctx, name)
		if err != nil {
			return "", err
		}
		if m.Enabled == enabled {
			return Unchanged, nil
		}
		m.Enabled = enabled
		n, err := swap.Run(ctx, s.rdb, []string{s.cfg.mappingsKey()}, name, old, encode(m)).Int()
		switch {
		case err != nil:
			return "", fmt.Errorf("catalogstore: set enabled of %q: %w", name, err)
		case n == 1:
			return Updated, nil
		case n < 0:
			return "", fmt.Errorf("catalogstore: mapping %q: %w", name, ErrNotFound)
		}
		// Changed by someone else since we read it: read it again, so
		// their change is kept and only the flag is ours.
	}
}

// Delete removes the mapping called name from the store, or returns an
// error wrapping ErrNotFound. Its segment's members stay where they are:
// removing them (--purge) goes through the event path and is not done yet.
func (s *Store) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	n, err := s.rdb.HDel(ctx, s.cfg.mappingsKey(), name).Result()
	if err != nil {
		return fmt.Errorf("catalogstore: delete %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("catalogstore: mapping %q: %w", name, ErrNotFound)
	}
	return nil
}
