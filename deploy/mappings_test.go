package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/internal/cli"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// examplePath is the mappings file of the compose stack.
const examplePath = "mappings.example.yaml"

func TestMappingsExample(t *testing.T) {
	c, err := catalog.Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := c.Destination("production")
	if !ok {
		t.Fatalf("no destination production in %+v", c.Destinations)
	}
	if d.Redis.URL != "redis://redis:6379/0" || d.Prefix() != bigsegments.DefaultPrefix || d.Environment != "production" {
		t.Errorf("destination production: Redis %q, prefix %q, environment %q; want redis://redis:6379/0, %s, production",
			d.Redis.URL, d.Prefix(), d.Environment, bigsegments.DefaultPrefix)
	}
	kinds := map[catalog.ScheduleKind][]string{}
	for _, m := range c.Mappings {
		kinds[m.Schedule.Kind] = append(kinds[m.Schedule.Kind], m.Source.Location)
	}
	if got := kinds[catalog.ScheduleHourly]; len(got) != 1 || got[0] != "/data/cohort-day1.csv" {
		t.Errorf("hourly mappings read %q, want one of /data/cohort-day1.csv", got)
	}
	if got := kinds[catalog.ScheduleOneTime]; len(got) != 1 {
		t.Errorf("one-time mappings read %q, want one", got)
	}
}

// applyFile runs "cohortsync mappings apply -f path" the way the compose
// service and the Kubernetes Job do, into a Redis of the tests under a
// prefix of its own, and returns what it printed.
func applyFile(t *testing.T, ctx context.Context, redisURL, prefix, path string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"REDIS_URL": redisURL, "CONTROL_PREFIX": prefix}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if code := cli.Main(ctx, []string{"mappings", "apply", "-f", path}, &out, &errOut, lookup); code != cli.ExitOK {
		t.Fatalf("mappings apply -f %s: exit %d: %s%s", path, code, out.String(), errOut.String())
	}
	return out.String()
}

// appliesTwice applies path twice: every entry is created once, then
// unchanged, as re-running the compose service or the Job does.
func appliesTwice(t *testing.T, path string) {
	t.Helper()
	ctx := testenv.Context(t, 30*time.Second)
	r := testenv.Redis(t)
	prefix := testenv.Name(t) + ":"
	t.Cleanup(func() { testenv.DropPrefix(t, r.Client, prefix) })
	c, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	entries := len(c.Destinations) + len(c.Mappings)
	for _, want := range []string{"created", "unchanged"} {
		out := applyFile(t, ctx, r.URL, prefix, path)
		if n := strings.Count(out, want+" "); n != entries {
			t.Errorf("apply -f %s: %d entries %s, want %d:\n%s", path, n, want, entries, out)
		}
	}
}

func TestMappingsExampleApplies(t *testing.T) { appliesTwice(t, examplePath) }
