package segmentstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// WriteClient is what the Writer needs from a Redis client. go-redis splits
// a Cluster client's pipeline by slot and runs the parts on their masters
// concurrently, so one pipeline serves both deployments; *redis.Client and
// *redis.ClusterClient satisfy it.
type WriteClient interface {
	Pipeline() redis.Pipeliner
}

// Change is one membership change to write: the context key joins (or, with
// Remove, leaves) generation Generation of Segment in the store under
// Prefix. Seq and Run identify the event that asked for it; ContextKind is
// recorded in the segment's metadata.
type Change struct {
	Prefix      string
	Segment     string
	Generation  int
	ContextKind string
	ContextKey  string
	Remove      bool
	Seq         uint64
	Run         string
}

// Failure is a change that Redis rejected permanently: its keys hold the
// wrong type. Index is its position in the slice given to Apply; the rest of
// the batch is applied.
type Failure struct {
	Index  int
	Reason string // ReasonWrongType
	Err    error
}

// ReasonWrongType is the Reason of a Failure whose keys hold the wrong type.
// The consumer writes it as the dead-letter reason, so it is part of the
// dead-letter topic's contract.
const ReasonWrongType = "redis_wrongtype"

// metaScript moves a segment's last_seq and last_run forward to the
// batch's highest sequence number and never back, so that a replay of old
// events (a new group, a reset offset, a redelivery, or a partition behind
// the others) never makes the segment look older than it is; last_applied
// (and context_kind) it sets on every batch that applied events of the
// segment, so that it says when the consumer last wrote the segment even
// below a last_seq that an event from another writer pushed far ahead. It
// runs once per segment per batch, not per event: Lua costs several plain
// commands. Sequence numbers are compared as decimal strings (longer is
// larger) because Lua numbers are doubles and lose uint64 precision.
//
// It runs after the segment's member-index writes, in the same slot (the
// keys share the {ref} hash tag), and refuses to move (WRONGTYPE, before
// writing anything) when one of its keys holds another type than it wants:
// the metadata a hash, the member index (KEYS[2]) the form the batch wrote
// (ARGV[5]: hash, or set for a segment written before since-tracking). Then
// another writer replaced a key during the batch, and the batch's changes
// of the segment are undone, so the metadata must not claim them.
var metaScript = redis.NewScript(`
local want = {'hash', ARGV[5]}
for k = 1, 2 do
  local t = redis.call('TYPE', KEYS[k]).ok
  if t ~= want[k] and t ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[k] .. ' holds a ' .. t .. ', not a ' .. want[k])
  end
end
local cur = redis.call('HGET', KEYS[1], 'last_seq')
local new = ARGV[1]
if cur and (#cur > #new or (#cur == #new and cur >= new)) then
  redis.call('HSET', KEYS[1], 'last_applied', ARGV[3], 'context_kind', ARGV[4])
  return 0
end
redis.call('HSET', KEYS[1], 'last_seq', new, 'last_run', ARGV[2], 'last_applied', ARGV[3], 'context_kind', ARGV[4])
return 1
`)

// Writer is the one writer of the layout: include sets, the member index
// (with each member's joining sequence number), the run index, per-segment
// metadata and synchronized_on. Every write it makes is idempotent, so a
// batch may be applied again after any failure (a crash before the
// consumer's commit, a retried pipeline, a replay of the whole topic) and
// Redis converges on the same content:
//
//   - membership is SADD/SREM of the include set and HSET/HSETNX/HDEL of
//     the member index, which do nothing when the member is already in (or
//     out of) the segment: the index is given a key's sequence number
//     outright (HSET) only when the include write says this add let the
//     member in, and otherwise only if it has none (HSETNX), so "since"
//     survives re-adds (republications, replays);
//   - last_seq and last_run only move forward by sequence number (see
//     Apply), so old events applied again never make a segment look older
//     than it is; last_applied is the time of the last batch.
//
// A change's effect is all or nothing (see Apply): a change Redis refuses
// leaves neither its include set nor the member index nor the metadata
// changed.
//
// Apply reuses the Writer's buffers between calls, so calls of Apply must
// not overlap: use one Writer per apply loop. SetSynchronizedOn shares no
// state with Apply and may run on another goroutine at the same time.
type Writer struct {
	rdb WriteClient
	now func() time.Time

	// Reused between batches: most of a batch's client cost is per event,
	// so the per-event state lives in arrays that a batch overwrites.
	keyBufs     [][]byte        // per hashing worker: the include keys it built
	keys        []string        // per change: its include key (sound segments only)
	fps         []uint64        // per change: its context key's fingerprint (see fingerprint)
	keyEnds     []int           // per change: where its key ends in its worker's buffer
	include     []*redis.IntCmd // per change: its include-set write, nil if not sent
	includeCmds []redis.IntCmd  // per change: the storage include points into
	failed      []error         // per change: why it failed, nil if applied
	segs        map[segKey]*segState
	order       []*segState   // the batch's segments, in the order of their first change
	pool        []*segState   // order's states and spare ones of earlier batches
	cmds        []redis.Cmder // the include writes, queued into the pipeline at once
	args        []any         // the arguments of the commands the Writer builds (see argv)
	// started is, per segment, the run whose start this Writer last
	// recorded in the run index and that start: a batch of the same run
	// from no lower a seq adds nothing, so most batches write no entry.
	started map[segKey]runStart
}

// NewWriter returns a Writer writing through rdb, which the caller owns and
// closes. now stamps the metadata's last_applied; nil means time.Now.
func NewWriter(rdb WriteClient, now func() time.Time) *Writer {
	if now == nil {
		now = time.Now
	}
	return &Writer{rdb: rdb, now: now}
}

type segKey struct {
	prefix, segment string
	generation      int
}

// runStart is a run and the lowest seq of it recorded.
type runStart struct {
	run string
	seq uint64
}

// segState is what one batch does to one segment.
type segState struct {
	key                               segKey
	ref, membersKey, metaKey, runsKey string
	refArg                            any    // ref, boxed once for the include writes
	indexKey                          string // the prefix's segments index (bigsegments.SegmentsKey)
	changes                           []int  // indexes into the batch
	bad                               error  // why none of its changes can be applied
	legacy                            bool   // the member index is a set (written before since-tracking)
	maxSeq                            uint64
	run, kind                         string
	runs                              map[string]uint64 // run → lowest seq of it in the batch
	// lastRun and lastFirst are the run of runs last looked up and its
	// lowest seq: the changes of a batch mostly share a run, and one that
	// does with no lower seq needs no map lookup. lastFirst 0: none yet.
	lastRun                          string
	lastFirst                        uint64
	starts                           []redis.Z       // the run-index entries to write
	runEntries                       []*redis.IntCmd // ZADDs of starts to the run index
	meta                             *redis.Cmd
	index                            *redis.IntCmd // SADD of ref to indexKey
	membersType, metaType, indexType *redis.StatusCmd
	runsType                         *redis.StatusCmd
	ops                              []memberOp       // per distinct context key of the batch's applicable changes
	opIndex                          map[uint64]int32 // context key's fingerprint → its index in ops
	opSpill                          map[string]int32 // context key → its index in ops, for a fingerprint two keys share
	fresh, gone                      []int32          // indexes in ops of the keys that joined, and that left
	member                           []memberCmd      // its member-index writes
}

// memberOp is what a batch does, in the end, to one context key in one
// segment's member index: only the last operation on a key matters, so one
// write per key, and the keys of a kind share variadic commands.
type memberOp struct {
	key  string
	kind opKind
	seq  uint64 // the joining seq to write (opFresh, opKeep)
}

type opKind uint8

const (
	// opFresh: an add of the batch let the key in (its include write
	// changed the set), so seq is its joining seq, whatever the index
	// holds (a leftover of a removal cut short): HSET, variadic.
	opFresh opKind = iota + 1
	// opKeep: the key was in already (its include write changed nothing):
	// an earlier add let it in, so an existing seq is kept (HSETNX), and a
	// missing one (an earlier attempt stopped between the include write
	// and this one) is filled in with this add's.
	opKeep
	// opRemove: the key leaves: HDEL, variadic, after an HMGET of the seqs
	// it removes (for an undo).
	opRemove
)

// memberCmd is a member-index write and what its undo needs.
type memberCmd struct {
	cmd    redis.Cmder
	kind   opKind
	fields []int32         // the context keys it writes (variadic HSET and HDEL), as indexes in segState.ops
	old    *redis.SliceCmd // before an HDEL: the seqs of fields
}

// maxFields bounds the fields of one variadic command: a command blocks
// Redis while it runs, so a batch's member index is written in slices.
const maxFields = 1000

// errWrongType is the error of a change refused because a key it writes
// holds another type, found by TYPE before anything was written. It reads
// as Redis' own WRONGTYPE reply (Classify: ClassEvent).
type errWrongType struct{ key, has, want string }

func (e *errWrongType) Error() string {
	return fmt.Sprintf("WRONGTYPE %s holds a %s, not a %s", e.key, e.has, e.want)
}

func (*errWrongType) RedisError() {}

// Apply runs one attempt at writing changes, applied in the order given,
// each all or nothing.
//
// Per change: SADD (SREM with Remove) of the segment ref in the context's
// include set. Per segment, for each context key's last change in the
// batch, the member index: the keys the batch let in (their SADD replied 1)
// in variadic HSETs of key → Seq, the keys that left in variadic HDELs
// (after an HMGET of the seqs they held, for an undo), and a key re-added
// while in (SADD replied 0) by HSETNX, which fills in an entry an attempt
// cut short did not write; SADD/SREM per key for an index still in the
// set form of older releases. So a first sync costs the index about one
// command per thousand members, not one per member. Per segment: one script that sets last_seq to
// the highest Seq applied, with its Run, only if that is higher than the
// stored last_seq, and last_applied to the time now in any case; a
// variadic ZADD to its run index of where each run of the batch starts,
// but those this Writer recorded already (so an entry is about one per
// run, not per batch); and
// an SADD of its ref to the prefix's segments index
// (bigsegments.SegmentsKey), in another slot than the metadata's, so not in
// the script. A run-index entry of changes refused later stays: it is true
// of the run whatever became of them.
//
// The include set and the segment's keys live in different Redis Cluster
// slots, so no one script or transaction can cover a change (and MULTI/EXEC
// would not roll back a WRONGTYPE anyway). Instead the writes go in an
// order where a refusal comes before anything it would leave half done,
// in three pipelines per batch (round trips, not commands, are what the
// extra safety costs):
//
//  1. TYPE of each segment's member index, run index and metadata: a
//     segment whose key holds another type fails all its changes, and
//     nothing of it is written;
//  2. the include-set writes: a change whose include set holds another type
//     (WRONGTYPE) fails, and has written nothing;
//  3. the member-index writes of the changes whose include write landed, and
//     per segment the metadata, moved to the highest Seq among them only.
//
// Only a key changing type between 1 and 3 (another writer racing the batch)
// can fail a write of 3; then every change of that segment fails, and the
// writes of them that landed are undone in a fourth pipeline, by the
// replies of their writes (1: it changed the key; a removal from a hash
// index is undone with the joining seq read just before it).
//
// It returns the changes Redis refused permanently (ClassEvent), or an
// error: ClassTransient errors mean the whole batch may be retried (it is
// idempotent); an error wrapping ErrFatal means retrying cannot help.
func (w *Writer) Apply(ctx context.Context, changes []Change) ([]Failure, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	w.group(changes)
	if err := w.checkSegments(ctx); err != nil {
		return nil, err
	}
	if err := w.writeIncludes(ctx, changes); err != nil {
		return nil, err
	}
	undo, err := w.writeMembers(ctx, changes)
	if err != nil {
		return nil, err
	}
	if len(undo) > 0 {
		if err := w.undo(ctx, changes, undo); err != nil {
			return nil, err
		}
	}
	w.recordStarts()
	var failures []Failure
	for i, err := range w.failed {
		if err != nil {
			failures = append(failures, Failure{Index: i, Reason: ReasonWrongType, Err: err})
		}
	}
	return failures, nil
}

// group resets the per-batch state and sorts changes by segment.
func (w *Writer) group(changes []Change) {
	if w.segs == nil {
		w.segs = map[segKey]*segState{}
	}
	clear(w.segs)
	w.order = w.order[:0]
	w.args = w.args[:0]
	w.include = resize(w.include, len(changes))
	w.failed = resize(w.failed, len(changes))
	var s *segState
	for i := range changes {
		ch := &changes[i]
		k := segKey{ch.Prefix, ch.Segment, ch.Generation}
		if s != nil && s.key == k {
			s.changes = append(s.changes, i) // a run of one segment's changes: no map lookup
			continue
		}
		s = w.segs[k]
		if s == nil {
			s = w.addSeg(k)
		}
		s.changes = append(s.changes, i)
	}
}

// addSeg adds segment k to the batch, with the state of a segment of an
// earlier batch made new: its buffers and maps keep their room.
func (w *Writer) addSeg(k segKey) *segState {
	n := len(w.order)
	if n == len(w.pool) {
		w.pool = append(w.pool, &segState{runs: map[string]uint64{}, opIndex: map[uint64]int32{}})
	}
	w.order = w.pool[:n+1]
	s := w.pool[n]
	if s.key != k || s.ref == "" { // batches mostly name the same segments in the same order
		ref := bigsegments.Ref(k.segment, k.generation)
		s.key, s.ref, s.refArg = k, ref, ref
		s.membersKey, s.metaKey, s.runsKey = bigsegments.MembersKey(k.prefix, ref), bigsegments.MetaKey(k.prefix, ref), bigsegments.RunsKey(k.prefix, ref)
		s.indexKey = bigsegments.SegmentsKey(k.prefix)
	}
	s.changes, s.bad, s.legacy = s.changes[:0], nil, false
	s.maxSeq, s.run, s.kind, s.lastRun, s.lastFirst = 0, "", "", "", 0
	clear(s.runs)
	clear(s.opIndex)
	clear(s.opSpill)
	s.runEntries, s.meta, s.index = s.runEntries[:0], nil, nil
	s.membersType, s.metaType, s.indexType, s.runsType = nil, nil, nil, nil
	s.ops, s.fresh, s.gone, s.member = s.ops[:0], s.fresh[:0], s.gone[:0], s.member[:0]
	w.segs[k] = s
	return s
}

// resize returns s with n zero elements, reusing its array.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// argv returns room for the n arguments of one command, from an arena
// reset per batch: go-redis' own command builders allocate the arguments
// of each command, and box each string. A command keeps referring to its
// arguments until the batch ends, so a full arena is replaced, not
// reused, within a batch.
func (w *Writer) argv(n int) []any {
	if cap(w.args)-len(w.args) < n {
		w.args = make([]any, 0, max(2*cap(w.args), n, 1024))
	}
	lo := len(w.args)
	w.args = w.args[:lo+n]
	return w.args[lo : lo+n : lo+n]
}

// checkSegments is round trip 1: it fails every change of a segment whose
// member index is neither a hash nor a set (the form before
// since-tracking, which it keeps), whose run index is not a sorted set,
// whose metadata is not a hash, or whose prefix's segments index is not a
// set.
func (w *Writer) checkSegments(ctx context.Context) error {
	pipe := w.rdb.Pipeline()
	for _, s := range w.order {
		s.membersType, s.metaType, s.indexType = pipe.Type(ctx, s.membersKey), pipe.Type(ctx, s.metaKey), pipe.Type(ctx, s.indexKey)
		s.runsType = pipe.Type(ctx, s.runsKey)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classified("check the segments' key types", err)
	}
	for _, s := range w.order {
		s.legacy = s.membersType.Val() == "set"
		membersWant := "hash"
		if s.legacy {
			membersWant = "set"
		}
		for _, c := range []struct {
			key, want string
			got       *redis.StatusCmd
		}{{s.membersKey, membersWant, s.membersType}, {s.metaKey, "hash", s.metaType}, {s.indexKey, "set", s.indexType}, {s.runsKey, "zset", s.runsType}} {
			if t := c.got.Val(); t != "none" && t != c.want && s.bad == nil {
				s.bad = &errWrongType{key: c.key, has: t, want: c.want}
			}
		}
		if s.bad != nil {
			for _, i := range s.changes {
				w.failed[i] = fmt.Errorf("segment %s: %w", s.ref, s.bad)
			}
		}
	}
	return nil
}

// writeIncludes is round trip 2: the include-set writes of the changes of
// sound segments.
func (w *Writer) writeIncludes(ctx context.Context, changes []Change) error {
	w.includeKeys(changes)
	// The commands are go-redis' SADD and SREM, built here: their storage
	// is reused, their arguments come from one arena and the ref is boxed
	// once per segment, which leaves one allocation per change (boxing its
	// key: a Cluster client routes by key arguments of type string only).
	// They enter the pipeline in one call, not by appending one at a time.
	if cap(w.includeCmds) < len(changes) {
		w.includeCmds = make([]redis.IntCmd, len(changes))
	}
	w.includeCmds = w.includeCmds[:len(changes)]
	args := w.argv(3 * len(changes))
	w.cmds = w.cmds[:0]
	for _, s := range w.order {
		if s.bad != nil {
			continue
		}
		for _, i := range s.changes {
			a := args[3*i : 3*i+3 : 3*i+3]
			a[0], a[1], a[2] = "sadd", w.keys[i], s.refArg
			if changes[i].Remove {
				a[0] = "srem"
			}
			w.includeCmds[i] = *redis.NewIntCmd(ctx, a...)
			w.include[i] = &w.includeCmds[i]
			w.cmds = append(w.cmds, w.include[i])
		}
	}
	pipe := w.rdb.Pipeline()
	if err := pipe.BatchProcess(ctx, w.cmds...); err != nil {
		return classified("redis pipeline", err)
	}
	if _, err := pipe.Exec(ctx); err != nil && !hasErr(w.include) {
		return classified("redis pipeline", err)
	}
	for i, cmd := range w.include {
		if cmd == nil || cmd.Err() == nil {
			continue
		}
		if Classify(cmd.Err()) != ClassEvent {
			return classified(fmt.Sprintf("%s %v", cmd.Name(), cmd.Args()[1]), cmd.Err())
		}
		w.failed[i] = fmt.Errorf("%s %v: %w", cmd.Name(), cmd.Args()[1], cmd.Err())
	}
	return nil
}

// minHashChunk is the fewest include keys worth a hashing goroutine.
const minHashChunk = 2048

// includeKeys sets w.keys[i] to the include key of every change i not
// failed already, and w.fps[i] to its fingerprint. A key costs a SHA-256
// and an allocation: the hashing is spread over the cores for a large
// batch, and each worker's keys share one string.
func (w *Writer) includeKeys(changes []Change) {
	w.keys = resize(w.keys, len(changes))
	w.fps = resize(w.fps, len(changes))
	w.keyEnds = resize(w.keyEnds, len(changes))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(changes)/minHashChunk))
	for len(w.keyBufs) < workers {
		w.keyBufs = append(w.keyBufs, nil)
	}
	chunk := (len(changes) + workers - 1) / workers
	build := func(k int) {
		lo, hi := k*chunk, min((k+1)*chunk, len(changes))
		buf := w.keyBufs[k][:0]
		for i := lo; i < hi; i++ {
			if w.failed[i] == nil {
				buf = bigsegments.AppendIncludeKey(buf, changes[i].Prefix, changes[i].ContextKey)
				w.fps[i] = fingerprint(buf)
			}
			w.keyEnds[i] = len(buf)
		}
		all, start := string(buf), 0
		for i := lo; i < hi; i++ {
			w.keys[i], start = all[start:w.keyEnds[i]], w.keyEnds[i]
		}
		w.keyBufs[k] = buf
	}
	if workers == 1 {
		build(0)
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() { build(k) })
	}
	wg.Wait()
}

// fingerprint is a context key's fingerprint, from its include key
// (AppendIncludeKey's output, ending in the base64 of the key's SHA-256
// and one '='): 8 of the hash's characters, 48 bits. It keys the batch's
// dedupe of context keys per segment: a map of these is cheaper to probe
// than one of the keys, whose bytes are cold by then. Keys that share one
// are told apart (segState.noteOp), so only speed depends on its spread.
func fingerprint(includeKey []byte) uint64 {
	if len(includeKey) < 9 {
		return 0
	}
	return binary.LittleEndian.Uint64(includeKey[len(includeKey)-9:])
}

// writeMembers is round trip 3: the member-index writes of the changes
// whose include write landed, and each segment's metadata. It returns the
// segments to undo: those whose member-index or metadata writes were
// refused, after part of them may have landed; their changes have failed.
func (w *Writer) writeMembers(ctx context.Context, changes []Change) ([]*segState, error) {
	pipe := w.rdb.Pipeline()
	nowMs := bigsegments.UnixMillis(w.now())
	for _, s := range w.order {
		for _, i := range s.changes {
			if w.failed[i] != nil {
				continue
			}
			ch := &changes[i]
			s.noteOp(ch, w.fps[i], w.include[i].Val() == 1)
			if ch.Seq > s.maxSeq {
				s.maxSeq, s.run, s.kind = ch.Seq, ch.Run, ch.ContextKind
			}
			s.noteRun(ch.Run, ch.Seq)
		}
		w.queueMembers(ctx, pipe, s)
		s.runEntries = s.runEntries[:0]
		if s.maxSeq > 0 {
			s.meta = metaScript.Eval(ctx, pipe, []string{s.metaKey, s.membersKey}, s.metaArgs(nowMs)...)
			s.index = pipe.SAdd(ctx, s.indexKey, s.ref)
			s.starts = s.starts[:0]
			for _, run := range slices.Sorted(maps.Keys(s.runs)) {
				if c, ok := w.started[s.key]; ok && c.run == run && c.seq <= s.runs[run] {
					continue // recorded already
				}
				s.starts = append(s.starts, redis.Z{Member: bigsegments.RunsEntry(s.runs[run], run)})
			}
			for starts := range slices.Chunk(s.starts, maxFields) { // variadic: a batch may hold many runs
				s.runEntries = append(s.runEntries, pipe.ZAdd(ctx, s.runsKey, starts...))
			}
		}
	}
	_, execErr := pipe.Exec(ctx)
	var undo []*segState
	replied := false // some command answered with an error of its own
	for _, s := range w.order {
		what, err := s.memberErr()
		if err == nil {
			what, err = s.segErr()
		}
		if err == nil {
			continue
		}
		replied = true
		if Classify(err) != ClassEvent {
			return nil, classified(what, err)
		}
		// A key of the segment changed type since round trip 1: its
		// changes are not fully applied, so they fail and are undone. (An
		// index entry that landed stays: it only lists the segment.)
		for _, i := range s.changes {
			if w.failed[i] == nil {
				w.failed[i] = fmt.Errorf("%s: %w", what, err)
			}
		}
		undo = append(undo, s)
	}
	if execErr != nil && !replied {
		return nil, classified("redis pipeline", execErr)
	}
	return undo, nil
}

// noteOp folds change ch, whose context key has fingerprint fp, into its
// key's memberOp in s; added tells whether its include write changed the
// set.
func (s *segState) noteOp(ch *Change, fp uint64, added bool) {
	j, ok := s.opIndex[fp]
	switch {
	case !ok:
		j = s.newOp(ch.ContextKey)
		s.opIndex[fp] = j
	case s.ops[j].key != ch.ContextKey:
		// Another context key of the batch has this fingerprint: this
		// one, and any other that shares it, is found by itself.
		if s.opSpill == nil {
			s.opSpill = map[string]int32{}
		}
		if j, ok = s.opSpill[ch.ContextKey]; !ok {
			j = s.newOp(ch.ContextKey)
			s.opSpill[ch.ContextKey] = j
		}
	}
	op := &s.ops[j]
	switch {
	case ch.Remove:
		op.kind, op.seq = opRemove, 0
	case added:
		op.kind, op.seq = opFresh, ch.Seq
	case op.kind == 0 || op.kind == opRemove:
		op.kind, op.seq = opKeep, ch.Seq
	}
	// An add that changed nothing after an add of the batch: the earlier
	// one's seq stands.
}

// newOp adds a memberOp of context key key to s.ops and returns its index.
func (s *segState) newOp(key string) int32 {
	s.ops = append(s.ops, memberOp{key: key})
	return int32(len(s.ops) - 1)
}

// noteRun folds seq into the lowest seq of run in s.runs (seq 0: none).
func (s *segState) noteRun(run string, seq uint64) {
	if seq == 0 || (s.lastFirst != 0 && run == s.lastRun && seq >= s.lastFirst) {
		return
	}
	if first, ok := s.runs[run]; !ok || seq < first {
		s.runs[run] = seq
	}
	s.lastRun, s.lastFirst = run, s.runs[run]
}

// queueMembers queues s's member-index writes: variadic HSET of the keys
// that joined, HSETNX of each key re-added, HMGET and HDEL of the keys
// that left; for an index in the set form of older releases, SADD or SREM
// of each key.
//
// The variadic commands, one per member written, are built here from the
// Writer's arena, their fields and values pointers into s.ops (*string,
// *uint64: go-redis writes them as the string and the decimal number) so
// that no field is boxed or formatted: s.ops does not change until the
// batch ends. Their key stays a string, which a Cluster client routes by.
func (w *Writer) queueMembers(ctx context.Context, pipe redis.Pipeliner, s *segState) {
	for j := range s.ops {
		op := &s.ops[j]
		switch {
		case s.legacy && op.kind == opRemove:
			s.member = append(s.member, memberCmd{cmd: pipe.SRem(ctx, s.membersKey, op.key), kind: opRemove})
		case s.legacy:
			s.member = append(s.member, memberCmd{cmd: pipe.SAdd(ctx, s.membersKey, op.key), kind: opFresh})
		case op.kind == opKeep:
			s.member = append(s.member, memberCmd{cmd: pipe.HSetNX(ctx, s.membersKey, op.key, &op.seq), kind: opKeep})
		case op.kind == opFresh:
			s.fresh = append(s.fresh, int32(j))
		case op.kind == opRemove:
			s.gone = append(s.gone, int32(j))
		}
	}
	for fields := range slices.Chunk(s.fresh, maxFields) {
		a := w.argv(2 + 2*len(fields))
		a[0], a[1] = "hset", s.membersKey
		for n, j := range fields {
			a[2+2*n], a[3+2*n] = &s.ops[j].key, &s.ops[j].seq
		}
		s.member = append(s.member, memberCmd{cmd: queue(ctx, pipe, redis.NewIntCmd(ctx, a...)), kind: opFresh, fields: fields})
	}
	for fields := range slices.Chunk(s.gone, maxFields) {
		get, del := w.argv(2+len(fields)), w.argv(2+len(fields))
		get[0], get[1], del[0], del[1] = "hmget", s.membersKey, "hdel", s.membersKey
		for n, j := range fields {
			get[2+n] = &s.ops[j].key
			del[2+n] = get[2+n]
		}
		old := queue(ctx, pipe, redis.NewSliceCmd(ctx, get...))
		s.member = append(s.member, memberCmd{cmd: queue(ctx, pipe, redis.NewIntCmd(ctx, del...)), kind: opRemove, fields: fields, old: old})
	}
}

// queue queues cmd in pipe and returns it.
func queue[C redis.Cmder](ctx context.Context, pipe redis.Pipeliner, cmd C) C {
	_ = pipe.Process(ctx, cmd) // a pipeline's Process only queues; errors come with Exec
	return cmd
}

// memberErr is the first error of s's member-index writes, with what
// failed; nil if none failed.
func (s *segState) memberErr() (string, error) {
	for _, m := range s.member {
		c := m.cmd
		if m.old != nil && m.old.Err() != nil {
			c = m.old
		}
		if c.Err() != nil {
			return fmt.Sprintf("%s %v", c.Name(), c.Args()[1]), c.Err()
		}
	}
	return "", nil
}

// metaArgs are metaScript's ARGV for s.
func (s *segState) metaArgs(nowMs string) []any {
	form := "hash"
	if s.legacy {
		form = "set"
	}
	return []any{strconv.FormatUint(s.maxSeq, 10), s.run, nowMs, s.kind, form}
}

// recordStarts notes, after a batch, the run start each sound segment
// holds now: its newest run's, as written or as recorded already.
func (w *Writer) recordStarts() {
	if w.started == nil {
		w.started = map[segKey]runStart{}
	}
	for _, s := range w.order {
		first, ok := s.runs[s.run]
		if _, err := s.segErr(); err != nil || s.bad != nil || s.maxSeq == 0 || !ok {
			continue
		}
		if c, had := w.started[s.key]; had && c.run == s.run && c.seq <= first {
			continue
		}
		w.started[s.key] = runStart{run: s.run, seq: first}
	}
}

// segErr is the error of s's metadata update or index entry, with what
// failed; nil if neither failed (or neither was written).
func (s *segState) segErr() (string, error) {
	if s.meta != nil && s.meta.Err() != nil {
		return "update " + s.metaKey, s.meta.Err()
	}
	if s.index != nil && s.index.Err() != nil {
		return "index in " + s.indexKey, s.index.Err()
	}
	for _, e := range s.runEntries {
		if e.Err() != nil {
			return "record a run's start in " + s.runsKey, e.Err()
		}
	}
	return "", nil
}

// undo is round trip 4, after another writer changed a key's type while the
// batch was written: it reverts, newest first, the writes of the segments'
// changes that changed a key. A key HSET as joining is deleted again: a
// leftover seq it may have overwritten (a removal cut short) is not put
// back, which only loses what the next add would overwrite anyway.
func (w *Writer) undo(ctx context.Context, changes []Change, segs []*segState) error {
	pipe := w.rdb.Pipeline()
	n := 0
	for _, s := range segs {
		for _, m := range slices.Backward(s.member) {
			if m.cmd.Err() != nil {
				continue
			}
			switch {
			case s.legacy && changedKey(m.cmd) && m.kind == opRemove:
				pipe.SAdd(ctx, s.membersKey, m.cmd.Args()[2])
			case s.legacy && changedKey(m.cmd):
				pipe.SRem(ctx, s.membersKey, m.cmd.Args()[2])
			case m.kind == opKeep && changedKey(m.cmd):
				pipe.HDel(ctx, s.membersKey, m.cmd.Args()[2].(string))
			case m.kind == opFresh && m.fields != nil:
				pipe.HDel(ctx, s.membersKey, s.opKeys(m.fields)...)
			case m.kind == opRemove && m.old != nil && m.old.Err() == nil:
				for j, v := range m.old.Val() {
					if v != nil {
						pipe.HSetNX(ctx, s.membersKey, s.ops[m.fields[j]].key, fmt.Sprint(v))
					}
				}
			default:
				continue
			}
			n++
		}
		for _, i := range slices.Backward(s.changes) {
			cmd := w.include[i]
			if cmd == nil || cmd.Err() != nil || !changedKey(cmd) {
				continue
			}
			key, member := cmd.Args()[1], cmd.Args()[2]
			if changes[i].Remove {
				pipe.SAdd(ctx, key.(string), member)
			} else {
				pipe.SRem(ctx, key.(string), member)
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return classified("undo the writes of changes refused half way", err)
	}
	return nil
}

// opKeys are the context keys of s.ops[j] for each j of idx.
func (s *segState) opKeys(idx []int32) []string {
	keys := make([]string, len(idx))
	for n, j := range idx {
		keys[n] = s.ops[j].key
	}
	return keys
}

// classified wraps err, a Redis error of what, by its class: fatal errors
// wrap ErrFatal, others are returned as transient (retry the batch).
func classified(what string, err error) error {
	err = fmt.Errorf("%s: %w", what, err)
	if Classify(err) == ClassFatal {
		return fatal(err)
	}
	return err
}

// hasErr tells whether a command of cmds failed.
func hasErr[C interface {
	comparable
	redis.Cmder
}](cmds []C) bool {
	var none C
	return slices.ContainsFunc(cmds, func(c C) bool { return c != none && c.Err() != nil })
}

// changedKey tells whether a member write changed its key: SADD, SREM and
// HDEL reply 1, HSETNX true.
func changedKey(cmd redis.Cmder) bool {
	switch c := cmd.(type) {
	case *redis.IntCmd:
		return c.Val() == 1
	case *redis.BoolCmd:
		return c.Val()
	}
	return false
}

// SetSynchronizedOn sets big_segments_synchronized_on to t (unix
// milliseconds, as the SDKs read it) under every prefix, in one pipeline.
// It is a plain SET, not max-only: the caller decides when the store is
// current as of t and must call it only then (the SDKs report STALE from
// this key alone).
func (w *Writer) SetSynchronizedOn(ctx context.Context, prefixes []string, t time.Time) error {
	v := bigsegments.UnixMillis(t)
	pipe := w.rdb.Pipeline()
	for _, p := range prefixes {
		pipe.Set(ctx, bigsegments.SyncTimeKey(p), v, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("set synchronized_on: %w", err)
	}
	return nil
}
