package runstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Query selects a page of runs for Page: the runs started in [Since,
// Until) that pass every filter set, newest first.
type Query struct {
	Mapping     string
	Destination string
	Trigger     string
	// Match, when set, keeps the records it returns true for (the API's
	// state filter).
	Match func(Record) bool
	// Since and Until bound the start time; zero is unbounded (Since is
	// then the retention's cutoff).
	Since, Until time.Time
	// Cursor continues after the last page (Page.Next); "" starts at the
	// newest run.
	Cursor string
	// Limit is the most records returned. Default 50.
	Limit int
	// MaxScan bounds the index entries one page reads, so a filter that
	// matches little costs a bounded amount: the page then holds fewer
	// than Limit records and a Next to go on. Default DefaultMaxScan.
	MaxScan int
}

// DefaultMaxScan is Query.MaxScan's default.
const DefaultMaxScan = 5000

// ErrCursor is wrapped by Page's error for a cursor it did not make.
var ErrCursor = errors.New("not a cursor of this list")

// Page is one page of runs and where the next starts ("" for none).
type Page struct {
	Records []Record
	Next    string
}

// position is a place in an index: a score and a member; a cursor is the
// position of the last entry a page looked at.
type position struct {
	score  int64
	member string
}

func (p position) cursor() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.score, 10) + " " + p.member))
}

func parseCursor(c string) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return position{}, ErrCursor
	}
	score, member, ok := strings.Cut(string(b), " ")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || err != nil || member == "" {
		return position{}, ErrCursor
	}
	return position{n, member}, nil
}

// Page returns the runs of q, newest first, and the cursor of the next
// page. Entries of equal start time come in reverse order of their
// member (run id and destination), so a cursor places a page exactly
// even between the records of one run.
func (s *Store) Page(ctx context.Context, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	maxScan := q.MaxScan
	if maxScan <= 0 {
		maxScan = DefaultMaxScan
	}
	var after *position
	if q.Cursor != "" {
		p, err := parseCursor(q.Cursor)
		if err != nil {
			return Page{}, fmt.Errorf("runstore: cursor %q: %w", q.Cursor, err)
		}
		after = &p
	}
	key := s.indexKey()
	if q.Mapping != "" {
		key = s.mappingKey(q.Mapping)
	}
	minScore := s.cfg.Now().Add(-s.cfg.Retention).UnixMilli()
	if !q.Since.IsZero() {
		minScore = max(minScore, q.Since.UnixMilli())
	}
	maxArg := "+inf"
	if !q.Until.IsZero() {
		maxArg = fmt.Sprintf("(%d", q.Until.UnixMilli())
	}
	if after != nil {
		if q.Until.IsZero() || after.score < q.Until.UnixMilli() {
			maxArg = strconv.FormatInt(after.score, 10)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var (
		out     Page
		scanned int
		last    *position
		offset  int64
	)
	batch := int64(min(max(2*limit, 100), maxScan))
	for scanned < maxScan {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: maxArg, Min: strconv.FormatInt(minScore, 10), Offset: offset, Count: batch}).Result()
		if err != nil {
			return Page{}, fmt.Errorf("runstore: list runs: %w", err)
		}
		offset += int64(len(zs))
		var (
			members   []string
			positions []position
			stopped   bool
		)
		for _, z := range zs {
			m, _ := z.Member.(string)
			p := position{int64(z.Score), m}
			if after != nil && p.score == after.score && m >= after.member {
				continue // on the last page already
			}
			scanned++
			last = &p
			if q.Destination == "" || strings.HasSuffix(m, " "+q.Destination) {
				members = append(members, m)
				positions = append(positions, p)
			}
			if scanned >= maxScan {
				stopped = true
				break
			}
		}
		recs, err := s.getMany(ctx, members)
		if err != nil {
			return Page{}, err
		}
		for i, r := range recs {
			if r == nil || (q.Trigger != "" && r.Trigger != q.Trigger) || (q.Match != nil && !q.Match(*r)) {
				continue
			}
			out.Records = append(out.Records, *r)
			if len(out.Records) == limit {
				p := positions[i]
				return Page{Records: out.Records, Next: p.cursor()}, nil
			}
		}
		if stopped {
			break
		}
		if int64(len(zs)) < batch {
			return out, nil // the end of the index
		}
	}
	if last != nil {
		out.Next = last.cursor()
	}
	return out, nil
}

// getMany reads the records of members in one round trip; one that
// expired since the index was read is nil.
func (s *Store) getMany(ctx context.Context, members []string) ([]*Record, error) {
	if len(members) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(members))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			cmds[i] = p.Get(ctx, s.runKey(m))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("runstore: read runs: %w", err)
	}
	out := make([]*Record, len(members))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("runstore: read %s: %w", s.runKey(members[i]), err)
		}
		r, err := decodeRecord(s.runKey(members[i]), b)
		if err != nil {
			return nil, err
		}
		out[i] = &r
	}
	return out, nil
}
