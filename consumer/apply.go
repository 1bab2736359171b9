package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/schema"
)

// pipeliner is what the apply path needs from a Redis client. go-redis
// splits a Cluster client's pipeline by slot and runs the parts on their
// masters concurrently, so one pipeline serves both deployments.
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

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

// applier writes decoded events into the Big Segments layout.
type applier struct {
	rdb    pipeliner
	prefix func(env string) string
	now    func() time.Time

	// Reused between batches by the single apply loop.
	keyBuf []byte
	cmds   []*redis.IntCmd
	segs   map[segKey]*segState
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
	events          []int // indexes into the batch, for failures of the meta update
	meta            *redis.Cmd
}

// failure is an event that Redis rejected permanently (its keys hold the
// wrong type): it goes to the dead-letter topic, the rest of the batch is
// applied.
type failure struct {
	index  int
	reason string
	err    error
}

// Dead-letter reasons for events Redis rejected; decode failures use
// schema.DecodeError.Reason.
const reasonRedisWrongType = "redis_wrongtype"

// errClass says what a Redis error means for a batch.
type errClass int

const (
	classOK        errClass = iota
	classEvent              // the event's key is unusable: dead-letter the event
	classTransient          // retry the whole batch: it is idempotent
	classFatal              // a configuration or programming error: stop
)

// classify maps a per-command Redis error to its class. Only WRONGTYPE is
// blamed on the event: it is the one error that depends on the data at the
// event's keys. Errors that would hit every event alike (NOPERM, NOAUTH,
// unknown command) stop the consumer rather than dead-letter the whole
// stream.
func classify(err error) errClass {
	if err == nil {
		return classOK
	}
	if redis.HasErrorPrefix(err, "WRONGTYPE") ||
		// Redis 6 and older wrap an error raised inside a script:
		// "ERR Error running script ... WRONGTYPE Operation against ...".
		redis.HasErrorPrefix(err, "Error running script") && strings.Contains(err.Error(), "WRONGTYPE") {
		return classEvent
	}
	if errors.Is(err, redis.ErrClosed) {
		return classFatal
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// Network errors, timeouts, EOF, pool exhaustion, cancelled
		// contexts: the server may be fine a moment later.
		return classTransient
	}
	if redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err) {
		return classTransient
	}
	if _, ok := redis.IsMovedError(err); ok {
		return classTransient // a resharding go-redis did not follow in its retries
	}
	if _, ok := redis.IsAskError(err); ok {
		return classTransient
	}
	for _, p := range []string{"LOADING", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "BUSY", "NOREPLICAS", "OOM", "max number of clients"} {
		if redis.HasErrorPrefix(err, p) {
			return classTransient
		}
	}
	return classFatal
}

// apply runs one attempt at writing evs in one pipeline. It returns the
// events Redis rejected permanently, or an error that is transient (retry
// the batch) or a *backoff.PermanentError (retrying cannot help: stop).
// Per event: SADD/SREM of the segment ref in the context's include set and of
// the context key in the segment's member index. Per segment: metaScript.
func (a *applier) apply(ctx context.Context, evs []*schema.Event) ([]failure, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if a.segs == nil {
		a.segs = map[segKey]*segState{}
	}
	clear(a.segs)
	a.cmds = a.cmds[:0]
	pipe := a.rdb.Pipeline()
	for i, ev := range evs {
		prefix := a.prefix(ev.Env)
		k := segKey{prefix, ev.Segment, ev.Generation}
		s := a.segs[k]
		if s == nil {
			ref := ev.Ref()
			s = &segState{ref: ref, membersKey: bigsegments.MembersKey(prefix, ref)}
			a.segs[k] = s
		}
		if ev.Seq > s.maxSeq {
			s.maxSeq, s.run, s.kind = ev.Seq, ev.Run, ev.ContextKind
		}
		s.events = append(s.events, i)
		a.keyBuf = bigsegments.AppendIncludeKey(a.keyBuf[:0], prefix, ev.ContextKey)
		include := string(a.keyBuf)
		if ev.Op == schema.OpAdd {
			a.cmds = append(a.cmds, pipe.SAdd(ctx, include, s.ref), pipe.SAdd(ctx, s.membersKey, ev.ContextKey))
		} else {
			a.cmds = append(a.cmds, pipe.SRem(ctx, include, s.ref), pipe.SRem(ctx, s.membersKey, ev.ContextKey))
		}
	}
	nowMs := bigsegments.UnixMillis(a.now())
	for k, s := range a.segs {
		s.meta = metaScript.Eval(ctx, pipe, []string{bigsegments.MetaKey(k.prefix, s.ref)},
			strconv.FormatUint(s.maxSeq, 10), s.run, nowMs, s.kind)
	}
	_, execErr := pipe.Exec(ctx)

	var (
		failures  []failure
		transient error
	)
	note := func(idx int, what string, err error) error {
		switch classify(err) {
		case classEvent:
			failures = append(failures, failure{index: idx, reason: reasonRedisWrongType, err: fmt.Errorf("%s: %w", what, err)})
		case classTransient:
			if transient == nil {
				transient = fmt.Errorf("%s: %w", what, err)
			}
		case classFatal:
			return backoff.Permanent(fmt.Errorf("%s: %w", what, err))
		}
		return nil
	}
	for i, cmd := range a.cmds {
		if err := cmd.Err(); err != nil {
			if ferr := note(i/2, fmt.Sprintf("%s %v", cmd.Name(), cmd.Args()[1]), err); ferr != nil {
				return nil, ferr
			}
		}
	}
	for k, s := range a.segs {
		if err := s.meta.Err(); err != nil {
			what := "update " + bigsegments.MetaKey(k.prefix, s.ref)
			if classify(err) == classEvent {
				// The metadata of these events' segment cannot be written:
				// they are not fully applied, so they go to the dead-letter
				// topic with the rest of the evidence.
				for _, idx := range s.events {
					failures = append(failures, failure{index: idx, reason: reasonRedisWrongType, err: fmt.Errorf("%s: %w", what, err)})
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
		if classify(execErr) == classFatal {
			return nil, backoff.Permanent(fmt.Errorf("redis pipeline: %w", execErr))
		}
		return nil, fmt.Errorf("redis pipeline: %w", execErr)
	}
	return dedupeFailures(failures), nil
}

// dedupeFailures keeps the first failure of each event (both of its commands
// and its segment's metadata can fail).
func dedupeFailures(fs []failure) []failure {
	if len(fs) < 2 {
		return fs
	}
	seen := make(map[int]bool, len(fs))
	out := fs[:0]
	for _, f := range fs {
		if !seen[f.index] {
			seen[f.index] = true
			out = append(out, f)
		}
	}
	return out
}
