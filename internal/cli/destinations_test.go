package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestDestinationsCommands applies destinations of every kind a test can
// reach, lists and shows them, and tests each: reachable ones connect, the
// others name the exact error.
func TestDestinationsCommands(t *testing.T) {
	prefix := testenv.Name(t)
	backends := testenv.RedisBackends(t)
	up := backends[0].URL
	// A server requiring a password, to see that the password is read
	// from where the destination says and sent.
	locked := miniredis.RunT(t)
	locked.RequireAuth("l0cked-pw")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("l0cked-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	down, broken := testenv.ClosedAddr(t), testenv.DroppingListener(t)
	file := fmt.Sprintf(`destinations:
  - name: up
    environment: production
    redis: {url: %q}
    prefix: %s
  - name: locked
    redis: {url: "redis://%s/0", password_env: LOCKED_PW}
  - name: from-file
    redis: {url: "redis://%s/1", password_file: %q}
  - name: no-secret
    redis: {url: "redis://%s/2", password_env: NOT_SET_PW}
  - name: down
    redis: {url: "redis://%s/0"}
  - name: broken
    redis: {url: "redis://%s/0"}
`, up, prefix, locked.Addr(), locked.Addr(), pwFile, locked.Addr(), down, broken)
	if len(backends) > 1 {
		file += fmt.Sprintf("  - name: cluster\n    redis: {cluster_addrs: [%s]}\n    prefix: %s\n", strings.Join(backends[1].Addrs, ", "), prefix)
	}
	file += "mappings:\n  - {name: m, source: {csv: a.csv}, segment: s, destinations: [up], schedule: daily}\n"
	path := filepath.Join(t.TempDir(), "mappings.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": testenv.Name(t) + ":", "LOCKED_PW": "l0cked-pw"}
	step := func(t *testing.T, args []string, env map[string]string, wantCode int) (string, string) {
		t.Helper()
		code, stdout, stderr := run(t, t.Context(), args, env)
		if code != wantCode {
			t.Fatalf("%v: exit %d, want %d; stdout:\n%s\nstderr:\n%s", args, code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	step(t, []string{"mappings", "apply", "-f", path}, env, ExitOK)

	out, _ := step(t, []string{"destinations", "list"}, env, ExitOK)
	for _, w := range []string{
		"NAME       ENVIRONMENT  REDIS",
		fmt.Sprintf("locked     locked       redis://%s/0", locked.Addr()),
		"env LOCKED_PW",
		"file " + pwFile,
		fmt.Sprintf("up         production   %s", up),
	} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "l0cked-pw") {
		t.Errorf("list shows a password:\n%s", out)
	}

	// A push token is printed once; rotating makes another.
	tok1, _ := step(t, []string{"destinations", "token", "up"}, env, ExitOK)
	tok2, _ := step(t, []string{"destinations", "token", "up"}, env, ExitOK)
	if !strings.HasPrefix(tok1, "cst_") || !strings.HasSuffix(tok1, "\n") || tok1 == tok2 {
		t.Errorf("tokens %q %q: want two different cst_ tokens, one line each", tok1, tok2)
	}
	if _, stderr := step(t, []string{"destinations", "token", "nope"}, env, ExitError); !strings.Contains(stderr, `destination "nope": not found`) {
		t.Errorf("token of an unknown destination: %s", stderr)
	}

	out, _ = step(t, []string{"destinations", "show", "up"}, env, ExitOK)
	if want := fmt.Sprintf("name: up\nenvironment: production\nredis:\n    url: %s\nprefix: %s\nfan_in: false\n", up, prefix); out != want {
		t.Errorf("show up:\n%s\nwant\n%s", out, want)
	}
	out, _ = step(t, []string{"destinations", "show", "from-file", "--output", "json"}, env, ExitOK)
	if !strings.Contains(out, `"password_file": "`+pwFile+`"`) || !strings.Contains(out, `"environment": "from-file"`) {
		t.Errorf("show from-file --output json:\n%s", out)
	}
	if _, stderr := step(t, []string{"destinations", "show", "nope"}, env, ExitError); !strings.Contains(stderr, `destination "nope": not found`) {
		t.Errorf("show nope: %s", stderr)
	}

	type test struct {
		name, stdout, stderr string // stderr: the whole line after "cohortsync destinations test: "
		env                  map[string]string
	}
	with := func(k, v string) map[string]string {
		e := map[string]string{k: v}
		for k, v := range env {
			if _, ok := e[k]; !ok {
				e[k] = v
			}
		}
		return e
	}
	tests := []test{
		{name: "up", stdout: fmt.Sprintf("destination up: connected (redis %s, prefix %s)\n", up, prefix)},
		{name: "locked", stdout: fmt.Sprintf("destination locked: connected (redis redis://%s/0, prefix launchdarkly)\n", locked.Addr())},
		{name: "from-file", stdout: fmt.Sprintf("destination from-file: connected (redis redis://%s/1, prefix launchdarkly)\n", locked.Addr())},
		{name: "no-secret", stderr: `destination no-secret: not connected: destination "no-secret": redis password: environment variable NOT_SET_PW: not set`},
		{name: "down", stderr: "destination down: not connected: ping: dial tcp " + down + ": connect: connection refused"},
		{name: "nope", stderr: `catalogstore: destination "nope": not found`},
	}
	if len(backends) > 1 {
		tests = append(tests, test{name: "cluster", stdout: fmt.Sprintf("destination cluster: connected (redis cluster %s, prefix %s)\n", strings.Join(backends[1].Addrs, ","), prefix)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env
			if e == nil {
				e = env
			}
			code := ExitOK
			if tc.stderr != "" {
				code = ExitError
			}
			out, stderr := step(t, []string{"destinations", "test", tc.name}, e, code)
			if out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if want := "cohortsync destinations test: " + tc.stderr + "\n"; tc.stderr != "" && stderr != want {
				t.Errorf("stderr %q\nwant %q", stderr, want)
			}
		})
	}

	t.Run("a wrong password is an error without the password", func(t *testing.T) {
		_, stderr := step(t, []string{"destinations", "test", "locked"}, with("LOCKED_PW", "wr0ng-pw"), ExitError)
		if !strings.HasPrefix(stderr, "cohortsync destinations test: destination locked: not connected: ping: ") || strings.Contains(stderr, "wr0ng-pw") {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("a server that drops connections fails within the timeout", func(t *testing.T) {
		start := time.Now()
		_, stderr := step(t, []string{"destinations", "test", "broken", "--timeout", "1s"}, env, ExitError)
		if !strings.HasPrefix(stderr, "cohortsync destinations test: destination broken: not connected: ping: ") {
			t.Errorf("stderr %q", stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v with --timeout 1s", d)
		}
	})
	t.Run("testing writes nothing", func(t *testing.T) {
		// Testing reads, never writes: the SDKs' key is as it was.
		if n, err := backends[0].Client.Exists(t.Context(), prefix+":big_segments_synchronized_on").Result(); err != nil || n != 0 {
			t.Errorf("test wrote the synchronized-on key (%d, %v)", n, err)
		}
	})
}

func TestDestinationsCommandLine(t *testing.T) {
	runCases(t, []commandCase{
		{name: "help lists the subcommands", args: []string{"destinations", "--help"}, code: ExitOK,
			wantStdout: []string{"list", "show", "test", "Redis given by the --redis-*"}},
		{name: "test help names its timeout and what it prints", args: []string{"destinations", "test", "--help"}, code: ExitOK,
			wantStdout: []string{"--timeout duration", "[env DESTINATIONS_TEST_TIMEOUT] (default 5s)", "destination NAME: not connected: "}},
		{name: "test needs a name", args: []string{"destinations", "test", "--redis-url", "redis://127.0.0.1:1"}, code: ExitUsage,
			wantStderr: []string{"accepts 1 arg(s), received 0"}},
		{name: "test refuses a timeout of zero", args: []string{"destinations", "test", "d", "--redis-url", "redis://127.0.0.1:1", "--timeout", "0s"}, code: ExitUsage,
			wantStderr: []string{`--timeout="0s": want a positive duration`}},
		{name: "show refuses an unknown format", args: []string{"destinations", "show", "d", "--redis-url", "redis://127.0.0.1:1", "--output", "xml"}, code: ExitUsage,
			wantStderr: []string{`--output="xml": want yaml or json`}},
		{name: "list without a Redis", args: []string{"destinations", "list"}, code: ExitUsage,
			wantStderr: []string{"--redis-url or REDIS_URL: required"}},
	})
}
