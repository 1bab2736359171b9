package cli

import (
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestTokensCommands creates a token (printed once), lists it without its
// secret, revokes it, and refuses bad settings before touching Redis.
func TestTokensCommands(t *testing.T) {
	env := map[string]string{"REDIS_URL": testenv.RedisURL(t), "CONTROL_PREFIX": testenv.Name(t) + ":"}
	code, stdout, stderr := run(t, t.Context(), []string{"tokens", "create", "--name", "bootstrap", "--role", "admin"}, env)
	secret := strings.TrimSpace(stdout)
	if code != ExitOK || !strings.HasPrefix(secret, "csa_") || !strings.Contains(stderr, "role admin") {
		t.Fatalf("create: %d %q %q", code, stdout, stderr)
	}
	id := strings.Fields(strings.TrimPrefix(stderr, "token "))[0]
	code, stdout, _ = run(t, t.Context(), []string{"tokens", "list"}, env)
	if code != ExitOK || !strings.Contains(stdout, id) || !strings.Contains(stdout, "bootstrap") || !strings.Contains(stdout, "never") || strings.Contains(stdout, secret) {
		t.Fatalf("list: %d %q", code, stdout)
	}
	if code, stdout, _ = run(t, t.Context(), []string{"tokens", "revoke", id}, env); code != ExitOK || !strings.Contains(stdout, "revoked") {
		t.Fatalf("revoke: %d %q", code, stdout)
	}
	if code, _, stderr = run(t, t.Context(), []string{"tokens", "revoke", id}, env); code != ExitError || !strings.Contains(stderr, "no such token") {
		t.Fatalf("revoke twice: %d %q", code, stderr)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "create", "--role", "admin"}, "--name"},
		{[]string{"tokens", "create", "--name", "x"}, "--role"},
		{[]string{"tokens", "create", "--name", "x", "--role", "root"}, `--role="root": want admin, writer or reader`},
		{[]string{"tokens", "create", "--name", " x", "--role", "reader"}, "--name"},
	} {
		if code, _, stderr := run(t, t.Context(), tt.args, env); code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: %d %q, want %q", tt.args, code, stderr, tt.want)
		}
	}
}
