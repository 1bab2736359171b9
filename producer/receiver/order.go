package receiver

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// newerOnly keeps, of the keys ARGV[3..], those whose last recorded time
// in the hash KEYS[1] is at most ARGV[1] (or absent), records ARGV[1] for
// them, and returns their 0-based positions; the hash lives ARGV[2]
// milliseconds after its last change. Ties pass: a redelivery of the batch
// last applied applies again, harmlessly.
var newerOnly = redis.NewScript(`
local t = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local prev = redis.call('HGET', KEYS[1], ARGV[i])
  if not prev or tonumber(prev) <= t then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[1])
    out[#out + 1] = i - 3
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return out
`)

// dropStale removes from b the changes of keys that a batch computed later
// than b already changed, per key: the rule for partners that say when
// they computed a batch (Amplitude's cohort webhooks). It returns how many
// it removed.
func (r *Receiver) dropStale(ctx context.Context, id snapshot.SegmentID, b *Batch) (int, error) {
	key := fmt.Sprintf("%s{push:%s/%s/%d/%s}:computed", r.prefix,
		url.QueryEscape(id.Env), url.QueryEscape(id.Segment), id.Generation, url.QueryEscape(id.ContextKind))
	args := make([]any, 0, 2+b.Members())
	args = append(args, strconv.FormatInt(b.Time.Unix(), 10), r.cfg.DedupTTL.Milliseconds())
	for _, k := range b.Adds {
		args = append(args, k)
	}
	for _, k := range b.Removes {
		args = append(args, k)
	}
	keep, err := newerOnly.Run(ctx, r.dedup, []string{key}, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("order by computed_time: %w", err)
	}
	if len(keep) == b.Members() {
		return 0, nil
	}
	var adds, removes []string
	for _, i := range keep {
		if int(i) < len(b.Adds) {
			adds = append(adds, b.Adds[i])
		} else {
			removes = append(removes, b.Removes[int(i)-len(b.Adds)])
		}
	}
	dropped := b.Members() - len(keep)
	b.Adds, b.Removes = adds, removes
	return dropped, nil
}
