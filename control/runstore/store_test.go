package runstore

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

func record(mapping, dest string, started time.Time, outcome producer.Outcome) Record {
	return Record{ID: producer.NewRunID(started), Mapping: mapping, Destination: dest, Trigger: "scheduled",
		Summary: producer.Summary{Started: started, Outcome: outcome, Added: 3, Segment: mapping}}
}

// TestStore: runs are listed newest first, by mapping, found by id across
// their destinations, and forgotten after the retention without a scan.
func TestStore(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			s, err := New(b.Client, Config{Prefix: prefix, Retention: 48 * time.Hour, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			old := record("beta", "production", now.Add(-72*time.Hour), producer.Succeeded)
			r1 := record("beta", "production", now.Add(-2*time.Hour), producer.Succeeded)
			r1s := r1
			r1s.Destination = "staging"
			r2 := record("power", "production", now.Add(-time.Hour), producer.Failed)
			r3 := record("beta", "production", now.Add(-time.Minute), producer.Refused)
			for _, r := range []Record{old, r1, r1s, r2, r3} {
				if err := s.Add(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			ids := func(rs []Record) []string {
				var out []string
				for _, r := range rs {
					out = append(out, r.Mapping+"/"+r.Destination+"/"+string(r.Summary.Outcome))
				}
				return out
			}
			all, err := s.List(ctx, Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ids(all), []string{"beta/production/refused", "power/production/failed", "beta/staging/succeeded", "beta/production/succeeded"}; !slices.Equal(got, want) {
				t.Fatalf("List = %q, want %q (newest first, the 72h-old run past the retention)", got, want)
			}
			beta, err := s.List(ctx, Filter{Mapping: "beta", Limit: 2})
			if err != nil || len(beta) != 2 || beta[0].ID != r3.ID {
				t.Fatalf("List(beta, 2) = %q, %v", ids(beta), err)
			}
			got, err := s.Get(ctx, r1.ID)
			if err != nil || len(got) != 2 || got[0].Summary.Added != 3 {
				t.Fatalf("Get(%s) = %+v, %v; want its two destinations", r1.ID, got, err)
			}
			if _, err := s.Get(ctx, old.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a run past the retention = %v, want ErrNotFound", err)
			}
			if _, err := s.Get(ctx, "nonsense"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(nonsense) = %v, want ErrNotFound", err)
			}
			if n, err := b.Client.ZCard(ctx, prefix+"{runs}:by-start").Result(); err != nil || n != 4 {
				t.Fatalf("index holds %d, %v; want the 4 runs within the retention (the old one trimmed at the next write)", n, err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "defaults", Change: func(*Config) {}},
		{Name: "a retention under a minute", Change: func(c *Config) { c.Retention = time.Second }, Want: `--runs-retention="1s": want a duration of at least 1m`},
		{Name: "a negative exclusions limit", Change: func(c *Config) { c.MaxExclusions = -1 }, Want: `--runs-max-exclusions="-1": want a number of rows, 0 for the default 1000000`},
		{Name: "a prefix with a brace", Change: func(c *Config) { c.Prefix = "a{" }, Want: `--control-prefix="a{": want a key prefix without '{' or '}'`},
	})
}
