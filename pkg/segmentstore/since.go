package segmentstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Since is a context key's place in one segment's member index: whether it
// is a member and, if known, the event that let it in.
type Since struct {
	// Member says whether the key is in the segment's member index.
	Member bool
	// Seq is the sequence number of the add that let the key in (the
	// first of its current stay); 0 when not known: the key joined before
	// since-tracking (or the segment's index is still in the set form).
	Seq uint64
	// Run is the run whose events Seq is one of, from the segment's run
	// index; "" when Seq is 0, or the run index was started after that run
	// (a segment upgraded mid-way).
	Run string
}

// Known says whether Seq (and so when the key joined) is recorded.
func (s Since) Known() bool { return s.Seq > 0 }

// JoinedSince reads, for each of refs, whether contextKey is a member of
// that segment under prefix and since which event and run (see Since), in
// two pipelines whatever the number of refs. It reads both forms of the
// member index (a hash of joining sequence numbers, or the set of older
// releases, whose members all read as joined before since-tracking).
func JoinedSince(ctx context.Context, c Client, prefix, contextKey string, refs []string) ([]Since, error) {
	out := make([]Since, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	pipe := c.Pipeline()
	seqs := make([]*redis.SliceCmd, len(refs))
	in := make([]*redis.BoolCmd, len(refs))
	for i, ref := range refs {
		key := bigsegments.MembersKey(prefix, ref)
		seqs[i] = pipe.HMGet(ctx, key, contextKey)
		in[i] = pipe.SIsMember(ctx, key, contextKey)
	}
	// WRONGTYPE is expected (the read of the other form); anything else
	// failed the pipeline.
	if _, err := pipe.Exec(ctx); err != nil && Classify(err) != ClassEvent {
		return nil, fmt.Errorf("read membership of context key %q under prefix %q: %w", contextKey, prefix, err)
	}
	var lookups []int
	for i, ref := range refs {
		hashErr, setErr := seqs[i].Err(), in[i].Err()
		switch {
		case hashErr == nil:
			v := seqs[i].Val()
			if len(v) != 1 || v[0] == nil {
				continue
			}
			str, _ := v[0].(string)
			n, err := strconv.ParseUint(str, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s field %q: %q is not a sequence number", bigsegments.MembersKey(prefix, ref), contextKey, str)
			}
			out[i] = Since{Member: true, Seq: n}
			if n > 0 {
				lookups = append(lookups, i)
			}
		case setErr == nil:
			out[i] = Since{Member: in[i].Val()}
		default:
			return nil, fmt.Errorf("read membership of context key %q in segment %q under prefix %q: %w", contextKey, ref, prefix,
				cmp.Or(hashErr, setErr))
		}
	}
	if len(lookups) == 0 {
		return out, nil
	}
	pipe = c.Pipeline()
	runs := make([]*redis.StringSliceCmd, len(lookups))
	for j, i := range lookups {
		runs[j] = pipe.ZRevRangeByLex(ctx, bigsegments.RunsKey(prefix, refs[i]), &redis.ZRangeBy{
			Max: "(" + bigsegments.PadSeq(out[i].Seq) + ";", Min: "-", Count: 1})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the run index of context key %q's segments under prefix %q: %w", contextKey, prefix, err)
	}
	for j, i := range lookups {
		if v := runs[j].Val(); len(v) == 1 {
			if _, run, ok := strings.Cut(v[0], ":"); ok {
				out[i].Run = run
			}
		}
	}
	return out, nil
}

// RunStart is where a run's events start in a segment's sequence numbers,
// as the run index recorded it.
type RunStart struct {
	Run      string
	FirstSeq uint64 // lowest sequence number of the run the consumer applied
}

// Runs returns ref's run index under prefix, oldest first: one entry per
// run whose events the Writer applied since the index exists, with the
// lowest start recorded for it.
func Runs(ctx context.Context, c Client, prefix, ref string) ([]RunStart, error) {
	pipe := c.Pipeline()
	cmd := pipe.ZRangeByLex(ctx, bigsegments.RunsKey(prefix, ref), &redis.ZRangeBy{Min: "-", Max: "+"})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the run index of segment %q under prefix %q: %w", ref, prefix, err)
	}
	out := make([]RunStart, 0, len(cmd.Val()))
	for _, m := range cmd.Val() {
		seq, run, ok := strings.Cut(m, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s member %q is not <seq>:<run>", bigsegments.RunsKey(prefix, ref), m)
		}
		if !slices.ContainsFunc(out, func(r RunStart) bool { return r.Run == run }) {
			out = append(out, RunStart{Run: run, FirstSeq: n}) // in seq order: the first is the lowest
		}
	}
	return out, nil
}
