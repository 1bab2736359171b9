package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestClaimScriptDecidesAtomically: the claim script itself refuses what a
// stale read of the state would allow (a replica deciding just before
// another one finished): a held claim, a done or older slot, a slot waiting
// out its retry; and a run whose claim was taken records nothing.
func TestClaimScriptDecidesAtomically(t *testing.T) {
	eachRedis(t, func(t *testing.T, b testenv.RedisBackend) {
		h := newHarness(t, b, monday, mapping(t, "hourly", "hourly"))
		s := h.scheduler("a", nil)
		m := mapping(t, "hourly", "hourly")
		ctx := testenv.Context(t, 30*time.Second)
		slot := func(d time.Duration) claim { return claim{id: slotID(monday.Add(d)), mode: modePeriodic} }
		take := func(c claim, want error) claimed {
			t.Helper()
			cl, detail, err := s.take(ctx, m, c)
			if !errors.Is(err, want) {
				t.Fatalf("take %+v = %v (%s), want %v", c, err, detail, want)
			}
			return cl
		}
		finish := func(cl claimed, how string, want Outcome) {
			t.Helper()
			if out, err := s.finish(ctx, m.Name, cl, how); err != nil || out != want {
				t.Fatalf("finish %s = %s, %v, want %s", how, out, err, want)
			}
		}
		cl := take(slot(time.Hour), nil)
		take(slot(time.Hour), errClaimHeld)
		take(claim{id: modeManual, mode: modeManual}, errClaimHeld)
		finish(cl, "ok", OutcomeDone)
		take(slot(time.Hour), errClaimDone)
		take(slot(0), errClaimDone)   // an older slot never runs after a newer one
		finish(cl, "ok", OutcomeDone) // twice: idempotent, done stays
		if rec := h.record("hourly"); rec["done"] != slotID(monday.Add(time.Hour)) || rec["by"] != "a" {
			t.Fatalf("record = %v", rec)
		}

		cl = take(slot(2*time.Hour), nil)
		finish(cl, "fail", OutcomeRetry) // retry_at = now + 1m on the fake clock
		take(slot(2*time.Hour), errClaimBackoff)
		h.clock.Set(monday.Add(time.Minute))
		cl = take(slot(2*time.Hour), nil)
		finish(cl, "release", OutcomeReleased) // not an attempt
		if rec := h.record("hourly"); rec["attempts"] != "1" || rec["done"] != slotID(monday.Add(time.Hour)) {
			t.Fatalf("record after a release = %v", rec)
		}

		// A claim taken over by another holder is theirs to record.
		cl = take(slot(2*time.Hour), nil)
		if err := b.Client.Set(ctx, cl.keys[1], "b other "+cl.id, 0).Err(); err != nil {
			t.Fatal(err)
		}
		finish(cl, "ok", OutcomeLost)
		if rec := h.record("hourly"); rec["done"] != slotID(monday.Add(time.Hour)) {
			t.Fatalf("a lost claim recorded %v", rec)
		}
		if v, err := b.Client.Get(ctx, cl.keys[1]).Result(); err != nil || v != "b other "+cl.id {
			t.Fatalf("the other holder's claim = %q, %v: it must be left alone", v, err)
		}
	})
}
