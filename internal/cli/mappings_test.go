package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestMappingsCommands applies the complete example file, re-applies it,
// lists and shows what is stored, and refuses a bad file whole, against
// the test's Redis.
func TestMappingsCommands(t *testing.T) {
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": testenv.Name(t) + ":"}
	example := filepath.Join("..", "..", "control", "catalog", "testdata", "mappings.yaml")
	names := []string{"beta-testers", "launch-list", "partner-push", "power-users"}
	step := func(t *testing.T, args []string, wantCode int) (string, string) {
		t.Helper()
		code, stdout, stderr := run(t, t.Context(), args, env)
		if code != wantCode {
			t.Fatalf("%v: exit %d, want %d; stderr:\n%s", args, code, wantCode, stderr)
		}
		return stdout, stderr
	}
	lines := func(change string) string {
		var b strings.Builder
		for _, n := range []string{"production", "qa", "staging"} {
			b.WriteString(change + "  destination        " + n + "\n")
		}
		b.WriteString(change + "  amplitude_project  main\n")
		for _, n := range names {
			b.WriteString(change + "  mapping            " + n + "\n")
		}
		return b.String()
	}

	if out, _ := step(t, []string{"mappings", "apply", "-f", example}, ExitOK); out != lines("created") {
		t.Errorf("first apply:\n%s", out)
	}
	if out, _ := step(t, []string{"mappings", "apply", "--file", example}, ExitOK); out != lines("unchanged") {
		t.Errorf("second apply:\n%s", out)
	}

	out, _ := step(t, []string{"mappings", "list"}, ExitOK)
	want := "" +
		"NAME          SEGMENT           DESTINATIONS        SCHEDULE      ENABLED\n" +
		"beta-testers  beta-testers      staging             30 6 * * 1-5  true\n" +
		"launch-list   launch-list       production          one-time      true\n" +
		"partner-push  partner-audience  qa                  on-push       false\n" +
		"power-users   power-users       production,staging  hourly        true\n"
	if out != want {
		t.Errorf("list:\n%s\nwant\n%s", out, want)
	}

	out, _ = step(t, []string{"mappings", "show", "beta-testers"}, ExitOK)
	want = `name: beta-testers
source:
    csv: https://exports.example.com/beta-testers.csv
segment: beta-testers
destinations: [staging]
id_property: email
context_kind: account
schedule: 30 6 * * 1-5
generation: 2
max_shrink: 0
enabled: true
notify:
    webhook:
        url: https://hooks.example.com/cohortsync
        secret_env: BETA_WEBHOOK_SECRET
        events: [failed, refused]
    email:
        to: [growth@example.com, oncall@example.com]
        events: [finished, failed, refused]
`
	if out != want {
		t.Errorf("show:\n%s\nwant\n%s", out, want)
	}
	out, _ = step(t, []string{"mappings", "show", "partner-push", "--output", "json"}, ExitOK)
	for _, w := range []string{`"source": {` + "\n" + `    "cohort": "c9",` + "\n" + `    "integration": "hightouch",` + "\n" + `    "push": true`, `"enabled": false`} {
		if !strings.Contains(out, w) {
			t.Errorf("show --output json lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "schedule") {
		t.Errorf("a push mapping shows a schedule:\n%s", out)
	}
	if _, stderr := step(t, []string{"mappings", "show", "nope"}, ExitError); !strings.Contains(stderr, `mapping "nope": not found`) {
		t.Errorf("show nope: %s", stderr)
	}

	// A file with two problems: both printed, nothing stored (launch-list's
	// schedule changed in the same file stays one-time).
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "schedule: one-time", "schedule: daily", 1)
	text = strings.Replace(text, "schedule: hourly", "schedule: every hour", 1)
	text = strings.Replace(text, "max_shrink: 0.5", "max_shrnk: 0.5", 1)
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr := step(t, []string{"mappings", "apply", "-f", bad}, ExitUsage)
	for _, w := range []string{"cohortsync mappings apply: invalid mappings file:\n  " + bad + ":",
		`mapping "power-users": max_shrnk: unknown field`, `mapping "power-users": schedule: "every hour": want`} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if out, _ := step(t, []string{"mappings", "list"}, ExitOK); !strings.Contains(out, "launch-list       production          one-time") {
		t.Errorf("a refused file changed the store:\n%s", out)
	}
}

// TestMappingsPauseResumeDelete pauses, resumes and deletes a mapping of the
// complete example file, against the test's Redis.
func TestMappingsPauseResumeDelete(t *testing.T) {
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": testenv.Name(t) + ":"}
	example := filepath.Join("..", "..", "control", "catalog", "testdata", "mappings.yaml")
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: []string{"mappings", "apply", "-f", example}},
		{args: []string{"mappings", "pause", "power-users"}, stdout: "mapping power-users: paused\n"},
		{args: []string{"mappings", "pause", "power-users"}, stdout: "mapping power-users: already paused\n"},
		{args: []string{"mappings", "list"}, stdout: "power-users   power-users       production,staging  hourly        false\n"},
		{args: []string{"mappings", "resume", "power-users"}, stdout: "mapping power-users: resumed\n"},
		{args: []string{"mappings", "resume", "power-users"}, stdout: "mapping power-users: already enabled\n"},
		{args: []string{"mappings", "resume", "nope"}, code: ExitError, stderr: "cohortsync mappings resume: catalogstore: mapping \"nope\": not found\n"},
		{args: []string{"mappings", "delete", "launch-list"}, stdout: "mapping launch-list: deleted; its segment's members stay in Redis\n"},
		{args: []string{"mappings", "delete", "launch-list"}, code: ExitError, stderr: "cohortsync mappings delete: catalogstore: mapping \"launch-list\": not found\n"},
		{args: []string{"mappings", "show", "launch-list"}, code: ExitError, stderr: "cohortsync mappings show: catalogstore: mapping \"launch-list\": not found\n"},
	} {
		code, stdout, stderr := run(t, t.Context(), tc.args, env)
		if code != tc.code {
			t.Fatalf("%v: exit %d, want %d; stderr:\n%s", tc.args, code, tc.code, stderr)
		}
		if tc.stdout != "" && !strings.HasSuffix(stdout, tc.stdout) {
			t.Errorf("%v: stdout\n%s\nwant it to end with\n%s", tc.args, stdout, tc.stdout)
		}
		if stderr != tc.stderr {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.stderr)
		}
	}
}

func TestMappingsCommandLine(t *testing.T) {
	runCases(t, []commandCase{
		{name: "help names where mappings are stored", args: []string{"mappings", "--help"}, code: ExitOK,
			wantStdout: []string{"apply", "list", "show", "pause", "resume", "delete", "Redis given by the --redis-*", "nothing runs the stored mappings yet"}},
		{name: "apply help lists its settings", args: []string{"mappings", "apply", "--help"}, code: ExitOK,
			wantStdout: []string{"-f, --file string", "[env REDIS_URL]", "[env CONTROL_PREFIX]", "never in the file nor stored"}},
		{name: "apply without a file or a Redis names both", args: []string{"mappings", "apply"}, code: ExitUsage,
			wantStderr: []string{"--file: required, want a mappings file", "--redis-url or REDIS_URL: required"}},
		{name: "an unreadable file is a usage error", args: []string{"mappings", "apply", "-f", "/nonexistent.yaml", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{`--file="/nonexistent.yaml": want a readable mappings file (no such file or directory)`}},
		{name: "a control prefix with a brace is refused", args: []string{"mappings", "list", "--redis-url", "redis://127.0.0.1:1"},
			env: map[string]string{"CONTROL_PREFIX": "a{b"}, code: ExitUsage, wantStderr: []string{`CONTROL_PREFIX="a{b": want a key prefix without '{' or '}'`}},
		{name: "pause needs a name", args: []string{"mappings", "pause", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{"accepts 1 arg(s), received 0"}},
		{name: "delete takes one name only", args: []string{"mappings", "delete", "a", "b", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{"accepts 1 arg(s), received 2"}},
		{name: "delete --purge needs Kafka", args: []string{"mappings", "delete", "a", "--purge", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{"--kafka-brokers or KAFKA_BROKERS: required"}},
		{name: "delete without --purge refuses Kafka settings", args: []string{"mappings", "delete", "a", "--kafka-brokers", "k:9092", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{`--kafka-brokers="k:9092": want nothing without --purge`}},
		{name: "show needs a name", args: []string{"mappings", "show", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{"accepts 1 arg(s), received 0"}},
		{name: "show refuses an unknown format", args: []string{"mappings", "show", "m", "--redis-url", "redis://127.0.0.1:1", "--output", "xml"}, code: ExitUsage,
			wantStderr: []string{`--output="xml": want yaml or json`}},
		{name: "an unreachable Redis is a failure, not a usage error", args: []string{"mappings", "list", "--redis-url", "redis://127.0.0.1:1", "--redis-timeout", "1s"}, code: ExitError,
			wantStderr: []string{"catalogstore: list:"}},
	})
}
