package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
	"github.com/cohortsync/cohortsync/schema"
)

// TestSyncMappingCommand applies a mappings file and runs a stored mapping
// with sync --mapping against the test's Kafka and Redis: its cohort is
// published under its destination's environment, a second run finds
// nothing changed, and what cannot run is refused with the reason.
func TestSyncMappingCommand(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	dir := t.TempDir()
	cohort := filepath.Join(dir, "beta.csv")
	if err := os.WriteFile(cohort, []byte("email,user_id\na@x,alice\nb@x,bob\nc@x,carol\nd@x,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "mappings.yaml")
	yaml := fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    prefix: %s-prod
mappings:
  - name: beta
    source: {csv: %q}
    segment: beta-users
    destinations: [production]
    schedule: hourly
  - name: frozen
    source: {csv: %q}
    segment: frozen
    destinations: [production]
    schedule: daily
    enabled: false
`, testenv.RedisURL(t), name, cohort, cohort)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC": name, "PRODUCER_TOPIC_PARTITIONS": "2",
		"PRODUCER_STATE_DIR": t.TempDir(), "REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": name + ":",
		"LOG_LEVEL": "error",
	}
	ctx := testenv.Context(t, 2*time.Minute)
	if code, _, stderr := run(t, ctx, []string{"mappings", "apply", "-f", file}, env); code != ExitOK {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr := run(t, ctx, []string{"sync", "--mapping", "beta"}, env)
	if code != ExitOK {
		t.Fatalf("sync --mapping beta: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"mapping beta, destination production:\nsync run 20", "beta-users.g1 (env production, context kind user)",
		"added       3\n", "excluded    1 (empty_id 1)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first run's output lacks %q:\n%s", want, stdout)
		}
	}
	var keys []string
	for _, m := range testenv.ReadTopic(t, brokers, name, 2) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Op != schema.OpAdd || ev.Env != "production" || ev.Segment != "beta-users" {
			t.Errorf("event %+v", ev)
		}
		keys = append(keys, ev.ContextKey)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"alice", "bob", "carol"}) {
		t.Fatalf("published %q, want alice, bob and carol", keys)
	}

	code, stdout, stderr = run(t, ctx, []string{"sync", "--mapping", "beta"}, env)
	if code != ExitOK || !strings.Contains(stdout, "unchanged   3\n") {
		t.Fatalf("second run: exit %d, want 3 unchanged:\n%s%s", code, stdout, stderr)
	}

	// Both runs are in the history, newest first, with their summaries.
	code, stdout, stderr = run(t, ctx, []string{"runs", "list", "--mapping", "beta"}, env)
	if code != ExitOK || strings.Count(stdout, " beta ") != 2 || strings.Count(stdout, " manual ") != 2 {
		t.Fatalf("runs list: exit %d, want two manual runs of beta:\n%s%s", code, stdout, stderr)
	}
	firstLine := strings.Split(stdout, "\n")[1]
	id := strings.Fields(firstLine)[0]
	code, stdout, stderr = run(t, ctx, []string{"runs", "show", id}, env)
	if code != ExitOK || !strings.Contains(stdout, "mapping beta, destination production, trigger manual, status published, not applied, with exclusions\n") ||
		!strings.Contains(stdout, "applied     not yet: the consumer group has not committed past the run's events\nsync run "+id) ||
		!strings.Contains(stdout, "unchanged   3\n") {
		t.Fatalf("runs show %s: exit %d:\n%s%s", id, code, stdout, stderr)
	}
	if code, _, stderr := run(t, ctx, []string{"runs", "show", "20200101T000000Z-00000000"}, env); code != ExitError || !strings.Contains(stderr, "no such run") {
		t.Fatalf("runs show of an unknown run: exit %d\n%s", code, stderr)
	}

	// Purge removes the members through events, then deletes the mapping.
	code, stdout, stderr = run(t, ctx, []string{"mappings", "delete", "beta", "--purge"}, env)
	if code != ExitOK || !strings.Contains(stdout, "removed     3\n") || !strings.Contains(stdout, "mapping beta: members removed from every destination; mapping deleted\n") {
		t.Fatalf("delete --purge: exit %d, want 3 removed and the mapping deleted:\n%s%s", code, stdout, stderr)
	}
	removed := 0
	for _, m := range testenv.ReadTopic(t, brokers, name, 2) {
		if ev, err := schema.Decode(&m); err == nil && ev.Op == schema.OpRemove && ev.Source == "purge" {
			removed++
		}
	}
	if removed != 3 {
		t.Fatalf("%d purge removes on the topic, want 3", removed)
	}
	if code, _, stderr := run(t, ctx, []string{"mappings", "show", "beta"}, env); code != ExitError || !strings.Contains(stderr, `mapping "beta": not found`) {
		t.Fatalf("show after delete --purge: exit %d\n%s", code, stderr)
	}
	if code, stdout, _ := run(t, ctx, []string{"runs", "list"}, env); code != ExitOK || !strings.Contains(stdout, " purge ") {
		t.Fatalf("runs list after the purge: exit %d, want the purge recorded:\n%s", code, stdout)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sync", "--mapping", "frozen"}, ExitError, `schedule: sync "frozen": mapping is paused (resume it first)`},
		{[]string{"sync", "--mapping", "beta"}, ExitError, `schedule: sync "beta": no such mapping`},
		{[]string{"sync", "--mapping", "beta", "--csv", "x.csv", "--max-shrink", "0.5"}, ExitUsage,
			`--csv="x.csv": want nothing with --mapping (the mapping says it)`},
		{[]string{"sync", "--mapping", "beta", "--max-shrink", "0.5"}, ExitUsage,
			`--max-shrink="0.5": want nothing with --mapping (the mapping says it, and each segment keeps its reports in its state directory)`},
		{[]string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--control-prefix", "p:"}, ExitUsage,
			`--control-prefix="p:": want nothing without --mapping (the control Redis serves mapping runs)`},
		{[]string{"sync", "--mapping", "beta", "--lease-ttl", "1ms"}, ExitUsage, `--lease-ttl="1ms": want a duration of at least 10ms`},
		{[]string{"sync", "--env", "e", "--segment", "s", "--csv", "x.csv", "--smtp-addr", "smtp:587"}, ExitUsage,
			`--smtp-addr="smtp:587": want nothing without --mapping (a mapping says whom to notify)`},
		{[]string{"sync", "--mapping", "beta", "--smtp-addr", "smtp:587", "--smtp-starttls", "maybe"}, ExitUsage,
			`--smtp-starttls="maybe": want required or off`},
		{[]string{"sync", "--mapping", "beta", "--smtp-addr", "smtp:587"}, ExitUsage,
			`--smtp-from or SMTP_FROM: required, want the sender's address (user@example.com) with --smtp-addr`},
	} {
		code, _, stderr := run(t, ctx, tc.args, env)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q; stderr:\n%s", tc.args, code, tc.code, tc.want, stderr)
		}
	}
}

// TestSyncMappingFromAmplitude runs an Amplitude mapping with sync
// --mapping: the project's keys come from the command's environment, the
// cohort from the fake Amplitude API.
func TestSyncMappingFromAmplitude(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	srv := amplitudetest.New(t, amplitudetest.Config{Gzip: true, Cohorts: []amplitudetest.Cohort{{ID: "7khm89cz", Users: []amplitudetest.User{
		{AmplitudeID: 1, UserID: "alice"}, {AmplitudeID: 2, UserID: "bob"}, {AmplitudeID: 3},
	}}}})
	file := filepath.Join(t.TempDir(), "mappings.yaml")
	yaml := fmt.Sprintf(`destinations:
  - {name: production, redis: {url: %q}, prefix: %s-prod}
amplitude_projects:
  - {name: main, base_url: %q, api_key_env: AMP_KEY, secret_key_env: AMP_SECRET}
mappings:
  - name: power-users
    source: {amplitude_cohort: 7khm89cz, amplitude_project: main}
    segment: power-users
    destinations: [production]
    schedule: hourly
`, testenv.RedisURL(t), name, srv.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KAFKA_BROKERS": strings.Join(brokers, ","), "TOPIC": name, "PRODUCER_TOPIC_PARTITIONS": "2",
		"PRODUCER_STATE_DIR": t.TempDir(), "REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": name + ":",
		"LOG_LEVEL": "error", "AMP_KEY": srv.APIKey(), "AMP_SECRET": srv.SecretKey(),
	}
	ctx := testenv.Context(t, 2*time.Minute)
	if code, _, stderr := run(t, ctx, []string{"mappings", "apply", "-f", file}, env); code != ExitOK {
		t.Fatalf("apply: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := run(t, ctx, []string{"sync", "--mapping", "power-users"}, env)
	if code != ExitOK || !strings.Contains(stdout, "added       2\n") || !strings.Contains(stdout, "excluded    1 (empty_id 1)") {
		t.Fatalf("sync --mapping power-users: exit %d, want 2 added and 1 excluded:\n%s%s", code, stdout, stderr)
	}
	var keys []string
	for _, m := range testenv.ReadTopic(t, brokers, name, 2) {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Source != "amplitude" || ev.Segment != "power-users" {
			t.Errorf("event %+v, want source amplitude", ev)
		}
		keys = append(keys, ev.ContextKey)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"alice", "bob"}) {
		t.Fatalf("published %q, want alice and bob", keys)
	}
	delete(env, "AMP_SECRET")
	if code, _, stderr := run(t, ctx, []string{"sync", "--mapping", "power-users"}, env); code != ExitError ||
		!strings.Contains(stderr, `amplitude project "main": secret key: environment variable AMP_SECRET: not set`) {
		t.Fatalf("without the secret: exit %d\n%s", code, stderr)
	}
}
