package mappingrun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/retry"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/source/amplitude"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
)

// projectDests finds destinations and Amplitude projects, as
// catalogstore.Store does.
type projectDests struct {
	mapDests
	projects map[string]catalog.AmplitudeProject
}

func (p projectDests) AmplitudeProject(_ context.Context, name string) (catalog.AmplitudeProject, error) {
	pr, ok := p.projects[name]
	if !ok {
		return catalog.AmplitudeProject{}, fmt.Errorf("amplitude project %q: no such project", name)
	}
	return pr, nil
}

func ampMapping(cohort, property string, dests ...string) catalog.Mapping {
	m := mapping("", dests...)
	m.Source = catalog.Source{Kind: catalog.SourceAmplitude, Location: cohort, Project: "main"}
	m.IDProperty = property
	return m
}

// TestAmplitudePull runs Amplitude mappings end to end against the fake
// API: export, polling, a presigned download, into both destinations;
// then the failures that must leave the segments as they were.
func TestAmplitudePull(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			w := newWorld(t, rb)
			users := []amplitudetest.User{
				{AmplitudeID: 1, UserID: "alice", Props: map[string]string{"email": "alice@example.com"}},
				{AmplitudeID: 2, UserID: "", Props: map[string]string{"email": "anon@example.com"}},
				{AmplitudeID: 3, UserID: "bob", Props: map[string]string{"email": ""}},
			}
			cohorts := []amplitudetest.Cohort{{ID: "c1", Name: "Power users", Users: users}}
			good := amplitudetest.New(t, amplitudetest.Config{Pending: 2, Gzip: true, ExpiredURLs: 1, Cohorts: cohorts})
			env := map[string]string{"AMP_KEY": good.APIKey(), "AMP_SECRET": good.SecretKey(), "WRONG_SECRET": "not-the-secret"}
			project := func(srv *amplitudetest.Server, secretEnv string) projectDests {
				return projectDests{w.dests, map[string]catalog.AmplitudeProject{"main": {Name: "main", BaseURL: srv.URL,
					APIKey: catalog.SecretRef{Env: "AMP_KEY"}, SecretKey: catalog.SecretRef{Env: secretEnv}}}}
			}
			runner := func(dests projectDests) *Runner {
				return w.runnerWith(t.TempDir(), dests, func(c *Config) {
					c.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
					c.Amplitude = amplitude.Options{PollInterval: time.Millisecond}
					c.Fetch = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Timeout: 5 * time.Second}
				})
			}

			res := w.run(runner(project(good, "AMP_SECRET")), ampMapping("c1", amplitude.ColumnUserID, "production", "staging"))
			for _, r := range res {
				if r.Summary.Added != 2 || r.Summary.Source != amplitude.Kind || r.Summary.ExcludedTotal() != 1 {
					t.Fatalf("%s: %+v; want 2 added from amplitude, 1 excluded", r.Destination, r.Summary)
				}
			}
			w.wantMembers("production", "alice", "bob")
			w.wantMembers("staging", "alice", "bob")
			if good.DownloadsWithAuth() != 0 {
				t.Fatal("the presigned download received the project's keys")
			}

			// The same cohort keyed by a user property: a new generation.
			byEmail := ampMapping("c1", "email", "production")
			byEmail.Segment = "beta-emails"
			w.run(runner(project(good, "AMP_SECRET")), byEmail)
			if got := w.membersOf("production", "beta-emails"); strings.Join(got, ",") != "alice@example.com,anon@example.com" {
				t.Fatalf("beta-emails holds %q", got)
			}
			if q := good.ExportQueries(); q[len(q)-1].Get("propKeys") != "email" {
				t.Fatalf("last export query %v, want propKeys=email", q[len(q)-1])
			}

			// Failures: nothing published, the segment keeps alice and bob.
			truncated := amplitudetest.New(t, amplitudetest.Config{Gzip: true, TruncateGzip: true,
				Cohorts: []amplitudetest.Cohort{{ID: "c1", Generate: 50_000}}})
			cut := amplitudetest.New(t, amplitudetest.Config{Inline: true, CutAfter: 100_000,
				Cohorts: []amplitudetest.Cohort{{ID: "c1", Generate: 50_000}}})
			for _, tc := range []struct {
				name  string
				dests projectDests
				m     catalog.Mapping
				want  string
			}{
				{"truncated gzip", project(truncated, "AMP_SECRET"), ampMapping("c1", "", "production"), "unexpected EOF"},
				{"a body cut short", project(cut, "AMP_SECRET"), ampMapping("c1", "", "production"), "unexpected EOF"},
				{"wrong credentials", project(good, "WRONG_SECRET"), ampMapping("c1", "", "production"), "401 Unauthorized"},
				{"an unset key", project(good, "NOPE"), ampMapping("c1", "", "production"), `amplitude project "main": secret key: environment variable NOPE: not set`},
				{"an unknown project", project(good, "AMP_SECRET"), func() catalog.Mapping {
					m := ampMapping("c1", "", "production")
					m.Source.Project = "other"
					return m
				}(), `amplitude project "other": no such project`},
			} {
				res, err := runner(tc.dests).Run(w.ctx, tc.m)
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), good.SecretKey()) {
					t.Fatalf("%s: Run = %v, want an error with %q and no secret", tc.name, err, tc.want)
				}
				for _, r := range res {
					if r.Summary.Outcome != producer.Failed || r.Summary.Added+r.Summary.Removed != 0 {
						t.Fatalf("%s: %+v, want a failed run that published nothing", tc.name, r.Summary)
					}
				}
				if err := w.cons.WaitCaughtUp(w.ctx); err != nil {
					t.Fatal(err)
				}
				w.wantMembers("production", "alice", "bob")
			}
			// One export per destination run (2, then 1), and the wrong
			// secret's 401 once: not retried.
			if n := good.Requests(amplitudetest.EndpointRequest); n != 4 {
				t.Fatalf("%d export requests, want 4", n)
			}
		})
	}
}
