package runstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

func ids(rs []Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID + " " + r.Destination
	}
	return out
}

// pages reads every page of q, limit records at a time.
func pages(t *testing.T, ctx context.Context, s *Store, q Query) ([]string, int) {
	t.Helper()
	var all []string
	n := 0
	for {
		p, err := s.Page(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n > 100 {
			t.Fatal("more than 100 pages")
		}
		all = append(all, ids(p.Records)...)
		if p.Next == "" {
			return all, n
		}
		q.Cursor = p.Next
	}
}

// TestPage: every page size gives the whole list, in order, once, even
// across the records of one run (equal start times); filters and the time
// range select; a scan limit ends a page early with a cursor to go on.
func TestPage(t *testing.T) {
	testenv.ForEachRedis(t, 30*time.Second, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
		s, err := New(b.Client, Config{Prefix: prefix + ":", Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		var want []Record
		for i := range 12 {
			r := record([]string{"beta", "power"}[i%2], "production", now.Add(-time.Duration(12-i)*time.Minute), producer.Succeeded)
			if i%3 == 0 {
				r.Trigger = "manual"
			}
			want = append(want, r)
			if i%4 == 0 { // the same run into a second destination: an equal start time
				r2 := r
				r2.Destination = "staging"
				want = append(want, r2)
			}
		}
		for _, r := range want {
			if err := s.Add(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		full, err := s.Page(ctx, Query{Limit: 100})
		if err != nil || full.Next != "" || len(full.Records) != len(want) {
			t.Fatalf("one page: %d records, next %q, %v", len(full.Records), full.Next, err)
		}
		order := ids(full.Records)
		if !slices.IsSortedFunc(full.Records, func(a, b Record) int { return b.Summary.Started.Compare(a.Summary.Started) }) {
			t.Fatalf("not newest first: %v", order)
		}
		for limit := 1; limit <= len(want)+1; limit++ {
			got, _ := pages(t, ctx, s, Query{Limit: limit})
			if !slices.Equal(got, order) {
				t.Fatalf("limit %d:\n%v\nwant\n%v", limit, got, order)
			}
		}
		filter := func(keep func(Record) bool) []string {
			var out []string
			for _, r := range full.Records {
				if keep(r) {
					out = append(out, r.ID+" "+r.Destination)
				}
			}
			return out
		}
		for _, tt := range []struct {
			name string
			q    Query
			keep func(Record) bool
		}{
			{"mapping", Query{Mapping: "beta"}, func(r Record) bool { return r.Mapping == "beta" }},
			{"destination", Query{Destination: "staging"}, func(r Record) bool { return r.Destination == "staging" }},
			{"trigger", Query{Trigger: "manual"}, func(r Record) bool { return r.Trigger == "manual" }},
			{"match", Query{Match: func(r Record) bool { return r.Mapping == "power" }}, func(r Record) bool { return r.Mapping == "power" }},
			{"since and until", Query{Since: now.Add(-8 * time.Minute), Until: now.Add(-3 * time.Minute)}, func(r Record) bool {
				return !r.Summary.Started.Before(now.Add(-8*time.Minute)) && r.Summary.Started.Before(now.Add(-3*time.Minute))
			}},
			{"all of them", Query{Mapping: "beta", Destination: "production", Trigger: "manual"}, func(r Record) bool {
				return r.Mapping == "beta" && r.Destination == "production" && r.Trigger == "manual"
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				for _, limit := range []int{1, 2, 100} {
					q := tt.q
					q.Limit = limit
					got, _ := pages(t, ctx, s, q)
					if w := filter(tt.keep); !slices.Equal(got, w) || len(w) == 0 {
						t.Fatalf("limit %d: %v, want %v", limit, got, w)
					}
				}
			})
		}
		// A scan limit: each page reads at most 3 entries, so the 3
		// staging records take many pages, each short, none lost.
		got, n := pages(t, ctx, s, Query{Destination: "staging", Limit: 10, MaxScan: 3})
		if w := filter(func(r Record) bool { return r.Destination == "staging" }); !slices.Equal(got, w) || n < len(want)/3 {
			t.Fatalf("max scan: %v in %d pages, want %v", got, n, w)
		}
		for _, bad := range []string{"!", "bm9zcGFjZQ", "eCB5"} {
			if _, err := s.Page(ctx, Query{Cursor: bad}); !errors.Is(err, ErrCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
	})
}
