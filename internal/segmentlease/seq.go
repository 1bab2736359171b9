package segmentlease

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// reserve hands out ARGV[2] numbers from above both the counter KEYS[1] (the
// last number reserved, 0 when absent) and the floor ARGV[1], and moves the
// counter to the range's end (refusing to pass ARGV[3]), in one script so two replicas never get
// overlapping ranges. Lua numbers are doubles: the caller keeps every number
// at or below MaxSeq, where they are exact.
var reserve = redis.NewScript(`
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(last + 1, tonumber(ARGV[1]))
local stop = first + tonumber(ARGV[2]) - 1
if stop > tonumber(ARGV[3]) then return redis.error_reply('sequence numbers exhausted') end
redis.call('SET', KEYS[1], string.format('%d', stop))
return {first, stop}
`)

// MaxSeq is the largest sequence number SeqAllocator hands out: 2^53, the
// largest up to which every integer is exact in Redis's Lua.
const MaxSeq = 1 << 53

// SeqAllocator is a snapshot.SeqAllocator whose counter per segment lives in
// Redis, so numbers keep growing whichever replica reserves them.
type SeqAllocator struct{ control }

// NewSeqAllocator returns a SeqAllocator on rdb (standalone or Cluster). It
// fails with *setting.Error values if cfg is invalid; only Prefix and
// Timeout apply.
func NewSeqAllocator(rdb redis.UniversalClient, cfg Config) (*SeqAllocator, error) {
	c, err := newControl(rdb, cfg)
	if err != nil {
		return nil, err
	}
	return &SeqAllocator{c}, nil
}

// Reserve returns n numbers above both floor and every number reserved for
// id before, by any replica.
func (a *SeqAllocator) Reserve(ctx context.Context, id snapshot.SegmentID, floor, n uint64) (snapshot.SeqRange, error) {
	if err := ctx.Err(); err != nil {
		return snapshot.SeqRange{}, fmt.Errorf("reserve sequence numbers of %s: %w", id, err)
	}
	if floor < 1 || n < 1 || floor > MaxSeq || n > MaxSeq-floor+1 {
		return snapshot.SeqRange{}, fmt.Errorf("reserve sequence numbers of %s: %d from %d does not fit below %d", id, n, floor, uint64(MaxSeq))
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	res, err := reserve.Run(rctx, a.rdb, []string{a.cfg.key(id, "seq")},
		strconv.FormatUint(floor, 10), strconv.FormatUint(n, 10), strconv.FormatUint(MaxSeq, 10)).Int64Slice()
	if err != nil {
		return snapshot.SeqRange{}, fmt.Errorf("reserve sequence numbers of %s: %w", id, err)
	}
	if len(res) != 2 || res[0] < 1 || res[1] < res[0] {
		return snapshot.SeqRange{}, fmt.Errorf("reserve sequence numbers of %s: unexpected reply %v", id, res)
	}
	return snapshot.SeqRange{First: uint64(res[0]), Last: uint64(res[1])}, nil
}

// High is the last number reserved for id by any replica, 0 if none: with
// Reserve it makes SeqAllocator a snapshot.SharedSeq.
func (a *SeqAllocator) High(ctx context.Context, id snapshot.SegmentID) (uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	v, err := a.rdb.Get(rctx, a.cfg.key(id, "seq")).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the sequence counter of %s: %w", id, err)
	}
	return v, nil
}

var _ snapshot.SharedSeq = (*SeqAllocator)(nil)
