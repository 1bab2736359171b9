package segmentlease

import (
	"maps"
	"testing"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestErased: keys are listed per environment with their receipt, an
// environment's name cannot reach another's list, and Forget takes a key
// off.
func TestErased(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		e, err := NewErased(b.Client, Config{Prefix: testenv.Name(t) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		for _, a := range [][3]string{{"production", "alice", "r1"}, {"production", "bob", "r2"}, {"prod}:keys", "carol", "r3"}, {"production", "alice", "r4"}} {
			if err := e.Add(ctx, a[0], a[1], a[2]); err != nil {
				t.Fatal(err)
			}
		}
		for env, want := range map[string]map[string]string{
			"production": {"alice": "r4", "bob": "r2"}, "prod}:keys": {"carol": "r3"}, "staging": {},
		} {
			if got, err := e.Keys(ctx, env); err != nil || !maps.Equal(got, want) {
				t.Errorf("Keys(%q) = %v, %v; want %v", env, got, err, want)
			}
		}
		if ok, err := e.Forget(ctx, "production", "alice"); err != nil || !ok {
			t.Errorf("Forget(alice) = %v, %v; want true", ok, err)
		}
		if ok, err := e.Forget(ctx, "production", "alice"); err != nil || ok {
			t.Errorf("Forget(alice) again = %v, %v; want false", ok, err)
		}
		if got, err := e.Keys(ctx, "production"); err != nil || !maps.Equal(got, map[string]string{"bob": "r2"}) {
			t.Errorf("Keys after Forget = %v, %v", got, err)
		}
	})
}
