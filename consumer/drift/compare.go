package drift

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/schema"
)

// Segment is the comparison of one segment generation of one destination.
type Segment struct {
	Destination string `json:"destination"`
	Prefix      string `json:"prefix"`
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	// LogMembers are the members the log says it has; RedisMembers those
	// of its member index.
	LogMembers   int64 `json:"log_members"`
	RedisMembers int64 `json:"redis_members"`
	// Missing are members of the log absent from the member index or from
	// their include set (SDKs do not see them); Extra, members of the
	// index the log does not have.
	Missing int64 `json:"missing"`
	Extra   int64 `json:"extra"`
	// NotInLog counts the extra members of which the log holds no event
	// at all (rather than a removal): on an incomplete log (LogStats),
	// events retention removed may have added them.
	NotInLog int64 `json:"extra_not_in_log"`
	// OtherGeneration counts members of the index with no event of this
	// generation in the log while their key has events in another:
	// compaction keeps one event per membership key across generations
	// (README: Generations), so the log cannot tell; not counted as drift,
	// and kept by Rebuild.
	OtherGeneration int64 `json:"other_generation"`
	// Changing counts the memberships that differ but have events after
	// the group's committed offsets (Config.Group): a running consumer
	// was applying them while Redis was read; not counted as drift.
	Changing        int64    `json:"changing"`
	MissingExamples []string `json:"missing_examples,omitempty"`
	ExtraExamples   []string `json:"extra_examples,omitempty"`
}

// Drifted reports whether Redis and the log disagree on the segment.
func (s Segment) Drifted() bool { return s.Missing > 0 || s.Extra > 0 }

// Report is the outcome of a comparison.
type Report struct {
	Topic string `json:"topic"`
	// Group is the consumer group whose committed offsets the log was
	// read up to; empty: to the end.
	Group    string    `json:"group,omitempty"`
	Log      LogStats  `json:"log"`
	Segments []Segment `json:"segments"`
	// Drifted counts the segments that drifted.
	Drifted int `json:"drifted_segments"`
}

// fixer is told each difference found, for Rebuild: a change that makes
// Redis agree with the log. Extra members with no event in the log have
// ev nil.
type fixer func(d int, ref, key string, add bool, ev *logEvent) error

// compare reads what the destinations hold, sorts it, and merges it with
// the log's sorted events, calling fix (when set) with each difference.
func compare(ctx context.Context, kf *kafkax.Factory, cfg Config, lf *logFile, dir string, fix fixer) (Report, error) {
	redisPath := filepath.Join(dir, "redis.keys")
	if err := readRedis(ctx, cfg, lf, redisPath); err != nil {
		return Report{}, err
	}
	var changing map[string]bool
	if lf.toGroup {
		var err error
		if changing, err = readChanging(ctx, kf, cfg, lf); err != nil {
			return Report{}, err
		}
	}
	cfg.Progress("comparing")
	lr, err := snapshot.OpenKeyFile(lf.path)
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = lr.Close() }() // read-only
	rr, err := snapshot.OpenKeyFile(redisPath)
	if err != nil {
		return Report{}, err
	}
	defer func() { _ = rr.Close() }() // read-only
	m := &merger{cfg: cfg, ctx: ctx, fix: fix, segs: map[segID]*Segment{}, logs: lr, redis: rr, changing: changing}
	if err := m.run(); err != nil {
		return Report{}, err
	}
	rep := Report{Topic: cfg.Topic, Log: lf.stats}
	if lf.toGroup {
		rep.Group = cfg.Group
	}
	// Segments the log or the index names but where neither side has a
	// member are listed too (all zero): the comparison covered them.
	for d, refs := range lf.refs {
		for ref := range refs {
			m.segment(d, ref)
		}
	}
	for _, s := range m.segs {
		slices.Sort(s.MissingExamples)
		slices.Sort(s.ExtraExamples)
		rep.Segments = append(rep.Segments, *s)
		if s.Drifted() {
			rep.Drifted++
		}
	}
	slices.SortFunc(rep.Segments, func(a, b Segment) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Generation, b.Generation))
	})
	return rep, nil
}

// readRedis sorts the member index of every segment of every destination
// (those of its segments index and those the log names) into path.
func readRedis(ctx context.Context, cfg Config, lf *logFile, path string) error {
	sorter, err := snapshot.NewSorter(snapshot.SortOptions{ChunkBytes: cfg.SortChunkBytes, TempDir: filepath.Dir(path)})
	if err != nil {
		return err
	}
	defer func() { _ = sorter.Close() }() // idempotent; Finish closes it on success
	var rec []byte
	for d, dest := range cfg.Destinations {
		cfg.Progress(fmt.Sprintf("reading the segments of %s (prefix %s)", dest.Name, dest.Prefix))
		refs := map[string]bool{}
		for ref := range lf.refs[d] {
			refs[ref] = true
		}
		if err := segmentstore.Segments(ctx, dest.Client, dest.Prefix, func(ref string) error {
			refs[ref] = true
			return nil
		}); err != nil {
			return err
		}
		for _, ref := range slices.Sorted(maps.Keys(refs)) {
			lf.refs[d][ref] = true // listed in the report even when empty on both sides
			if err := segmentstore.Members(ctx, dest.Client, dest.Prefix, ref, func(key string) error {
				rec = appendIdentity(rec[:0], d, ref, key)
				return sorter.Add(string(rec))
			}); err != nil {
				return err
			}
		}
	}
	_, err = sorter.Finish(ctx, path)
	return err
}

type segID struct {
	dest int
	ref  string
}

// merger walks the two sorted files in step.
type merger struct {
	cfg   Config
	ctx   context.Context
	fix   fixer
	segs  map[segID]*Segment
	logs  *snapshot.KeyReader
	redis *snapshot.KeyReader

	// The log's current membership: its identity and latest event.
	logID  []byte
	logIdn identity
	logEv  logEvent
	logOK  bool
	// The next record of the log, read ahead to find a membership's last.
	peek   []byte
	peeked bool
	redID  []byte
	redOK  bool

	// The generations of one membership key seen so far.
	group    []entry
	groupKey []byte

	// Members both sides have, waiting for the check of their include
	// sets, per segment.
	pending map[segID]*pendingBatch
	// changing are the identities of memberships with events after the
	// log's read (readChanging).
	changing map[string]bool
	idBuf    []byte
}

// entry is one membership as both sides have it: ev is its latest event
// in the log (nil if none), inRedis whether the member index has it.
type entry struct {
	id      identity
	ev      *logEvent
	inRedis bool
}

type pendingBatch struct {
	keys []string
	evs  []logEvent
}

// includeBatch is how many members' include sets are read at once.
const includeBatch = 1000

func (m *merger) run() error {
	m.pending = map[segID]*pendingBatch{}
	if err := m.nextLog(); err != nil {
		return err
	}
	if err := m.nextRedis(); err != nil {
		return err
	}
	for m.logOK || m.redOK {
		if err := m.ctx.Err(); err != nil {
			return err
		}
		var c int
		switch {
		case !m.redOK:
			c = -1
		case !m.logOK:
			c = 1
		default:
			c = bytes.Compare(m.logID, m.redID)
		}
		var e entry
		var enc []byte
		switch {
		case c < 0: // only the log
			ev := m.logEv
			e, enc = entry{id: m.logIdn, ev: &ev}, m.logID
		case c > 0: // only Redis
			id, _, _, err := parseIdentity(m.redID)
			if err != nil {
				return err
			}
			e, enc = entry{id: id, inRedis: true}, m.redID
		default:
			ev := m.logEv
			e, enc = entry{id: m.logIdn, ev: &ev, inRedis: true}, m.logID
		}
		if err := m.add(e, enc[:len(enc)-4]); err != nil {
			return err
		}
		if c <= 0 {
			if err := m.nextLog(); err != nil {
				return err
			}
		}
		if c >= 0 {
			if err := m.nextRedis(); err != nil {
				return err
			}
		}
	}
	if err := m.endGroup(); err != nil {
		return err
	}
	for _, sid := range slices.SortedFunc(maps.Keys(m.pending), func(a, b segID) int {
		return cmp.Or(cmp.Compare(a.dest, b.dest), cmp.Compare(a.ref, b.ref))
	}) {
		if err := m.flush(sid); err != nil {
			return err
		}
	}
	return nil
}

// add collects e into the group of its membership key (key: the key's
// encoding), classifying the previous group when e starts another.
func (m *merger) add(e entry, key []byte) error {
	if len(m.group) > 0 && !bytes.Equal(key, m.groupKey) {
		if err := m.endGroup(); err != nil {
			return err
		}
	}
	m.groupKey = append(m.groupKey[:0], key...)
	m.group = append(m.group, e)
	return nil
}

// endGroup classifies the generations of one membership key. A member of
// the index with no event of its generation in the log, while the log has
// an event of its key in another generation, may have lost its event to
// compaction, which keeps one event per message key across generations
// (README: Generations): it is counted apart, not as drift, and kept.
func (m *merger) endGroup() error {
	logged := slices.ContainsFunc(m.group, func(e entry) bool { return e.ev != nil })
	for _, e := range m.group {
		if err := m.member(e, logged && e.ev == nil); err != nil {
			return err
		}
	}
	m.group = m.group[:0]
	return nil
}

// member classifies one membership; otherGeneration says that only
// another generation of its key has events in the log.
func (m *merger) member(e entry, otherGeneration bool) error {
	ref := e.id.ref()
	seg := m.segment(e.id.dest, ref)
	inLog := e.ev != nil && e.ev.op == schema.OpAdd
	if inLog {
		seg.LogMembers++
	}
	if e.inRedis {
		seg.RedisMembers++
	}
	switch {
	case inLog && e.inRedis:
		sid := segID{e.id.dest, ref}
		b := m.pending[sid]
		if b == nil {
			b = &pendingBatch{}
			m.pending[sid] = b
		}
		b.keys, b.evs = append(b.keys, e.id.key), append(b.evs, *e.ev)
		if len(b.keys) >= includeBatch {
			return m.flush(sid)
		}
	case inLog:
		return m.missing(seg, e.id.dest, ref, e.id.key, e.ev)
	case e.inRedis && otherGeneration:
		seg.OtherGeneration++
	case e.inRedis && m.isChanging(e.id.dest, ref, e.id.key):
		seg.Changing++
	case e.inRedis:
		seg.Extra++
		if e.ev == nil {
			seg.NotInLog++
		}
		if len(seg.ExtraExamples) < m.cfg.Examples {
			seg.ExtraExamples = append(seg.ExtraExamples, e.id.key)
		}
		if m.fix != nil {
			return m.fix(e.id.dest, ref, e.id.key, false, e.ev)
		}
	}
	return nil
}

// isChanging reports whether the membership has events after the log's
// read: Redis may hold either side of them.
func (m *merger) isChanging(d int, ref, key string) bool {
	if len(m.changing) == 0 {
		return false
	}
	m.idBuf = appendIdentity(m.idBuf[:0], d, ref, key)
	return m.changing[string(m.idBuf)]
}

func (m *merger) missing(seg *Segment, d int, ref, key string, ev *logEvent) error {
	if m.isChanging(d, ref, key) {
		seg.Changing++
		return nil
	}
	seg.Missing++
	if len(seg.MissingExamples) < m.cfg.Examples {
		seg.MissingExamples = append(seg.MissingExamples, key)
	}
	if m.fix != nil {
		return m.fix(d, ref, key, true, ev)
	}
	return nil
}

// flush checks the include sets of the pending members of sid.
func (m *merger) flush(sid segID) error {
	b := m.pending[sid]
	if b == nil || len(b.keys) == 0 {
		return nil
	}
	dest := m.cfg.Destinations[sid.dest]
	in, err := segmentstore.Included(m.ctx, dest.Client, dest.Prefix, sid.ref, b.keys)
	if err != nil {
		return err
	}
	seg := m.segment(sid.dest, sid.ref)
	for i, ok := range in {
		if !ok {
			if err := m.missing(seg, sid.dest, sid.ref, b.keys[i], &b.evs[i]); err != nil {
				return err
			}
		}
	}
	b.keys, b.evs = b.keys[:0], b.evs[:0]
	return nil
}

func (m *merger) segment(d int, ref string) *Segment {
	id := segID{d, ref}
	if s, ok := m.segs[id]; ok {
		return s
	}
	name, gen := splitRef(ref)
	dest := m.cfg.Destinations[d]
	s := &Segment{Destination: dest.Name, Prefix: dest.Prefix, Segment: name, Generation: gen}
	m.segs[id] = s
	return s
}

// nextLog moves to the next membership of the log and its latest event.
func (m *merger) nextLog() error {
	var rec []byte
	if m.peeked {
		rec, m.peeked = m.peek, false
	} else {
		k, err := m.logs.Next()
		if errors.Is(err, io.EOF) {
			m.logOK = false
			return nil
		}
		if err != nil {
			return err
		}
		rec = k
	}
	id, enc, rest, err := parseIdentity(rec)
	if err != nil {
		return err
	}
	m.logID, m.logIdn = append(m.logID[:0], enc...), id
	ev, err := parseLogRest(rest)
	if err != nil {
		return err
	}
	// Later records of the same membership are later events: keep the last.
	for {
		k, err := m.logs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		_, enc, rest, err := parseIdentity(k)
		if err != nil {
			return err
		}
		if !bytes.Equal(enc, m.logID) {
			m.peek, m.peeked = append(m.peek[:0], k...), true
			break
		}
		if ev, err = parseLogRest(rest); err != nil {
			return err
		}
	}
	m.logEv, m.logOK = ev, true
	return nil
}

func (m *merger) nextRedis() error {
	k, err := m.redis.Next()
	if errors.Is(err, io.EOF) {
		m.redOK = false
		return nil
	}
	if err != nil {
		return err
	}
	m.redID, m.redOK = append(m.redID[:0], k...), true
	return nil
}
