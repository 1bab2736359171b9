package segmentstore

import (
	"context"
	"fmt"
	"strconv"
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

// metaScript moves a segment's metadata forward to the batch's highest
// sequence number and never back, so that a replay of old events (a new
// group, a reset offset, a redelivery) leaves the metadata as it was. It
// runs once per segment per batch, not per event: Lua costs several plain
// commands. Sequence numbers are compared as decimal strings (longer is
// larger) because Lua numbers are doubles and lose uint64 precision.
var metaScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'last_seq')
local new = ARGV[1]
if cur and (#cur > #new or (#cur == #new and cur >= new)) then
  return 0
end
redis.call('HSET', KEYS[1], 'last_seq', new, 'last_run', ARGV[2], 'last_applied', ARGV[3], 'context_kind', ARGV[4])
return 1
`)

// Writer is the one writer of the layout: include sets, the member index,
// per-segment metadata and synchronized_on. Every write it makes is
// idempotent, so a batch may be applied again after any failure (a crash
// before the consumer's commit, a retried pipeline, a replay of the whole
// topic) and Redis converges on the same content:
//
//   - membership is SADD/SREM, which do nothing when the member is already
//     in (or out of) the set;
//   - the metadata only moves forward by sequence number (see Apply), so old
//     events applied again never make a segment look older than it is.
//
// Apply reuses the Writer's buffers between calls, so calls of Apply must
// not overlap: use one Writer per apply loop. SetSynchronizedOn shares no
// state with Apply and may run on another goroutine at the same time.
type Writer struct {
	rdb WriteClient
	now func() time.Time

	// Reused between batches.
	keyBuf []byte
	cmds   []*redis.IntCmd
	segs   map[segKey]*segState
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

// segState is what one batch does to one segment.
type segState struct {
	ref, membersKey string
	maxSeq          uint64
	run, kind       string
	changes         []int // indexes into the batch, for failures of the meta update
	meta            *redis.Cmd
	index           *redis.IntCmd // SADD to the prefix's segments index
}

// Apply runs one attempt at writing changes in one pipeline.
//
// Per change: SADD (SREM with Remove) of the segment ref in the context's
// include set and of the context key in the segment's member index. Per
// segment: one script that sets the metadata to the batch's highest Seq
// (with its Run, ContextKind and the time now) only if that is higher than
// the stored last_seq, and an SADD of its ref to the prefix's segments
// index (bigsegments.SegmentsKey). Changes are applied in the order given.
//
// It returns the changes Redis rejected permanently (ClassEvent), or an
// error: ClassTransient errors mean the whole batch may be retried (it is
// idempotent); an error wrapping ErrFatal means retrying cannot help.
func (w *Writer) Apply(ctx context.Context, changes []Change) ([]Failure, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	if w.segs == nil {
		w.segs = map[segKey]*segState{}
	}
	clear(w.segs)
	w.cmds = w.cmds[:0]
	pipe := w.rdb.Pipeline()
	for i := range changes {
		ch := &changes[i]
		k := segKey{ch.Prefix, ch.Segment, ch.Generation}
		s := w.segs[k]
		if s == nil {
			ref := bigsegments.Ref(ch.Segment, ch.Generation)
			s = &segState{ref: ref, membersKey: bigsegments.MembersKey(ch.Prefix, ref)}
			w.segs[k] = s
		}
		if ch.Seq > s.maxSeq {
			s.maxSeq, s.run, s.kind = ch.Seq, ch.Run, ch.ContextKind
		}
		s.changes = append(s.changes, i)
		w.keyBuf = bigsegments.AppendIncludeKey(w.keyBuf[:0], ch.Prefix, ch.ContextKey)
		include := string(w.keyBuf)
		if ch.Remove {
			w.cmds = append(w.cmds, pipe.SRem(ctx, include, s.ref), pipe.SRem(ctx, s.membersKey, ch.ContextKey))
		} else {
			w.cmds = append(w.cmds, pipe.SAdd(ctx, include, s.ref), pipe.SAdd(ctx, s.membersKey, ch.ContextKey))
		}
	}
	nowMs := bigsegments.UnixMillis(w.now())
	for k, s := range w.segs {
		s.meta = metaScript.Eval(ctx, pipe, []string{bigsegments.MetaKey(k.prefix, s.ref)},
			strconv.FormatUint(s.maxSeq, 10), s.run, nowMs, s.kind)
		// Another slot than the metadata's, so not in the script.
		s.index = pipe.SAdd(ctx, bigsegments.SegmentsKey(k.prefix), s.ref)
	}
	_, execErr := pipe.Exec(ctx)

	var (
		failures  []Failure
		transient error
	)
	note := func(idx int, what string, err error) error {
		switch Classify(err) {
		case ClassEvent:
			failures = append(failures, Failure{Index: idx, Reason: ReasonWrongType, Err: fmt.Errorf("%s: %w", what, err)})
		case ClassTransient:
			if transient == nil {
				transient = fmt.Errorf("%s: %w", what, err)
			}
		case ClassFatal:
			return fatal(fmt.Errorf("%s: %w", what, err))
		}
		return nil
	}
	for i, cmd := range w.cmds {
		if err := cmd.Err(); err != nil {
			if ferr := note(i/2, fmt.Sprintf("%s %v", cmd.Name(), cmd.Args()[1]), err); ferr != nil {
				return nil, ferr
			}
		}
	}
	for k, s := range w.segs {
		err, what := s.meta.Err(), "update "+bigsegments.MetaKey(k.prefix, s.ref)
		if err == nil {
			err, what = s.index.Err(), "index in "+bigsegments.SegmentsKey(k.prefix)
		}
		if err != nil {
			if Classify(err) == ClassEvent {
				// The metadata (or index) of these changes' segment cannot be written:
				// they are not fully applied, so they fail with the rest of
				// the evidence.
				for _, idx := range s.changes {
					failures = append(failures, Failure{Index: idx, Reason: ReasonWrongType, Err: fmt.Errorf("%s: %w", what, err)})
				}
				continue
			}
			if ferr := note(-1, what, err); ferr != nil {
				return nil, ferr
			}
		}
	}
	if transient != nil {
		return nil, transient
	}
	if execErr != nil && len(failures) == 0 {
		// Exec reported an error no command carries (it should not happen);
		// treat it by its class rather than ignore it.
		if Classify(execErr) == ClassFatal {
			return nil, fatal(fmt.Errorf("redis pipeline: %w", execErr))
		}
		return nil, fmt.Errorf("redis pipeline: %w", execErr)
	}
	return dedupeFailures(failures), nil
}

// dedupeFailures keeps the first failure of each change (both of its
// commands and its segment's metadata can fail).
func dedupeFailures(fs []Failure) []Failure {
	if len(fs) < 2 {
		return fs
	}
	seen := make(map[int]bool, len(fs))
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.Index] {
			seen[f.Index] = true
			out = append(out, f)
		}
	}
	return out
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
