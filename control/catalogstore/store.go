package catalogstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// ErrNotFound is wrapped by the error for a mapping or a destination the
// store does not hold; the error's message names which.
var ErrNotFound = errors.New("not found")

// Change is what Apply did, or would report, for one entry.
type Change string

// Changes.
const (
	Created   Change = "created"
	Updated   Change = "updated"
	Unchanged Change = "unchanged"
	// NotInFile is a stored entry the applied catalog does not have: it is
	// kept, and reported so the user can delete it if that was meant.
	NotInFile Change = "not-in-file"
)

// Kind is what an entry of the catalog is.
type Kind string

// Kinds.
const (
	KindDestination      Kind = kindDestination
	KindMapping          Kind = kindMapping
	KindAmplitudeProject Kind = kindProject
)

// Result is one entry's Change.
type Result struct {
	Kind   Kind
	Name   string
	Change Change
}

// apply stores a catalog. KEYS: the destinations hash, the mappings hash,
// the version counter, the Amplitude projects hash. ARGV: the number of
// destinations, of projects and of mappings; each destination's name and
// record; each project's name and record; each mapping's name, record,
// Amplitude project ("" for none), number of destinations and their names.
//
// It first checks that every destination a mapping names is applied or
// stored, and if not returns {"missing", mapping, destination, ...} having
// written nothing; then the same for projects, {"missing_project",
// mapping, project, ...}. Otherwise it writes every record that differs
// from the stored one, increments the version if it wrote any, and returns
// {"ok", version, the destinations' statuses (0 created, 1 updated, 2
// unchanged), the number of stored destinations not applied and their
// names, the same for projects, the same for mappings}. One script, so an
// apply is all or nothing to a reader.
var apply = redis.NewScript(`
local nd, np, nm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 4
local function entries(n)
  local list, given = {}, {}
  for _ = 1, n do
    list[#list+1] = {ARGV[i], ARGV[i+1]}
    given[ARGV[i]] = true
    i = i + 2
  end
  return list, given
end
local dests, destGiven = entries(nd)
local projects, projectGiven = entries(np)
local maps, mapGiven, missing, missingProject = {}, {}, {}, {}
for _ = 1, nm do
  local name, project, k = ARGV[i], ARGV[i+2], tonumber(ARGV[i+3])
  for j = 1, k do
    local d = ARGV[i+3+j]
    if not destGiven[d] and redis.call('HEXISTS', KEYS[1], d) == 0 then
      missing[#missing+1] = name
      missing[#missing+1] = d
    end
  end
  if project ~= '' and not projectGiven[project] and redis.call('HEXISTS', KEYS[4], project) == 0 then
    missingProject[#missingProject+1] = name
    missingProject[#missingProject+1] = project
  end
  maps[#maps+1] = {name, ARGV[i+1]}
  mapGiven[name] = true
  i = i + 4 + k
end
if #missing > 0 then
  table.insert(missing, 1, 'missing')
  return missing
end
if #missingProject > 0 then
  table.insert(missingProject, 1, 'missing_project')
  return missingProject
end
local out, changed = {'ok', 0}, false
local function put(key, entries, given)
  for _, e in ipairs(entries) do
    local cur = redis.call('HGET', key, e[1])
    if not cur then
      redis.call('HSET', key, e[1], e[2])
      out[#out+1] = 0
      changed = true
    elseif cur ~= e[2] then
      redis.call('HSET', key, e[1], e[2])
      out[#out+1] = 1
      changed = true
    else
      out[#out+1] = 2
    end
  end
  local extra = {}
  for _, name in ipairs(redis.call('HKEYS', key)) do
    if not given[name] then extra[#extra+1] = name end
  end
  out[#out+1] = #extra
  for _, name in ipairs(extra) do out[#out+1] = name end
end
put(KEYS[1], dests, destGiven)
put(KEYS[4], projects, projectGiven)
put(KEYS[2], maps, mapGiven)
if changed then
  out[2] = redis.call('INCR', KEYS[3])
else
  out[2] = tonumber(redis.call('GET', KEYS[3]) or '0')
end
return out
`)

// swap sets field ARGV[1] of hash KEYS[1] to ARGV[3] only if it still holds
// ARGV[2], and then increments the version KEYS[2]: 1 if set, 0 if someone
// changed it meanwhile, -1 if it is gone.
var swap = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('INCR', KEYS[2])
return 1
`)

// remove deletes field ARGV[1] of hash KEYS[1] and, if it was there,
// increments the version KEYS[2]: 1 if deleted, 0 if it was not there.
var remove = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1
`)

// Store is the catalog (destinations and mappings) in Redis, shared by
// every replica using the same Redis and Prefix.
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

// MissingDestinationError refuses an Apply, which wrote nothing: mappings
// name destinations that are neither in the applied catalog nor stored.
type MissingDestinationError struct {
	// Missing maps each such mapping's name to the destinations it names
	// that do not exist, in the mapping's order.
	Missing map[string][]string
}

func (e *MissingDestinationError) Error() string {
	var b strings.Builder
	b.WriteString("catalogstore: apply refused, nothing stored:")
	for i, m := range slices.Sorted(maps.Keys(e.Missing)) {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " mapping %q names destination %s, neither applied nor stored", m, quoteAll(e.Missing[m]))
	}
	return b.String()
}

// MissingProjectError refuses an Apply, which wrote nothing: Amplitude
// mappings name projects that are neither in the applied catalog nor
// stored.
type MissingProjectError struct {
	// Missing maps each such mapping's name to the project it names.
	Missing map[string]string
}

func (e *MissingProjectError) Error() string {
	var b strings.Builder
	b.WriteString("catalogstore: apply refused, nothing stored:")
	for i, m := range slices.Sorted(maps.Keys(e.Missing)) {
		if i > 0 {
			b.WriteByte(';')
		}
		fmt.Fprintf(&b, " mapping %q names amplitude project %q, neither applied nor stored", m, e.Missing[m])
	}
	return b.String()
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// Apply stores every destination, Amplitude project and mapping of c and
// returns what changed for each: the destinations, then the stored
// destinations c lacks (NotInFile), then the same for the projects and for
// the mappings, each group sorted by name.
// c is a decoded, normalised catalog (catalog.Decode).
//
// A mapping naming a destination that is neither in c nor stored refuses
// the whole apply with a *MissingDestinationError, and one naming a
// project neither in c nor stored with a *MissingProjectError: nothing is
// written. If
// anything changed, the catalog's Version grows by one.
func (s *Store) Apply(ctx context.Context, c *catalog.Catalog) ([]Result, error) {
	if err := s.checkSharing(ctx, c); err != nil {
		return nil, err
	}
	args := []any{len(c.Destinations), len(c.AmplitudeProjects), len(c.Mappings)}
	for _, d := range c.Destinations {
		args = append(args, d.Name, encodeDestination(d))
	}
	for _, p := range c.AmplitudeProjects {
		args = append(args, p.Name, encodeProject(p))
	}
	for _, m := range c.Mappings {
		args = append(args, m.Name, encode(m), m.Source.Project, len(m.Destinations))
		for _, d := range m.Destinations {
			args = append(args, d)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	keys := []string{s.cfg.destinationsKey(), s.cfg.mappingsKey(), s.cfg.versionKey(), s.cfg.projectsKey()}
	res, err := apply.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("catalogstore: apply: %w", err)
	}
	r := reply{res: res}
	switch r.text() {
	case "missing":
		e := &MissingDestinationError{Missing: map[string][]string{}}
		for !r.done() {
			m, d := r.text(), r.text()
			e.Missing[m] = append(e.Missing[m], d)
		}
		if r.err != nil {
			return nil, r.err
		}
		return nil, e
	case "missing_project":
		e := &MissingProjectError{Missing: map[string]string{}}
		for !r.done() {
			m, p := r.text(), r.text()
			e.Missing[m] = p
		}
		if r.err != nil {
			return nil, r.err
		}
		return nil, e
	case "ok":
	default:
		return nil, fmt.Errorf("catalogstore: apply: reply %v: want ok or missing", res)
	}
	r.int() // the version
	out := make([]Result, 0, len(c.Destinations)+len(c.Mappings))
	for _, d := range c.Destinations {
		out = append(out, Result{Kind: KindDestination, Name: d.Name, Change: r.change()})
	}
	out = append(out, r.notInFile(KindDestination)...)
	for _, p := range c.AmplitudeProjects {
		out = append(out, Result{Kind: KindAmplitudeProject, Name: p.Name, Change: r.change()})
	}
	out = append(out, r.notInFile(KindAmplitudeProject)...)
	for _, m := range c.Mappings {
		out = append(out, Result{Kind: KindMapping, Name: m.Name, Change: r.change()})
	}
	out = append(out, r.notInFile(KindMapping)...)
	if r.err == nil && !r.done() {
		r.err = fmt.Errorf("catalogstore: apply: reply %v: %d values left over", res, len(r.res))
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// reply reads apply's reply value by value; the first value of an
// unexpected type stops it with err set.
type reply struct {
	res []any
	err error
}

func (r *reply) done() bool { return r.err != nil || len(r.res) == 0 }

// take reads the next value of r, of type T, described by want in errors.
func take[T any](r *reply, want string) T {
	var zero T
	if r.err != nil {
		return zero
	}
	if len(r.res) == 0 {
		r.err = fmt.Errorf("catalogstore: apply: reply too short, want %s", want)
		return zero
	}
	v, ok := r.res[0].(T)
	if !ok {
		r.err = fmt.Errorf("catalogstore: apply: reply value %v: want %s", r.res[0], want)
	}
	r.res = r.res[1:]
	return v
}

func (r *reply) text() string { return take[string](r, "a name") }
func (r *reply) int() int64   { return take[int64](r, "an integer") }

func (r *reply) change() Change {
	n := r.int()
	if n < 0 || n > 2 {
		if r.err == nil {
			r.err = fmt.Errorf("catalogstore: apply: status %d: want 0, 1 or 2", n)
		}
		return ""
	}
	return [...]Change{Created, Updated, Unchanged}[n]
}

// notInFile reads a count and as many names, sorted into NotInFile results.
func (r *reply) notInFile(kind Kind) []Result {
	n := r.int()
	var names []string
	for range n {
		if r.err != nil {
			break
		}
		names = append(names, r.text())
	}
	slices.Sort(names)
	out := make([]Result, 0, len(names))
	for _, name := range names {
		out = append(out, Result{Kind: kind, Name: name, Change: NotInFile})
	}
	return out
}

// Version is the catalog's version: 0 for a store never written, then one
// more for every Apply, SetEnabled, Delete or DeleteDestination that
// changed something. It is one small key, so a long-running reader can
// poll it cheaply and read the Catalog again only when it grew; reading
// Version before Catalog, a change made between the two shows as a newer
// version at the next poll.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.cfg.versionKey()
	v, err := s.rdb.Get(ctx, key).Uint64()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("catalogstore: version %s: %w", key, err)
	}
	return v, nil
}

// List returns every stored mapping, sorted by name. A record that does
// not decode fails the whole list with a *CorruptError naming it: a partial
// list would look like a deleted mapping.
func (s *Store) List(ctx context.Context) ([]catalog.Mapping, error) {
	return list(ctx, s, s.cfg.mappingsKey(), "list", decode, mappingName)
}

// Destinations returns every stored destination, sorted by name; like
// List, one record that does not decode fails them all.
func (s *Store) Destinations(ctx context.Context) ([]catalog.Destination, error) {
	return list(ctx, s, s.cfg.destinationsKey(), "list destinations", decodeDestination, destinationName)
}

// list reads and decodes every record of the hash key; op names the
// operation in errors.
func list[T any](ctx context.Context, s *Store, key, op string, decode func(key, field, data string) (T, error), name func(T) string) ([]T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	all, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("catalogstore: %s: %w", op, err)
	}
	return decodeAll(key, all, decode, name)
}

func mappingName(m catalog.Mapping) string          { return m.Name }
func destinationName(d catalog.Destination) string  { return d.Name }
func projectName(p catalog.AmplitudeProject) string { return p.Name }

// AmplitudeProjects returns every stored Amplitude project, sorted by
// name; like List, one record that does not decode fails them all.
func (s *Store) AmplitudeProjects(ctx context.Context) ([]catalog.AmplitudeProject, error) {
	return list(ctx, s, s.cfg.projectsKey(), "list amplitude projects", decodeProject, projectName)
}

// AmplitudeProject returns the Amplitude project called name, or an error
// wrapping ErrNotFound.
func (s *Store) AmplitudeProject(ctx context.Context, name string) (catalog.AmplitudeProject, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.cfg.projectsKey()
	data, err := s.hget(ctx, key, "amplitude project", name)
	if err != nil {
		return catalog.AmplitudeProject{}, err
	}
	return decodeProject(key, name, data)
}

// Catalog returns every stored destination and mapping, read together in
// one transaction: never the mappings of one apply with the destinations
// of another.
func (s *Store) Catalog(ctx context.Context) (*catalog.Catalog, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	dkey, mkey, pkey := s.cfg.destinationsKey(), s.cfg.mappingsKey(), s.cfg.projectsKey()
	var dests, maps, projects *redis.MapStringStringCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		dests, maps, projects = p.HGetAll(ctx, dkey), p.HGetAll(ctx, mkey), p.HGetAll(ctx, pkey)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("catalogstore: read catalog: %w", err)
	}
	ds, err := decodeAll(dkey, dests.Val(), decodeDestination, destinationName)
	if err != nil {
		return nil, err
	}
	ms, err := decodeAll(mkey, maps.Val(), decode, mappingName)
	if err != nil {
		return nil, err
	}
	ps, err := decodeAll(pkey, projects.Val(), decodeProject, projectName)
	if err != nil {
		return nil, err
	}
	return &catalog.Catalog{Destinations: ds, Mappings: ms, AmplitudeProjects: ps}, nil
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
	data, err := s.hget(ctx, key, kindMapping, name)
	if err != nil {
		return catalog.Mapping{}, "", err
	}
	m, err := decode(key, name, data)
	return m, data, err
}

// hget reads field name of hash key, holding entries of kind.
func (s *Store) hget(ctx context.Context, key, kind, name string) (string, error) {
	data, err := s.rdb.HGet(ctx, key, name).Result()
	if errors.Is(err, redis.Nil) {
		return "", notFound(kind, name)
	}
	if err != nil {
		return "", fmt.Errorf("catalogstore: get %s %q: %w", kind, name, err)
	}
	return data, nil
}

func notFound(kind, name string) error {
	return fmt.Errorf("catalogstore: %s %q: %w", kind, name, ErrNotFound)
}

// Destination returns the destination called name, or an error wrapping
// ErrNotFound.
func (s *Store) Destination(ctx context.Context, name string) (catalog.Destination, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.cfg.destinationsKey()
	data, err := s.hget(ctx, key, kindDestination, name)
	if err != nil {
		return catalog.Destination{}, err
	}
	return decodeDestination(key, name, data)
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
// else: Updated (and the Version grows), or Unchanged if it already had
// that flag. A later Apply of a file saying otherwise sets it back: the
// file is the declaration.
func (s *Store) SetEnabled(ctx context.Context, name string, enabled bool) (Change, error) {
	return s.update(ctx, name, "set enabled", func(m *catalog.Mapping) error {
		m.Enabled = enabled
		return nil
	})
}

// update changes the stored mapping called name with change, which sees
// its current record: Updated (and the Version grows), or Unchanged if
// change left it as it was. An error from change is returned as is and
// nothing is written. A concurrent change by someone else is kept: the
// mapping is read again and change applied to it.
func (s *Store) update(ctx context.Context, name, what string, change func(*catalog.Mapping) error) (Change, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	for {
		m, old, err := s.get(ctx, name)
		if err != nil {
			return "", err
		}
		before := m.Hash()
		if err := change(&m); err != nil {
			return "", err
		}
		if m.Hash() == before {
			return Unchanged, nil
		}
		n, err := swap.Run(ctx, s.rdb, []string{s.cfg.mappingsKey(), s.cfg.versionKey()}, name, old, encode(m)).Int()
		switch {
		case err != nil:
			return "", fmt.Errorf("catalogstore: %s of %q: %w", what, name, err)
		case n == 1:
			return Updated, nil
		case n < 0:
			return "", notFound(kindMapping, name)
		}
		// Changed by someone else since we read it: read it again, so
		// their change is kept and only ours is added. The loop ends
		// with ctx's timeout at the latest.
	}
}

// Delete removes the mapping called name from the store, or returns an
// error wrapping ErrNotFound. Its segment's members stay where they are:
// removing them (--purge) goes through the event path and is not done yet.
func (s *Store) Delete(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	n, err := remove.Run(ctx, s.rdb, []string{s.cfg.mappingsKey(), s.cfg.versionKey()}, name).Int()
	if err != nil {
		return fmt.Errorf("catalogstore: delete %q: %w", name, err)
	}
	if n == 0 {
		return notFound(kindMapping, name)
	}
	return nil
}

// InUseError refuses to delete a destination that stored mappings name.
type InUseError struct {
	// Destination is the destination's name; Mappings the names of the
	// mappings naming it, sorted.
	Destination string
	Mappings    []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("catalogstore: destination %q is used by mapping %s: delete them or change their destinations first",
		e.Destination, quoteAll(e.Mappings))
}

// maxDeleteAttempts bounds DeleteDestination's retries when the catalog
// changes while it checks.
const maxDeleteAttempts = 16

// DeleteDestination removes the destination called name from the store,
// or returns an error wrapping ErrNotFound, or an *InUseError while a
// stored mapping names it: a mapping must never be left pointing at
// nothing. Every stored mapping is decoded for the check, so a corrupt
// one fails it (*CorruptError).
func (s *Store) DeleteDestination(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	dkey, mkey := s.cfg.destinationsKey(), s.cfg.mappingsKey()
	// checkErr is check's own error, already saying what failed.
	var checkErr error
	check := func(tx *redis.Tx) error {
		checkErr = s.checkUnused(ctx, tx, name)
		if checkErr == nil {
			// Applied only if neither hash changed since WATCH: a mapping
			// applied meanwhile is seen by the next attempt.
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HDel(ctx, dkey, name)
				p.HDel(ctx, s.cfg.tokensKey(), name) // its push token goes with it
				p.Incr(ctx, s.cfg.versionKey())
				return nil
			}); err != nil {
				checkErr = fmt.Errorf("catalogstore: delete destination %q: %w", name, err)
			}
		}
		return checkErr
	}
	for range maxDeleteAttempts {
		checkErr = nil
		err := s.rdb.Watch(ctx, check, dkey, mkey)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue // changed while checked: check again
		case err != nil && err != checkErr:
			return fmt.Errorf("catalogstore: delete destination %q: %w", name, err) // WATCH's own
		}
		return err
	}
	return fmt.Errorf("catalogstore: delete destination %q: the catalog changed during each of %d attempts", name, maxDeleteAttempts)
}

// checkUnused checks, in the transaction tx, that the destination called
// name is stored and that no stored mapping names it.
func (s *Store) checkUnused(ctx context.Context, tx *redis.Tx, name string) error {
	dkey, mkey := s.cfg.destinationsKey(), s.cfg.mappingsKey()
	found, err := tx.HExists(ctx, dkey, name).Result()
	if err != nil {
		return fmt.Errorf("catalogstore: delete destination %q: %w", name, err)
	}
	if !found {
		return notFound(kindDestination, name)
	}
	all, err := tx.HGetAll(ctx, mkey).Result()
	if err != nil {
		return fmt.Errorf("catalogstore: delete destination %q: %w", name, err)
	}
	ms, err := decodeAll(mkey, all, decode, mappingName)
	if err != nil {
		return err
	}
	var users []string
	for _, m := range ms {
		if slices.Contains(m.Destinations, name) {
			users = append(users, m.Name)
		}
	}
	if len(users) > 0 {
		return &InUseError{Destination: name, Mappings: users}
	}
	return nil
}

// SharingError is a destination of an applied catalog that would share an
// environment, or a Redis server and prefix, with a stored destination the
// catalog does not replace: the file alone cannot see that.
type SharingError struct {
	Destination, Stored string
	// What they share: "environment X" or "prefix P of Redis S".
	Shared string
}

func (e *SharingError) Error() string {
	return fmt.Sprintf("catalogstore: destination %q would share %s with the stored destination %q: give it its own, delete %q, or set fan_in: true on both to share a prefix deliberately",
		e.Destination, e.Shared, e.Stored, e.Stored)
}

// checkSharing refuses c if one of its destinations shares an environment,
// or (without fan_in on both) a Redis server and prefix, with a stored
// destination c does not redefine. The decoder checked c's destinations
// among themselves; this checks them against what earlier files stored.
// Two applies racing can both pass; the check is against the store as
// read before the write.
func (s *Store) checkSharing(ctx context.Context, c *catalog.Catalog) error {
	if len(c.Destinations) == 0 {
		return nil
	}
	stored, err := s.Destinations(ctx)
	if err != nil {
		return err
	}
	for _, o := range stored {
		if _, replaced := c.Destination(o.Name); replaced {
			continue
		}
		for _, d := range c.Destinations {
			if d.Environment == o.Environment {
				return &SharingError{Destination: d.Name, Stored: o.Name, Shared: fmt.Sprintf("environment %q", d.Environment)}
			}
			if d.FanIn && o.FanIn {
				continue
			}
			for _, w := range d.Storage() {
				if slices.Contains(o.Storage(), w) {
					srv, prefix, _ := strings.Cut(w, " ")
					return &SharingError{Destination: d.Name, Stored: o.Name, Shared: fmt.Sprintf("prefix %q of Redis %s", prefix, srv)}
				}
			}
		}
	}
	return nil
}
