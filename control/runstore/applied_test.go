package runstore

import (
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// TestUnappliedAndMarkApplied: published runs with a barrier wait in the
// unapplied index until marked; marking keeps the record's expiry, and a
// run without a barrier (unknown) or not published never waits.
func TestUnappliedAndMarkApplied(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Now()
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			s, err := New(b.Client, Config{Prefix: prefix, Retention: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			waiting := record("beta", "production", now.Add(-2*time.Minute), producer.Succeeded)
			waiting.Published, waiting.Topic, waiting.Barrier = now.Add(-time.Minute), "membership", map[int]int64{0: 4}
			nothingToWait := record("beta", "staging", now.Add(-2*time.Minute), producer.Succeeded)
			nothingToWait.ID, nothingToWait.Published, nothingToWait.Barrier = waiting.ID, now.Add(-time.Minute), map[int]int64{}
			unknown := record("power", "production", now.Add(-time.Minute), producer.Succeeded)
			unknown.Published = now
			failed := record("power", "production", now, producer.Failed)
			for _, r := range []Record{waiting, nothingToWait, unknown, failed} {
				if err := s.Add(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Unapplied(ctx, 10)
			if err != nil || len(got) != 2 || got[0].Destination != "production" && got[1].Destination != "production" {
				t.Fatalf("Unapplied = %+v, %v; want the two runs with a barrier", got, err)
			}
			if unknown.Status() != "published, not applied" || failed.Status() != "failed" {
				t.Fatalf("statuses %q, %q", unknown.Status(), failed.Status())
			}
			at := now.Add(time.Second)
			if first, err := s.MarkApplied(ctx, waiting, at, false); err != nil || !first {
				t.Fatalf("MarkApplied = %v, %v; want the first marking", first, err)
			}
			if first, err := s.MarkApplied(ctx, waiting, at, false); err != nil || first {
				t.Fatalf("MarkApplied again = %v, %v; want not the first (another replica marked it)", first, err)
			}
			if _, err := s.MarkApplied(ctx, nothingToWait, at, true); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Unapplied(ctx, 10); err != nil || len(got) != 0 {
				t.Fatalf("Unapplied after marking = %+v, %v", got, err)
			}
			rs, err := s.Get(ctx, waiting.ID)
			if err != nil || len(rs) != 2 {
				t.Fatalf("Get = %+v, %v", rs, err)
			}
			for _, r := range rs {
				want := map[string]string{"production": "applied", "staging": "set aside (destination unavailable; repaired by the next run)"}[r.Destination]
				if r.Status() != want {
					t.Fatalf("%s: status %q, want %q", r.Destination, r.Status(), want)
				}
			}
			if ttl := b.Client.TTL(ctx, prefix+"{runs}:run:"+waiting.ID+" production").Val(); ttl <= 0 || ttl > time.Hour {
				t.Fatalf("TTL after marking = %v, want the retention kept", ttl)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	published := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		r    Record
		want string
	}{
		{"failed", Record{Summary: producer.Summary{Outcome: producer.Failed}}, "failed"},
		{"refused by the shrink guard", Record{Summary: producer.Summary{Outcome: producer.Refused}}, "refused by guard"},
		{"published and waiting", Record{Summary: producer.Summary{Outcome: producer.Succeeded}, Published: published, Barrier: map[int]int64{}}, "published, not applied"},
		{"applied", Record{Summary: producer.Summary{Outcome: producer.Succeeded}, Published: published, Applied: published}, "applied"},
		{"applied with exclusions", Record{Summary: producer.Summary{Outcome: producer.Succeeded, Excluded: map[string]int64{"empty": 1}}, Published: published, Applied: published}, "applied, with exclusions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.r.Status(); got != c.want {
				t.Fatalf("Status = %q, want %q", got, c.want)
			}
		})
	}
}
