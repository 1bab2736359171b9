package schedule

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// claimScript sets the claim KEYS[2] to ARGV[3] with a TTL of ARGV[4] ms,
// unless a claim is held ({'claimed', holder}), the slot ARGV[1] is done
// ({'done', done}: for mode periodic, done is that slot or a later one) or
// it failed and waits until past ARGV[5], the time in ms ({'backoff',
// retry_at}). Mode manual claims whenever nobody holds the claim. Returns
// {'ok', ”} when claimed.
var claimScript = redis.NewScript(`
local holder = redis.call('GET', KEYS[2])
if holder then return {'claimed', holder} end
if ARGV[2] ~= 'manual' then
  local st = redis.call('HMGET', KEYS[1], 'done', 'attempt_slot', 'retry_at')
  if ARGV[2] == 'periodic' then
    local d = st[1] and tonumber(st[1])
    if d and d >= tonumber(ARGV[1]) then return {'done', st[1]} end
  elseif st[1] == ARGV[1] then
    return {'done', st[1]}
  end
  if st[2] == ARGV[1] and st[3] and tonumber(st[3]) > tonumber(ARGV[5]) then return {'backoff', st[3]} end
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return {'ok', ''}
`)

// renewScript extends the claim KEYS[1] to ARGV[2] ms if it still holds
// ARGV[1]: 1 if renewed, 0 if it expired or is someone else's.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// finishScript records how the run holding claim ARGV[1] (KEYS[2]) of slot
// ARGV[3] in mode ARGV[4] ended (ARGV[2]: ok, fail or release) and deletes
// the claim. A claim someone else holds now is theirs to record: 'lost'.
// ok marks the slot done (never moving a periodic done back); fail counts an
// attempt of the slot and sets retry_at (ARGV[5] now in ms, plus ARGV[7]
// ms doubled per earlier failure, at most ARGV[8]) or, at the ARGV[6]th
// attempt, marks the slot done as failed; release (and any end of a manual
// run) records nothing. ARGV[9] is the owner recorded. Returns {outcome,
// attempts}.
var finishScript = redis.NewScript(`
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[1] then return {'lost', 0} end
if held then redis.call('DEL', KEYS[2]) end
if ARGV[2] == 'release' or ARGV[4] == 'manual' then return {'released', 0} end
local function finish(result)
  if ARGV[4] == 'periodic' then
    local cur = redis.call('HGET', KEYS[1], 'done')
    local d = cur and tonumber(cur)
    if d and d >= tonumber(ARGV[3]) then return end
  end
  redis.call('HSET', KEYS[1], 'done', ARGV[3], 'result', result, 'by', ARGV[9], 'at', ARGV[5])
  redis.call('HDEL', KEYS[1], 'attempt_slot', 'attempts', 'retry_at')
end
local n = 0
if ARGV[2] == 'fail' then
  local st = redis.call('HMGET', KEYS[1], 'attempt_slot', 'attempts')
  n = 1
  if st[1] == ARGV[3] then n = (tonumber(st[2]) or 0) + 1 end
  if n < tonumber(ARGV[6]) then
    local wait = math.min(tonumber(ARGV[7]) * 2 ^ (n - 1), tonumber(ARGV[8]))
    redis.call('HSET', KEYS[1], 'attempt_slot', ARGV[3], 'attempts', n,
      'retry_at', string.format('%d', tonumber(ARGV[5]) + wait))
    return {'retry', n}
  end
  finish('failed')
  return {'gave-up', n}
end
finish('ok')
return {'done', n}
`)

// Outcome is how a run's end was recorded.
type Outcome string

// Outcomes.
const (
	// OutcomeDone: the run succeeded and its slot is done.
	OutcomeDone Outcome = "done"
	// OutcomeRetry: the run failed; its slot is retried after a wait.
	OutcomeRetry Outcome = "retry"
	// OutcomeGaveUp: the run failed MaxAttempts times; its slot is given
	// up until the next one.
	OutcomeGaveUp Outcome = "gave-up"
	// OutcomeReleased: nothing recorded (a manual run, a run refused by
	// the segment's lease, or one stopped by shutdown): the slot stays due.
	OutcomeReleased Outcome = "released"
	// OutcomeLost: the claim expired and another replica holds it; the
	// outcome is theirs to record.
	OutcomeLost Outcome = "lost"
)

// keys of the mapping called name.
func (c Config) keys(name string) []string {
	tag := c.Prefix + "{mapping:" + url.QueryEscape(name) + "}:"
	return []string{tag + "schedule", tag + "claim"}
}

// readStates reads the recorded state of every mapping of ms in one
// pipeline; a mapping whose read failed has an error instead.
func (s *Scheduler) readStates(ctx context.Context, ms []catalog.Mapping) ([]state, []error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	type cmds struct {
		hash  *redis.SliceCmd
		claim *redis.StringCmd
	}
	pending := make([]cmds, len(ms))
	pipe := s.rdb.Pipeline()
	for i, m := range ms {
		k := s.cfg.keys(m.Name)
		pending[i] = cmds{pipe.HMGet(ctx, k[0], "done", "attempt_slot", "attempts", "retry_at"), pipe.Get(ctx, k[1])}
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	sts, errs := make([]state, len(ms)), make([]error, len(ms))
	for i, p := range pending {
		sts[i], errs[i] = parseState(p.hash, p.claim)
		if errs[i] != nil {
			errs[i] = fmt.Errorf("schedule: read state of %q: %w", ms[i].Name, errs[i])
		}
	}
	return sts, errs
}

func parseState(hash *redis.SliceCmd, cl *redis.StringCmd) (state, error) {
	vals, err := hash.Result()
	if err != nil {
		return state{}, err
	}
	holder, err := cl.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return state{}, err
	}
	if len(vals) != 4 {
		// Seen when the connection broke during the pipeline: an error,
		// not a panic that stops the replica.
		return state{}, fmt.Errorf("HMGET of 4 fields answered %d values", len(vals))
	}
	str := func(i int) string {
		s, _ := vals[i].(string) // nil for an absent field
		return s
	}
	st := state{done: str(0), attemptSlot: str(1), holder: holder}
	if a := str(2); a != "" {
		if st.attempts, err = strconv.Atoi(a); err != nil {
			return state{}, fmt.Errorf("attempts %q: %w", a, err)
		}
	}
	if r := str(3); r != "" {
		if st.retryAt, err = millis(r); err != nil {
			return state{}, fmt.Errorf("retry_at: %w", err)
		}
	}
	return st, nil
}

// claimed is a claim this Scheduler holds.
type claimed struct {
	claim
	keys  []string
	value string
}

// errClaimHeld, errClaimDone and errClaimBackoff are the claim script's
// refusals.
var (
	errClaimHeld    = errors.New("claimed")
	errClaimDone    = errors.New("done")
	errClaimBackoff = errors.New("backoff")
)

// take claims c for m; a refusal wraps one of the errClaim values, with the
// script's detail (the holder, the done slot, the retry time) in detail.
func (s *Scheduler) take(ctx context.Context, m catalog.Mapping, c claim) (cl claimed, detail string, err error) {
	cl = claimed{claim: c, keys: s.cfg.keys(m.Name), value: s.cfg.Owner + " " + rand.Text() + " " + c.id}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res, err := claimScript.Run(ctx, s.rdb, cl.keys, c.id, c.mode, cl.value, s.cfg.ClaimTTL.Milliseconds(),
		s.cfg.Clock().UnixMilli()).StringSlice()
	if err != nil {
		return cl, "", fmt.Errorf("schedule: claim %q: %w", m.Name, err)
	}
	if len(res) != 2 {
		return cl, "", fmt.Errorf("schedule: claim %q: unexpected reply %q", m.Name, res)
	}
	switch res[0] {
	case "ok":
		return cl, "", nil
	case "claimed":
		return cl, res[1], errClaimHeld
	case "done":
		return cl, res[1], errClaimDone
	case "backoff":
		return cl, res[1], errClaimBackoff
	}
	return cl, "", fmt.Errorf("schedule: claim %q: unexpected reply %q", m.Name, res)
}

// renew extends cl every ClaimTTL/3 until stop is closed or ctx ends (then
// the claim expires: a replica that stops also stops vouching for its
// runs). If the claim is found lost, lost is called (once) and renew
// returns.
func (s *Scheduler) renew(ctx context.Context, name string, cl claimed, stop <-chan struct{}, lost func(error)) {
	t := time.NewTicker(s.cfg.ClaimTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		n, err := renewScript.Run(rctx, s.rdb, cl.keys[1:], cl.value, s.cfg.ClaimTTL.Milliseconds()).Int()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Retried at the next tick while the claim may still live; if
			// it expires meanwhile, another replica may run the slot and
			// the segment's lease keeps the two runs apart.
			s.log.Warn("schedule: renew claim", "mapping", name, "err", err)
		case n == 0:
			lost(fmt.Errorf("schedule: claim of %q on slot %s expired or was taken", name, cl.id))
			return
		}
	}
}

// finish records how the run of cl ended, even after ctx ended.
func (s *Scheduler) finish(ctx context.Context, name string, cl claimed, how string) (Outcome, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	backoff := s.cfg.RetryBackoff.Milliseconds()
	res, err := finishScript.Run(ctx, s.rdb, cl.keys, cl.value, how, cl.id, cl.mode, s.cfg.Clock().UnixMilli(),
		s.cfg.MaxAttempts, backoff, maxBackoffFactor*backoff, s.cfg.Owner).Slice()
	if err != nil {
		return "", fmt.Errorf("schedule: record the run of %q (its claim expires within %v): %w", name, s.cfg.ClaimTTL, err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("schedule: record the run of %q: unexpected reply %v", name, res)
	}
	out, _ := res[0].(string)
	switch o := Outcome(out); o {
	case OutcomeDone, OutcomeRetry, OutcomeGaveUp, OutcomeReleased, OutcomeLost:
		return o, nil
	}
	return "", fmt.Errorf("schedule: record the run of %q: unexpected reply %v", name, res)
}

// millis reads a time recorded as Unix milliseconds.
func millis(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}
