package catalogstore

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/redisx"
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

func results(k Kind, c Change, names ...string) []Result {
	out := make([]Result, len(names))
	for i, n := range names {
		out[i] = Result{Kind: k, Name: n, Change: c}
	}
	return out
}

var (
	exampleNames     = []string{"beta-testers", "launch-list", "partner-push", "power-users"}
	exampleDestNames = []string{"production", "qa", "staging"}
)

// applied is the result of applying the example with every entry c.
func applied(c Change) []Result {
	out := append(results(KindDestination, c, exampleDestNames...), results(KindAmplitudeProject, c, "main")...)
	return append(out, results(KindMapping, c, exampleNames...)...)
}

func mustVersion(t *testing.T, s *Store) uint64 {
	t.Helper()
	v, err := s.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApplyTwiceIsUnchangedAndEveryReadRoundTrips(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		c := example(t)
		if v := mustVersion(t, s); v != 0 {
			t.Errorf("version of an empty store = %d, want 0", v)
		}
		if got, want := mustApply(t, s, c), applied(Created); !reflect.DeepEqual(got, want) {
			t.Errorf("first apply = %v, want %v", got, want)
		}
		if v := mustVersion(t, s); v != 1 {
			t.Errorf("version after the first apply = %d, want 1", v)
		}
		if got, want := mustApply(t, s, c), applied(Unchanged); !reflect.DeepEqual(got, want) {
			t.Errorf("second apply = %v, want %v", got, want)
		}
		if v := mustVersion(t, s); v != 1 {
			t.Errorf("version after an apply that changed nothing = %d, want 1", v)
		}
		got, err := s.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.Mappings) {
			t.Errorf("List =\n%+v\nwant\n%+v", got, c.Mappings)
		}
		dests, err := s.Destinations(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dests, c.Destinations) {
			t.Errorf("Destinations =\n%+v\nwant\n%+v", dests, c.Destinations)
		}
		all, err := s.Catalog(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(all, c) {
			t.Errorf("Catalog =\n%+v\nwant\n%+v", all, c)
		}
		m, err := s.Get(t.Context(), "beta-testers")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, c.Mappings[0]) || m.Schedule.Cron() == nil {
			t.Errorf("Get = %+v, want %+v with its cron parsed", m, c.Mappings[0])
		}
		d, err := s.Destination(t.Context(), "staging")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d, c.Destinations[2]) {
			t.Errorf("Destination(staging) = %+v, want %+v", d, c.Destinations[2])
		}
		for op, err := range map[string]error{
			"Get":         func() error { _, err := s.Get(t.Context(), "nope"); return err }(),
			"Destination": func() error { _, err := s.Destination(t.Context(), "production-eu"); return err }(),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s of a name not stored = %v, want ErrNotFound", op, err)
			}
		}
		_, err = s.Destination(t.Context(), "production-eu")
		if want := `catalogstore: destination "production-eu": not found`; err == nil || err.Error() != want {
			t.Errorf("Destination(production-eu) = %v, want %q", err, want)
		}
	})
}

func TestAnEmptyStoreReadsEmpty(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		c, err := s.Catalog(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if want := (&catalog.Catalog{Destinations: []catalog.Destination{}, Mappings: []catalog.Mapping{}, AmplitudeProjects: []catalog.AmplitudeProject{}}); !reflect.DeepEqual(c, want) {
			t.Errorf("Catalog = %+v, want three empty lists", c)
		}
	})
}

func TestApplyReportsWhatChangedAndKeepsEntriesNotInFile(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		mustApply(t, s, example(t))
		c := example(t)
		c.Mappings[3].MaxShrink = 0.25                         // power-users changed
		c.Mappings = append(c.Mappings[:1], c.Mappings[2:]...) // launch-list dropped from the file
		c.Destinations[2].FanIn = true                         // staging changed
		// qa dropped from the file: partner-push still names it, and that
		// is fine, since it is stored.
		c.Destinations = append(c.Destinations[:1], c.Destinations[2:]...)
		want := []Result{
			{KindDestination, "production", Unchanged}, {KindDestination, "staging", Updated}, {KindDestination, "qa", NotInFile},
			{KindAmplitudeProject, "main", Unchanged},
			{KindMapping, "beta-testers", Unchanged}, {KindMapping, "partner-push", Unchanged}, {KindMapping, "power-users", Updated}, {KindMapping, "launch-list", NotInFile},
		}
		if got := mustApply(t, s, c); !reflect.DeepEqual(got, want) {
			t.Errorf("apply = %v, want %v", got, want)
		}
		if v := mustVersion(t, s); v != 2 {
			t.Errorf("version = %d, want 2: one per apply that changed something", v)
		}
		if m, err := s.Get(t.Context(), "power-users"); err != nil || m.MaxShrink != 0.25 {
			t.Errorf("Get(power-users) = %+v, %v; want max shrink 0.25", m, err)
		}
		if d, err := s.Destination(t.Context(), "staging"); err != nil || !d.FanIn {
			t.Errorf("Destination(staging) = %+v, %v; want fan-in", d, err)
		}
		if _, err := s.Get(t.Context(), "launch-list"); err != nil {
			t.Errorf("a mapping missing from the file was deleted: %v", err)
		}
		if _, err := s.Destination(t.Context(), "qa"); err != nil {
			t.Errorf("a destination missing from the file was deleted: %v", err)
		}
	})
}

func TestApplyRefusesAMappingNamingNoDestinationAndWritesNothing(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		c := example(t)
		c.Destinations = c.Destinations[:1] // production only: staging and qa are nowhere
		_, err := s.Apply(t.Context(), c)
		var me *MissingDestinationError
		if !errors.As(err, &me) {
			t.Fatalf("Apply = %v, want a *MissingDestinationError", err)
		}
		want := map[string][]string{"beta-testers": {"staging"}, "partner-push": {"qa"}, "power-users": {"staging"}}
		if !reflect.DeepEqual(me.Missing, want) {
			t.Errorf("missing = %v, want %v", me.Missing, want)
		}
		if got, wantText := err.Error(), `catalogstore: apply refused, nothing stored: mapping "beta-testers" names destination "staging", neither applied nor stored; `+
			`mapping "partner-push" names destination "qa", neither applied nor stored; mapping "power-users" names destination "staging", neither applied nor stored`; got != wantText {
			t.Errorf("error\n%s\nwant\n%s", got, wantText)
		}
		for _, key := range []string{s.cfg.destinationsKey(), s.cfg.mappingsKey(), s.cfg.versionKey()} {
			if n, err := b.Client.Exists(t.Context(), key).Result(); err != nil || n != 0 {
				t.Errorf("%s exists (%d, %v) after a refused apply", key, n, err)
			}
		}
		// Once staging and qa are stored, the same catalog applies: a
		// mapping may name a stored destination its file lacks.
		mustApply(t, s, example(t))
		if got := mustApply(t, s, c); !reflect.DeepEqual(got[:3], []Result{{KindDestination, "production", Unchanged},
			{KindDestination, "qa", NotInFile}, {KindDestination, "staging", NotInFile}}) {
			t.Errorf("apply naming stored destinations = %v", got)
		}
	})
}

func TestApplyRefusesAMappingNamingNoProjectAndWritesNothing(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		c := example(t)
		c.AmplitudeProjects = nil
		_, err := s.Apply(t.Context(), c)
		var me *MissingProjectError
		if !errors.As(err, &me) || !reflect.DeepEqual(me.Missing, map[string]string{"power-users": "main"}) {
			t.Fatalf("Apply = %v, want a *MissingProjectError for power-users", err)
		}
		if want := `catalogstore: apply refused, nothing stored: mapping "power-users" names amplitude project "main", neither applied nor stored`; err.Error() != want {
			t.Errorf("error\n%s\nwant\n%s", err, want)
		}
		for _, key := range []string{s.cfg.destinationsKey(), s.cfg.mappingsKey(), s.cfg.versionKey(), s.cfg.projectsKey()} {
			if n, err := b.Client.Exists(t.Context(), key).Result(); err != nil || n != 0 {
				t.Errorf("%s exists (%d, %v) after a refused apply", key, n, err)
			}
		}
		// Once the project is stored, a file without it applies.
		mustApply(t, s, example(t))
		if got := mustApply(t, s, c); got[3] != (Result{KindAmplitudeProject, "main", NotInFile}) {
			t.Errorf("apply naming a stored project = %v", got)
		}
		p, err := s.AmplitudeProject(t.Context(), "main")
		if want, _ := example(t).AmplitudeProject("main"); err != nil || !reflect.DeepEqual(p, want) {
			t.Errorf("AmplitudeProject(main) = %+v, %v; want %+v", p, err, want)
		}
		if _, err := s.AmplitudeProject(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("AmplitudeProject(nope) = %v, want ErrNotFound", err)
		}
		ps, err := s.AmplitudeProjects(t.Context())
		if err != nil || len(ps) != 1 || ps[0].Name != "main" {
			t.Errorf("AmplitudeProjects = %+v, %v", ps, err)
		}
		raw, err := b.Client.HGet(t.Context(), s.cfg.projectsKey(), "main").Result()
		if err != nil || !strings.Contains(raw, `"api_key_env":"AMPLITUDE_API_KEY"`) {
			t.Errorf("record of main = %s, %v; want its key reference", raw, err)
		}
	})
}

func TestSecretsAreNotStored(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		c := example(t)
		// A password set by code rather than decoded from a file.
		c.Destinations[1].Redis.Password = "s3cret"
		mustApply(t, s, c)
		raw, err := b.Client.HGetAll(t.Context(), s.cfg.destinationsKey()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 3 {
			t.Fatalf("%d destination records, want 3", len(raw))
		}
		for name, rec := range raw {
			if strings.Contains(rec, "s3cret") {
				t.Errorf("record of %s holds the password: %s", name, rec)
			}
		}
		if !strings.Contains(raw["production"], `"password_env":"PRODUCTION_REDIS_PASSWORD"`) {
			t.Errorf("record of production lacks its password reference: %s", raw["production"])
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
			version uint64
		}{
			{"pause", func(s *Store) (Change, error) { return s.Pause(ctx, "power-users") }, Updated, false, 2},
			{"pause again", func(s *Store) (Change, error) { return s.Pause(ctx, "power-users") }, Unchanged, false, 2},
			{"resume", func(s *Store) (Change, error) { return s.Resume(ctx, "power-users") }, Updated, true, 3},
			{"resume again", func(s *Store) (Change, error) { return s.Resume(ctx, "power-users") }, Unchanged, true, 3},
		} {
			got, err := step.op(s)
			if err != nil || got != step.want {
				t.Fatalf("%s = %v, %v; want %v", step.name, got, err, step.want)
			}
			want := c.Mappings[3]
			want.Enabled = step.enabled
			wantStored(t, s, want, step.version, step.name)
		}
		if _, err := s.Pause(ctx, "nope"); !errors.Is(err, ErrNotFound) || err.Error() != `catalogstore: mapping "nope": not found` {
			t.Errorf("Pause(nope) = %v, want ErrNotFound naming the mapping", err)
		}
		if _, err := s.Pause(ctx, "power-users"); err != nil {
			t.Fatal(err)
		}
		// The file is the declaration: applying it sets the flag back.
		if got := mustApply(t, s, c); got[7] != (Result{KindMapping, "power-users", Updated}) {
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
		if v := mustVersion(t, s); v != 2 {
			t.Errorf("version after delete = %d, want 2", v)
		}
		if _, err := s.Get(t.Context(), "launch-list"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Delete(t.Context(), "launch-list"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
		if v := mustVersion(t, s); v != 2 {
			t.Errorf("version after deleting nothing = %d, want 2", v)
		}
		if got := mustApply(t, s, example(t)); got[5] != (Result{KindMapping, "launch-list", Created}) {
			t.Errorf("apply after delete = %v, want launch-list created", got)
		}
	})
}

func TestDeleteDestinationRefusedWhileAMappingNamesIt(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		ctx := t.Context()
		mustApply(t, s, example(t))
		err := s.DeleteDestination(ctx, "production")
		var iu *InUseError
		if !errors.As(err, &iu) || !reflect.DeepEqual(iu.Mappings, []string{"launch-list", "power-users"}) {
			t.Fatalf("DeleteDestination(production) = %v, want an *InUseError naming launch-list and power-users", err)
		}
		if want := `catalogstore: destination "production" is used by mapping "launch-list", "power-users": delete them or change their destinations first`; err.Error() != want {
			t.Errorf("error %q\nwant %q", err, want)
		}
		if _, err := s.Destination(ctx, "production"); err != nil {
			t.Errorf("a refused delete removed the destination: %v", err)
		}
		if v := mustVersion(t, s); v != 1 {
			t.Errorf("version after a refused delete = %d, want 1", v)
		}
		for _, m := range []string{"launch-list", "power-users"} {
			if err := s.Delete(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteDestination(ctx, "production"); err != nil {
			t.Fatalf("DeleteDestination once unused = %v", err)
		}
		if v := mustVersion(t, s); v != 4 {
			t.Errorf("version = %d, want 4: apply, two deletes, one destination delete", v)
		}
		if _, err := s.Destination(ctx, "production"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Destination after its delete = %v, want ErrNotFound", err)
		}
		err = s.DeleteDestination(ctx, "production")
		if !errors.Is(err, ErrNotFound) || err.Error() != `catalogstore: destination "production": not found` {
			t.Errorf("second DeleteDestination = %v, want ErrNotFound naming the destination", err)
		}
	})
}

// TestDeleteDestinationRacingApplyNeverLeavesAMappingDangling runs a
// destination's delete against applies of a mapping naming it: whichever
// wins, a stored mapping's destination is stored.
func TestDeleteDestinationRacingApplyNeverLeavesAMappingDangling(t *testing.T) {
	both, err := catalog.Decode("race.yaml", []byte("destinations:\n  - {name: d, redis: {url: \"redis://h:1\"}}\n"+
		"mappings:\n  - {name: m, source: {csv: a.csv}, segment: s, destinations: [d], schedule: daily}\n"))
	if err != nil {
		t.Fatal(err)
	}
	onlyMapping := &catalog.Catalog{Destinations: []catalog.Destination{}, Mappings: both.Mappings}
	eachRedis(t, func(t *testing.T, s *Store, _ testenv.RedisBackend) {
		ctx := t.Context()
		for range 20 {
			mustApply(t, s, &catalog.Catalog{Destinations: both.Destinations, Mappings: []catalog.Mapping{}})
			var wg sync.WaitGroup
			wg.Add(2)
			var delErr, applyErr error
			go func() {
				defer wg.Done()
				delErr = s.DeleteDestination(ctx, "d")
			}()
			go func() {
				defer wg.Done()
				_, applyErr = s.Apply(ctx, onlyMapping)
			}()
			wg.Wait()
			var iu *InUseError
			var me *MissingDestinationError
			if delErr != nil && !errors.As(delErr, &iu) || applyErr != nil && !errors.As(applyErr, &me) {
				t.Fatalf("delete: %v; apply: %v", delErr, applyErr)
			}
			c, err := s.Catalog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Mappings) == 1 && len(c.Destinations) == 0 {
				t.Fatalf("mapping m stored without its destination (delete: %v, apply: %v)", delErr, applyErr)
			}
			if len(c.Mappings) == 1 {
				if err := s.Delete(ctx, "m"); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestCorruptRecordIsAnErrorNamingTheKey(t *testing.T) {
	valid := encode(catalog.Mapping{Name: "m", Source: catalog.Source{Kind: catalog.SourcePush}, Segment: "s",
		Destinations: []string{"d"}, IDProperty: "user_id", ContextKind: "user", Schedule: catalog.Schedule{Kind: catalog.ScheduleOnPush}, Generation: 1, Enabled: true})
	validDest := encodeDestination(catalog.Destination{Name: "m", Environment: "m", Redis: redisx.Config{URL: "redis://h:1"}, PrefixMode: catalog.PrefixDefault})
	tests := []struct {
		name, record, problem string
		destination           bool // stored as a destination, not a mapping
	}{
		{"not JSON", "{truncated", "not a JSON record", false},
		{"another version", strings.Replace(valid, `"version":1`, `"version":2`, 1), "version 2, want 1", false},
		{"edited so the hash no longer matches", strings.Replace(valid, `"segment":"s"`, `"segment":"t"`, 1), "content hash", false},
		{"an invalid schedule", strings.Replace(valid, `"schedule":"on-push"`, `"schedule":"weekly"`, 1), `schedule "weekly"`, false},
		{"another mapping's record", strings.Replace(valid, `"name":"m"`, `"name":"x"`, 1), `holds mapping "x"`, false},
		{"a destination's record among mappings", validDest, "want a record of one mapping", false},
		{"a destination edited so the hash no longer matches", strings.Replace(validDest, `"redis://h:1"`, `"redis://h:2"`, 1), "content hash", true},
		{"another destination's record", strings.Replace(validDest, `"name":"m"`, `"name":"x"`, 1), `holds destination "x"`, true},
		{"a mapping's record among destinations", valid, "want a record of one destination", true},
		{"a destination of another version", strings.Replace(validDest, `"version":1`, `"version":0`, 1), "version 0, want 1", true},
	}
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key, other, otherRecord := s.cfg.mappingsKey(), s.cfg.destinationsKey(), validDest
				if tt.destination {
					key, other, otherRecord = other, key, valid
				}
				if err := b.Client.HSet(t.Context(), key, "m", tt.record).Err(); err != nil {
					t.Fatal(err)
				}
				if err := b.Client.HSet(t.Context(), other, "m", otherRecord).Err(); err != nil {
					t.Fatal(err)
				}
				ops := map[string]error{"Catalog": func() error { _, err := s.Catalog(t.Context()); return err }()}
				if tt.destination {
					ops["Destination"] = func() error { _, err := s.Destination(t.Context(), "m"); return err }()
					ops["Destinations"] = func() error { _, err := s.Destinations(t.Context()); return err }()
				} else {
					ops["Get"] = func() error { _, err := s.Get(t.Context(), "m"); return err }()
					ops["List"] = func() error { _, err := s.List(t.Context()); return err }()
					ops["Pause"] = func() error { _, err := s.Pause(t.Context(), "m"); return err }()
					ops["DeleteDestination"] = s.DeleteDestination(t.Context(), "m")
				}
				for op, err := range ops {
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
		if err := b.Client.HSet(t.Context(), s.cfg.mappingsKey(), "m", valid).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.HSet(t.Context(), s.cfg.destinationsKey(), "m", validDest).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Catalog(t.Context()); err != nil {
			t.Errorf("the valid records the cases were made from: %v", err)
		}
	})
}

func TestCorruptProjectRecordIsAnErrorNamingTheKey(t *testing.T) {
	valid := encodeProject(catalog.AmplitudeProject{Name: "p", Region: catalog.AmplitudeEU, BaseURL: catalog.AmplitudeBaseURLs[catalog.AmplitudeEU],
		APIKey: catalog.SecretRef{Env: "K"}, SecretKey: catalog.SecretRef{File: "/s"}})
	for _, tt := range []struct{ name, record, problem string }{
		{"edited so the hash no longer matches", strings.Replace(valid, `"secret_key_file":"/s"`, `"secret_key_file":"/t"`, 1), "content hash"},
		{"another project's record", strings.Replace(valid, `"name":"p"`, `"name":"x"`, 1), `holds amplitude_project "x"`},
		{"a mapping's record among projects", strings.Replace(valid, `"amplitude_project":`, `"mapping":`, 1), "want a record of one amplitude_project"},
		{"the valid record", valid, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
				key := s.cfg.projectsKey()
				if err := b.Client.HSet(t.Context(), key, "p", tt.record).Err(); err != nil {
					t.Fatal(err)
				}
				ops := map[string]error{
					"Catalog":           func() error { _, err := s.Catalog(t.Context()); return err }(),
					"AmplitudeProject":  func() error { _, err := s.AmplitudeProject(t.Context(), "p"); return err }(),
					"AmplitudeProjects": func() error { _, err := s.AmplitudeProjects(t.Context()); return err }(),
				}
				for op, err := range ops {
					var ce *CorruptError
					switch {
					case tt.problem == "" && err != nil:
						t.Errorf("%s = %v", op, err)
					case tt.problem != "" && (!errors.As(err, &ce) || ce.Key != key || ce.Field != "p" || !strings.Contains(ce.Problem, tt.problem)):
						t.Errorf("%s = %v, want a CorruptError of %s field p containing %q", op, err, key, tt.problem)
					}
				}
			})
		})
	}
}

func TestCorruptVersionIsAnErrorNamingTheKey(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		if err := b.Client.Set(t.Context(), s.cfg.versionKey(), "many", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Version(t.Context()); err == nil || !strings.Contains(err.Error(), s.cfg.versionKey()) {
			t.Errorf("Version = %v, want an error naming %s", err, s.cfg.versionKey())
		}
	})
}

// TestApplyRefusesSharingWithAStoredDestination: item 6 of issue 7 across
// files. The decoder refuses two destinations of one file on one Redis and
// prefix; a destination of a later file is checked against the stored ones
// it does not redefine, and refused, with nothing written, unless both
// declare fan_in.
func TestApplyRefusesSharingWithAStoredDestination(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		mustApply(t, s, example(t)) // qa: redis://redis.internal:6379/1, prefix launchdarkly, env test
		qa, _ := example(t).Destination("qa")
		for _, tc := range []struct {
			name string
			d    catalog.Destination
			want string
		}{
			{"same server and prefix", catalog.Destination{Name: "qa2", Environment: "qa2", Redis: qa.Redis, PrefixMode: catalog.PrefixDefault},
				`catalogstore: destination "qa2" would share prefix "launchdarkly" of Redis redis.internal:6379/1 with the stored destination "qa"`},
			{"same environment", catalog.Destination{Name: "qa3", Environment: "test", Redis: qa.Redis, PrefixMode: catalog.PrefixCustom, CustomPrefix: "qa3"},
				`catalogstore: destination "qa3" would share environment "test" with the stored destination "qa"`},
			{"fan-in on one side only", catalog.Destination{Name: "qa4", Environment: "qa4", Redis: qa.Redis, PrefixMode: catalog.PrefixDefault, FanIn: true},
				`would share prefix "launchdarkly" of Redis redis.internal:6379/1 with the stored destination "qa"`},
		} {
			v := mustVersion(t, s)
			_, err := s.Apply(t.Context(), &catalog.Catalog{Destinations: []catalog.Destination{tc.d}})
			var se *SharingError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Apply = %v, want a *SharingError: %s", tc.name, err, tc.want)
			}
			if got := mustVersion(t, s); got != v {
				t.Errorf("%s: version moved from %d to %d: something was written", tc.name, v, got)
			}
		}
		// Redefining the stored destination itself is no sharing.
		if _, err := s.Apply(t.Context(), &catalog.Catalog{Destinations: []catalog.Destination{qa}}); err != nil {
			t.Errorf("re-applying qa: %v", err)
		}
	})
}
