package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func newStore(t *testing.T, b testenv.RedisBackend, prefix string, now func() time.Time) *Store {
	t.Helper()
	s, err := New(b.Client, Config{Prefix: prefix, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	testenv.ForEachRedis(t, 30*time.Second, func(t *testing.T, ctx context.Context, b testenv.RedisBackend, prefix string) {
		now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
		s := newStore(t, b, prefix, func() time.Time { return now })
		admin, adminSecret, err := s.Create(ctx, "bootstrap", Admin)
		if err != nil {
			t.Fatal(err)
		}
		reader, readerSecret, err := s.Create(ctx, "dashboards", Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(adminSecret, Prefix) || len(adminSecret) < 40 || adminSecret == readerSecret || admin.ID == reader.ID {
			t.Fatalf("secrets %q %q ids %q %q", adminSecret, readerSecret, admin.ID, reader.ID)
		}
		if !admin.Created.Equal(now) || admin.Role != Admin || admin.Name != "bootstrap" || !admin.LastUsed.IsZero() {
			t.Fatalf("created %+v", admin)
		}
		// Only digests are stored: no secret appears in any key or value.
		for k, v := range testenv.Snapshot(t, b.Client, prefix) {
			for _, secret := range []string{adminSecret, readerSecret, strings.TrimPrefix(adminSecret, Prefix)} {
				if strings.Contains(k, secret) || strings.Contains(v, secret) {
					t.Fatalf("%s = %s holds a secret", k, v)
				}
			}
		}
		got, err := s.Authenticate(ctx, adminSecret)
		if err != nil || got.ID != admin.ID || got.Role != Admin {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
		for _, bad := range []string{"", "csa_", "csa_guess", adminSecret + "x", strings.TrimPrefix(adminSecret, Prefix), "cst_" + strings.TrimPrefix(adminSecret, Prefix), strings.Repeat("csa_", 100)} {
			if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthorized) {
				t.Errorf("authenticate %q: %v, want ErrUnauthorized", bad, err)
			}
		}
		// The last use is recorded, at most every TouchEvery.
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "bootstrap" || !list[0].LastUsed.Equal(now) || !list[1].LastUsed.IsZero() {
			t.Fatalf("list: %+v %v", list, err)
		}
		first := now
		now = now.Add(30 * time.Second)
		if _, err := s.Authenticate(ctx, adminSecret); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.List(ctx); !list[0].LastUsed.Equal(first) {
			t.Errorf("last use written again within TouchEvery: %v", list[0].LastUsed)
		}
		now = now.Add(DefaultTouchEvery)
		if _, err := s.Authenticate(ctx, adminSecret); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.List(ctx); !list[0].LastUsed.Equal(now) {
			t.Errorf("last use %v, want %v", list[0].LastUsed, now)
		}
		// Revoked: it stops at once, and leaves nothing behind.
		if err := s.Revoke(ctx, admin.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, adminSecret); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("a revoked token authenticates: %v", err)
		}
		if err := s.Revoke(ctx, admin.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke twice: %v", err)
		}
		if list, _ := s.List(ctx); len(list) != 1 || list[0].ID != reader.ID {
			t.Errorf("after revoke: %+v", list)
		}
		snap := testenv.Snapshot(t, b.Client, prefix)
		for k, v := range snap {
			if strings.Contains(v, admin.ID) || strings.Contains(v, digest(adminSecret)) {
				t.Errorf("revoked token left %s = %s", k, v)
			}
		}
		// A record edited by hand is reported, not trusted.
		b.Client.HSet(ctx, s.tokensKey(), "zz", `{"id":"zz","role":"root"}`)
		var ce *CorruptError
		if _, err := s.List(ctx); !errors.As(err, &ce) || ce.Field != "zz" {
			t.Errorf("corrupt record: %v", err)
		}
	})
}

func TestCreateRefuses(t *testing.T) {
	b := testenv.Redis(t)
	s := newStore(t, b, testenv.Name(t), nil)
	for _, tt := range []struct {
		name string
		role Role
		want string
	}{
		{"", Admin, "token name"},
		{" padded", Admin, "token name"},
		{"tab\there", Admin, "token name"},
		{strings.Repeat("n", MaxNameBytes+1), Admin, "token name"},
		{"ok", "root", `role "root"`},
		{"ok", "", `role ""`},
	} {
		if _, _, err := s.Create(t.Context(), tt.name, tt.role); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("create %q %q: %v, want %q", tt.name, tt.role, err, tt.want)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, tt := range []struct {
		have, need Role
		want       bool
	}{
		{Admin, Admin, true}, {Admin, Writer, true}, {Admin, Reader, true},
		{Writer, Admin, false}, {Writer, Writer, true}, {Writer, Reader, true},
		{Reader, Admin, false}, {Reader, Writer, false}, {Reader, Reader, true},
		{"", Reader, false}, {"root", Reader, false}, {Admin, "", false},
	} {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%q allows %q: %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("parse %q: %q %v", r, got, err)
		}
	}
	if _, err := ParseRole("Admin"); err == nil {
		t.Error("roles are lower case")
	}
}

func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, func() Config { return Config{} }, []testenv.ValidateCase[Config]{
		{Name: "defaults", Change: func(*Config) {}},
		{Name: "braces in the prefix", Change: func(c *Config) { c.Prefix = "a{b}" }, Want: `--control-prefix="a{b}": want a key prefix without '{' or '}'`},
		{Name: "negative timeout", Change: func(c *Config) { c.Timeout = -time.Second }, Want: `--control-timeout="-1s": want a positive duration`},
	})
}

func TestMiddleware(t *testing.T) {
	b := testenv.Redis(t)
	s := newStore(t, b, testenv.Name(t), nil)
	ctx := t.Context()
	_, writer, err := s.Create(ctx, "ci", Writer)
	if err != nil {
		t.Fatal(err)
	}
	revoked, revokedSecret, err := s.Create(ctx, "old", Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	m := Middleware{Tokens: s, Deny: func(w http.ResponseWriter, _ *http.Request, d Denial) {
		http.Error(w, d.Err.Error(), d.Status)
	}}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := FromContext(r.Context())
		_, _ = w.Write([]byte(tok.Name))
	})
	for _, tt := range []struct {
		name, header string
		need         Role
		status       int
		body         string
	}{
		{"no header", "", Reader, 401, "no bearer token"},
		{"basic auth", "Basic dXNlcjpwYXNz", Reader, 401, "no bearer token"},
		{"empty bearer", "Bearer ", Reader, 401, "no bearer token"},
		{"unknown token", "Bearer csa_nosuch", Reader, 401, "unknown or revoked"},
		{"revoked token", "Bearer " + revokedSecret, Reader, 401, "unknown or revoked"},
		{"role too low", "Bearer " + writer, Admin, 403, "role writer, needs admin"},
		{"writer writes", "Bearer " + writer, Writer, 200, "ci"},
		{"writer reads", "bearer " + writer, Reader, 200, "ci"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/x", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			m.Require(tt.need, ok).ServeHTTP(rec, req)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Fatalf("%d %q, want %d %q", rec.Code, rec.Body.String(), tt.status, tt.body)
			}
			if strings.Contains(rec.Body.String(), writer) || strings.Contains(rec.Body.String(), revokedSecret) {
				t.Fatal("a refusal names the token")
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// A token store that cannot be read is not a 401.
	down, err := New(redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1}), Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.Tokens = down
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer "+writer)
	m.Require(Reader, ok).ServeHTTP(rec, req)
	if rec.Code != 503 {
		t.Errorf("store down: %d", rec.Code)
	}
}
