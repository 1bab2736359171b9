package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
)

// TestAmplitudeCohorts lists the cohorts of a stored project from the fake
// Amplitude API, with the keys read from the environment and a file.
func TestAmplitudeCohorts(t *testing.T) {
	srv := amplitudetest.New(t, amplitudetest.Config{Cohorts: []amplitudetest.Cohort{
		{ID: "7khm89cz", Name: "Power users", Generate: 2_000_000, LastComputed: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)},
		{ID: "abc123", Name: "Old trial", Archived: true},
	}})
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(srv.SecretKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := fmt.Sprintf(`destinations:
  - {name: prod, redis: {url: "redis://127.0.0.1:1"}}
amplitude_projects:
  - {name: main, base_url: %q, api_key_env: AMP_KEY, secret_key_file: %q}
  - {name: wrong, base_url: %q, api_key_env: AMP_KEY, secret_key_env: WRONG_SECRET}
  - {name: unset, base_url: %q, api_key_env: AMP_KEY, secret_key_env: NOT_SET}
mappings:
  - {name: m, source: {amplitude_cohort: 7khm89cz, amplitude_project: main}, segment: s, destinations: [prod], schedule: daily}
`, srv.URL, secretFile, srv.URL, srv.URL)
	path := filepath.Join(t.TempDir(), "mappings.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": testenv.Name(t) + ":",
		"AMP_KEY": srv.APIKey(), "WRONG_SECRET": "wr0ng-secret"}
	if code, _, stderr := run(t, t.Context(), []string{"mappings", "apply", "-f", path}, env); code != ExitOK {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // substring
	}{
		{name: "lists the cohorts", args: []string{"--project", "main"}, code: ExitOK, stdout: "" +
			"ID        NAME         SIZE     LAST-COMPUTED         ARCHIVED\n" +
			"7khm89cz  Power users  2000000  2026-12-01T10:00:00Z  false\n" +
			"abc123    Old trial    0        never                 true\n"},
		{name: "wrong keys are a 401, without the secret", args: []string{"--project", "wrong"}, code: ExitError,
			stderr: `amplitude project "wrong": list amplitude cohorts: call Amplitude: GET ` + strings.TrimPrefix(srv.URL, "http://") + `/api/3/cohorts: 401 Unauthorized`},
		{name: "an unset key", args: []string{"--project", "unset"}, code: ExitError,
			stderr: `amplitude project "unset": secret key: environment variable NOT_SET: not set`},
		{name: "an unknown project", args: []string{"--project", "nope"}, code: ExitError, stderr: `amplitude project "nope": not found`},
		{name: "the project is required", args: nil, code: ExitUsage, stderr: "--project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, t.Context(), append([]string{"amplitude", "cohorts"}, tc.args...), env)
			if code != tc.code || (tc.code == ExitOK && stdout != tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
			if strings.Contains(stdout+stderr, "wr0ng-secret") || strings.Contains(stdout+stderr, srv.SecretKey()) {
				t.Fatalf("output shows a secret:\n%s%s", stdout, stderr)
			}
		})
	}
}
