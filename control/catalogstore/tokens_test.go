package catalogstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestTokens(t *testing.T) {
	eachRedis(t, func(t *testing.T, s *Store, b testenv.RedisBackend) {
		ctx := t.Context()
		mustApply(t, s, example(t))
		if _, err := s.RotateToken(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token of an unknown destination: %v", err)
		}
		prod, err := s.RotateToken(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		qa, err := s.RotateToken(ctx, "qa")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(prod, tokenPrefix) || len(prod) < 40 || prod == qa {
			t.Fatalf("tokens %q %q", prod, qa)
		}
		for token, want := range map[string]string{prod: "production", qa: "qa", "": "", "cst_guess": "", prod + "x": ""} {
			if got, err := s.TokenOwner(ctx, token); err != nil || got != want {
				t.Errorf("owner of %q: %q %v, want %q", token, got, err, want)
			}
		}
		// Only the digest is stored.
		all := b.Client.HGetAll(ctx, s.cfg.tokensKey()).Val()
		if len(all) != 2 || all["production"] != digest(prod) || strings.Contains(all["production"], prod) {
			t.Errorf("stored %v", all)
		}
		rotated, err := s.RotateToken(ctx, "production")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokenOwner(ctx, prod); got != "" {
			t.Errorf("the rotated-out token still belongs to %q", got)
		}
		if got, _ := s.TokenOwner(ctx, rotated); got != "production" {
			t.Errorf("the new token belongs to %q", got)
		}
		// A deleted destination's token goes with it.
		if err := s.Delete(ctx, "partner-push"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDestination(ctx, "qa"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.TokenOwner(ctx, qa); got != "" {
			t.Errorf("a deleted destination's token belongs to %q", got)
		}
		b.Client.HSet(ctx, s.cfg.tokensKey(), "staging", "zz")
		var ce *CorruptError
		if _, err := s.TokenOwner(ctx, qa); !errors.As(err, &ce) {
			t.Errorf("corrupt digest: %v", err)
		}
	})
}
