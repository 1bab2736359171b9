package catalogstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func eachRedis(t *testing.T, test func(t *testing.T, s *Store, b testenv.RedisBackend)) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, err := New(b.Client, Config{Prefix: testenv.Name(t) + ":"})
			if err != nil {
				t.Fatal(err)
			}
			test(t, s, b)
		})
	}
}

// example is the complete example file of package catalog: four mappings,
// one paused, with every kind of source and schedule.
func example(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load("../catalog/testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustApply(t *testing.T, s *Store, c *catalog.Catalog) []Result {
	t.Helper()
	res, err := s.Apply(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func results(c Change, names ...string) []Result {
	out := make([]Result, len(names))
	for i, n := range names {
		out[i] = Result{Name: n, Change: c}
	}
	return out
}

var exampleNames = []string{"beta-testers", "launch-list", "partner-push", "power-users"}

func TestApplyTwiceIsUnchangedAndListRoundTrips(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		c := example(t)
		if got, want := mustApply(t, s, c), results(Created, exampleNames...); !reflect.DeepEqual(got, want) {
			t.Errorf("first apply = %v, want %v", got, want)
		}
		if got, want := mustApply(t, s, c), results(Unchanged, exampleNames...); !reflect.DeepEqual(got, want) {
			t.Errorf("second apply = %v, want %v", got, want)
		}
		got, err := s.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.Mappings) {
			t.Errorf("List =\n%+v\nwant\n%+v", got, c.Mappings)
		}
		m, err := s.Get(t.Context(), "beta-testers")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, c.Mappings[0]) || m.Schedule.Cron() == nil {
			t.Errorf("Get = %+v, want %+v with its cron parsed", m, c.Mappings[0])
		}
		if _, err := s.Get(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(nope) = %v, want ErrNotFound", err)
		}
	})
}

func TestApplyReportsOneUpdatedAndKeepsMappingsNotInFile(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		mustApply(t, s, example(t))
		c := example(t)
		c.Mappings[3].MaxShrink = 0.25                         // power-users changed
		c.Mappings = append(c.Mappings[:1], c.Mappings[2:]...) // launch-list dropped from the file
		want := []Result{{"beta-testers", Unchanged}, {"partner-push", Unchanged}, {"power-users", Updated}, {"launch-list", NotInFile}}
		if got := mustApply(t, s, c); !reflect.DeepEqual(got, want) {
			t.Errorf("apply = %v, want %v", got, want)
		}
		if m, err := s.Get(t.Context(), "power-users"); err != nil || m.MaxShrink != 0.25 {
			t.Errorf("Get(power-users) = %+v, %v; want max shrink 0.25", m, err)
		}
		if _, err := s.Get(t.Context(), "launch-list"); err != nil {
			t.Errorf("a mapping missing from the file was deleted: %v", err)
		}
	})
}

func TestPauseResumeChangeOnlyTheFlag(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		c := example(t)
		mustApply(t, s, c)
		ctx := t.Context()
		for _, step := range []struct {
			name    string
			op      func(*Store) (Change, error)
			want    Change
			enabled bool
		}{
			{"pause", func(s *Store) (Change, error) { return s.Pause(ctx, "power-users") }, Updated, false},
			{"pause again", func(s *Store) (Change, error) { return s.Pause(ctx, "power-users") }, Unchanged, false},
			{"resume", func(s *Store) (Change, error) { return s.Resume(ctx, "power-users") }, Updated, true},
			{"resume again", func(s *Store) (Change, error) { return s.Resume(ctx, "power-users") }, Unchanged, true},
		} {
			got, err := step.op(s)
			if err != nil || got != step.want {
				t.Fatalf("%s = %v, %v; want %v", step.name, got, err, step.want)
			}
			m, err := s.Get(ctx, "power-users")
			if err != nil {
				t.Fatal(err)
			}
			want := c.Mappings[3]
			want.Enabled = step.enabled
			if !reflect.DeepEqual(m, want) {
				t.Errorf("after %s: %+v, want %+v", step.name, m, want)
			}
		}
		if _, err := s.Pause(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Pause(nope) = %v, want ErrNotFound", err)
		}
		if _, err := s.Pause(ctx, "power-users"); err != nil {
			t.Fatal(err)
		}
		// The file is the declaration: applying it sets the flag back.
		if got := mustApply(t, s, c); got[3] != (Result{"power-users", Updated}) {
			t.Errorf("apply after pause = %v, want power-users updated", got)
		}
	})
}

func TestDelete(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		mustApply(t, s, example(t))
		if err := s.Delete(t.Context(), "launch-list"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), "launch-list"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(t.Context(), "launch-list"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
		if got := mustApply(t, s, example(t)); got[1] != (Result{"launch-list", Created}) {
			t.Errorf("apply after delete = %v, want launch-list created", got)
		}
	})
}

func TestCorruptRecordIsAnErrorNamingTheKey(t *testing.T) {
	valid := encode(catalog.Mapping{Name: "m", Source: catalog.Source{Kind: catalog.SourcePush}, Segment: "s",
		Destinations: []string{"d"}, IDProperty: "user_id", ContextKind: "user", Schedule: catalog.Schedule{Kind: catalog.ScheduleOnPush}, Generation: 1, Enabled: true})
	tests := []struct {
		name, record, problem string
	}{
		{"not JSON", "{truncated", "not a JSON record"},
		{"another version", strings.Replace(valid, `"version":1`, `"version":2`, 1), "version 2, want 1"},
		{"edited so the hash no longer matches", strings.Replace(valid, `"segment":"s"`, `"segment":"t"`, 1), "content hash"},
		{"an invalid schedule", strings.Replace(valid, `"schedule":"on-push"`, `"schedule":"weekly"`, 1), `schedule "weekly"`},
		{"another mapping's record", strings.Replace(valid, `"name":"m"`, `"name":"x"`, 1), `holds mapping "x"`},
	}
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		key := s.cfg.mappingsKey()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := b.Client.HSet(t.Context(), key, "m", tt.record).Err(); err != nil {
					t.Fatal(err)
				}
				_, getErr := s.Get(t.Context(), "m")
				_, listErr := s.List(t.Context())
				_, pauseErr := s.Pause(t.Context(), "m")
				for op, err := range map[string]error{"Get": getErr, "List": listErr, "Pause": pauseErr} {
					var ce *CorruptError
					if !errors.As(err, &ce) || ce.Key != key || ce.Field != "m" || !strings.Contains(ce.Problem, tt.problem) {
						t.Errorf("%s = %v, want a CorruptError of %s field m containing %q", op, err, key, tt.problem)
					}
					if err != nil && !strings.Contains(err.Error(), key) {
						t.Errorf("%s error %q does not name the key", op, err)
					}
				}
			})
		}
		if err := b.Client.HSet(t.Context(), key, "m", valid).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(t.Context(), "m"); err != nil {
			t.Errorf("the valid record the cases were made from: %v", err)
		}
	})
}
